"""Durable files of asynchronous tasks: `{data_dir}/spool/tasks/{id}/` holds the request bodies (written at
acceptance, fsynced before the task is queued), the result of a query or export, and the notification body."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from graphstore_async.settings import Settings


class Spool:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.spool_dir / "tasks"

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
