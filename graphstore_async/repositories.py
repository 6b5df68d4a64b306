"""Accounts' repositories on disk: `{root}/{account}/{repo}/` holds `repository.json`, the views and the store.

A repository exists when its `repository.json` does; its store is opened on first use and kept open. Each
repository made has a store directory of its own (`store-{generation}`; `store` for repositories made before
generations): RocksDB's lock on a store is held per path for as long as the store is open in this process, so a
repository dropped while a query still runs in its store, and made again under the same name, must not open the
same path. A drop moves the repository under `{root}/.dropped/` at once (one rename), and its files are removed
when its store has closed, that is when the last call running on it has returned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from graphstore_async.errors import BadRequest, RepositoryNotFound, ViewNotFound
from graphstore_async.store import Store

# Always matched whole (fullmatch): with `match` and `$`, "z\n" would pass and name a directory "z\n".
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RESERVED_ACCOUNTS = frozenset({"tasks", "health", "ready", "metrics", "anonymous"})
RESERVED_VIEWS = frozenset({"sparql", "service", "views", "tasks"})
META = "repository.json"
VIEWS = "views"
GRAVEYARD = ".dropped"  # not a NAME: never an account
PRIVATE_META = frozenset({"store"})  # the store directory's name: the server's business, not the client's
log = logging.getLogger(__name__)


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
        return {key: value for key, value in meta.items() if key not in PRIVATE_META}

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
        self._closing: set[Path] = set()  # dropped repositories whose store is still open

    def _path(self, repo_id: str) -> Path:
        return self._root / repo_id

    def exists(self, repo_id: str) -> bool:
        return (self._path(repo_id) / META).is_file()

    def list(self) -> list[str]:
        found = (p.parent.relative_to(self._root).parts for p in self._root.glob(f"*/*/{META}"))
        return sorted(f"{account}/{name}" for account, name in found
                      if NAME.fullmatch(account) and NAME.fullmatch(name))

    def create(self, repo_id: str) -> bool:
        """Create the repository; False when it already exists."""
        path = self._path(repo_id)
        if self.exists(repo_id):
            return False
        path.mkdir(parents=True, exist_ok=True)
        meta = {"id": repo_id, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "store": f"store-{uuid.uuid4().hex[:12]}"}
        tmp = path / (META + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(path / META)
        return True

    def opened(self) -> tuple[Repository, ...]:
        """The repositories whose store is open now (their statements are counted for /metrics)."""
        return tuple(self._open.values())

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
            store = await asyncio.to_thread(lambda: self._open_store(path / _store_dir(path)))
            repo = self._open[repo_id] = Repository(repo_id, path, store)
            return repo

    async def drop(self, repo_id: str) -> None:
        """The repository is gone at once (a new one may be made under its name straight away); its store closes
        when the calls still running on it have returned, and its files are removed then."""
        async with self._lock:
            if not self.exists(repo_id):
                raise RepositoryNotFound(f"there is no repository {repo_id}", repository=repo_id)
            repo = self._open.pop(repo_id, None)
            grave = self._root / GRAVEYARD / uuid.uuid4().hex
            grave.mkdir(parents=True)
            # One rename: the repository is gone whatever happens next. Its store may still be open and read (the
            # engine keeps its files open); RocksDB's own lock is on the old path, which no new store will use.
            self._path(repo_id).replace(grave / "repository")
            leftovers = [p for p in (self._root / GRAVEYARD).iterdir() if p != grave and p not in self._closing]
            if repo is not None:
                self._closing.add(grave)
        if repo is None:
            await asyncio.to_thread(_remove, grave, *leftovers)
            return

        def closed() -> None:  # from the thread that closed the store
            _remove(grave, *leftovers)
            self._closing.discard(grave)

        await repo.store.retire(closed)

    async def close(self) -> None:
        async with self._lock:
            for repo in self._open.values():
                await repo.store.close()
            self._open.clear()


def _store_dir(path: Path) -> str:
    meta = json.loads((path / META).read_text())
    name = meta.get("store", "store")
    if not isinstance(name, str) or not re.fullmatch(r"store(-[0-9a-f]{1,32})?", name):
        raise ValueError(f"{path / META} names no store directory of ours: {name!r}")
    return name


def _remove(*graves: Path) -> None:
    """A dropped repository's files, once nothing uses them; with them, what earlier drops left behind when the
    server stopped before their stores closed."""
    for grave in graves:
        shutil.rmtree(grave, ignore_errors=True)
