"""Durable files of asynchronous tasks: `{data_dir}/spool/tasks/{id}/` holds the request bodies (written at
acceptance, fsynced before the task is queued), the result of a query or export, and the notification body.
`{data_dir}/spool/sync/` holds the bodies of synchronous requests while they run (web/graphstore.py)."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from graphstore_async.settings import Settings

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.spool_dir / "tasks"
        self.sync = settings.spool_dir / "sync"

    def directory(self, task_id: str) -> Path:
        return self.root / task_id

    def result(self, task_id: str) -> Path:
        return self.directory(task_id) / "result"

    def notification(self, task_id: str) -> Path:
        return self.directory(task_id) / "notification"

    def remove_bodies(self, task_id: str) -> None:
        """Request bodies are not needed once the task has run."""
        for path in self.directory(task_id).glob("*.body"):
            path.unlink(missing_ok=True)

    def remove(self, task_id: str) -> None:
        shutil.rmtree(self.directory(task_id), ignore_errors=True)

    def sweep(self, older_than_s: float) -> int:
        """Remove the directories of tasks not touched for `older_than_s` (past their retention)."""
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        old = [d for d in self.root.iterdir() if d.is_dir() and d.stat().st_mtime < cutoff]
        for directory in old:
            shutil.rmtree(directory, ignore_errors=True)
        return len(old)

    def sweep_sync(self) -> int:
        """At start-up: remove the bodies of synchronous requests. Each goes when its request ends, so those there
        now were left by requests that an earlier life of the server died in (killed while it read or loaded
        them)."""
        if not self.sync.is_dir():
            return 0
        left = list(self.sync.iterdir())
        for path in left:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if left:
            log.info("removed %d bodies of synchronous requests interrupted before the server started", len(left))
        return len(left)
