"""Accounts' repositories on disk: `{root}/{account}/{repo}/` holds `repository.json` and the store.

A repository exists when its `repository.json` does; its store is opened on first use and kept open.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from graphstore_async.errors import BadRequest, Conflict, RepositoryNotFound, ViewNotFound
from graphstore_async.store import Store

# Always matched whole (fullmatch): with `match` and `$`, "z\n" would pass and name a directory "z\n".
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RESERVED_ACCOUNTS = frozenset({"tasks", "health", "ready", "metrics", "anonymous"})
RESERVED_VIEWS = frozenset({"sparql", "service", "views", "tasks"})
META = "repository.json"
VIEWS = "views"


def repository_id(account: str, name: str) -> str:
    """Validated 'account/name'; 400 for a name that cannot be a repository's."""
    for part, what in ((account, "account"), (name, "repository")):
        if not NAME.fullmatch(part):
            raise BadRequest(f"{part!r} is not a valid {what} name (letters, digits, '.', '_', '-'; at most 64)")
    if account in RESERVED_ACCOUNTS:
        raise BadRequest(f"{account!r} is reserved and cannot name an account")
    return f"{account}/{name}"


@dataclass
class Repository:
    id: str
    path: Path
    store: Store

    def metadata(self) -> dict[str, object]:
        meta: dict[str, object] = json.loads((self.path / META).read_text())
        return meta

    # Named views: stored queries, one file each, kept with the repository.

    def _view_path(self, name: str) -> Path:
        if not NAME.fullmatch(name) or name.lower() in RESERVED_VIEWS:
            reserved = name.lower() in RESERVED_VIEWS
            raise BadRequest(f"{name!r} is reserved and cannot name a view" if reserved else
                             f"{name!r} is not a valid view name (letters, digits, '.', '_', '-'; at most 64)",
                             view=name)
        return self.path / VIEWS / f"{name}.rq"

    def view(self, name: str) -> str:
        path = self._view_path(name)
        if not path.is_file():
            raise ViewNotFound(f"there is no view {name} in {self.id}", view=name)
        return path.read_text()

    def put_view(self, name: str, query: str) -> bool:
        """Create or replace a view (atomically); True when it is new."""
        path = self._view_path(name)
        created = not path.exists()
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(query)
        tmp.replace(path)
        return created

    def delete_view(self, name: str) -> None:
        path = self._view_path(name)
        if not path.is_file():
            raise ViewNotFound(f"there is no view {name} in {self.id}", view=name)
        path.unlink()

    def views(self) -> list[tuple[str, str, float]]:
        """(name, query text, modified time) of every view, by name."""
        directory = self.path / VIEWS
        if not directory.is_dir():
            return []
        return [(p.stem, p.read_text(), p.stat().st_mtime) for p in sorted(directory.glob("*.rq"))]


class Repositories:
    def __init__(self, root: Path, open_store: Callable[[Path], Store]) -> None:
        self._root = root
        self._open_store = open_store
        self._open: dict[str, Repository] = {}
        self._lock = asyncio.Lock()

    def _path(self, repo_id: str) -> Path:
        return self._root / repo_id

    def exists(self, repo_id: str) -> bool:
        return (self._path(repo_id) / META).is_file()

    def list(self) -> list[str]:
        return sorted(str(p.parent.relative_to(self._root)) for p in self._root.glob(f"*/*/{META}"))

    def create(self, repo_id: str) -> bool:
        """Create the repository; False when it already exists."""
        path = self._path(repo_id)
        if self.exists(repo_id):
            return False
        path.mkdir(parents=True, exist_ok=True)
        meta = {"id": repo_id, "created": datetime.now(UTC).isoformat(timespec="seconds")}
        tmp = path / (META + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(path / META)
        return True

    async def get(self, repo_id: str) -> Repository:
        repo = self._open.get(repo_id)
        if repo is not None:
            return repo
        async with self._lock:
            if repo_id in self._open:
                return self._open[repo_id]
            if not self.exists(repo_id):
                raise RepositoryNotFound(f"there is no repository {repo_id}", repository=repo_id)
            path = self._path(repo_id)
            store = await asyncio.to_thread(self._open_store, path / "store")
            repo = self._open[repo_id] = Repository(repo_id, path, store)
            return repo

    async def drop(self, repo_id: str) -> None:
        async with self._lock:
            if not self.exists(repo_id):
                raise RepositoryNotFound(f"there is no repository {repo_id}", repository=repo_id)
            repo = self._open.pop(repo_id, None)
            if repo is not None:
                await repo.store.close()
            path = self._path(repo_id)
            graveyard = path.with_name(f".{path.name}.dropped")
            if graveyard.exists():
                raise Conflict(f"{repo_id} is being dropped already")
            path.replace(graveyard)  # the repository is gone at once; the files go after
            await asyncio.to_thread(shutil.rmtree, graveyard)

    async def close(self) -> None:
        async with self._lock:
            for repo in self._open.values():
                await repo.store.close()
            self._open.clear()
