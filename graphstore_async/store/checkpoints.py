"""A store's state before a write that is not one transaction: what readers see while it runs, and what the store
goes back to if the process dies before it is done.

pyoxigraph runs `load`, `extend` and `update` in one transaction each, but holds the whole transaction in memory
(about 1.4 KiB for each statement a transaction removes from a named graph, 2.5 KiB for each one a SPARQL update
inserts, 4.6 KiB for each one a SPARQL MOVE moves), so a large write is stored in batches, with `bulk_extend`, none
of which is a transaction. A RocksDB checkpoint costs nothing of the kind: `Store.backup` into a sibling directory
flushes the store's memtables and hard-links its files (~0.1 s here, mostly the flush, whatever the store's size,
and no memory), and the checkpoint opened read-only (~20 ms) is the store as it was. A write in batches therefore
runs as follows (embedded.py, `EmbeddedStore._isolated`):

1. `Checkpoint.take`: the store is checkpointed into `{store}.checkpoint-{id}.new`, renamed `{store}.checkpoint-{id}`
   once complete. From that rename on, the write is *armed*: `recover` rolls the store back to the checkpoint
   when it is next opened.
2. Readers are given the checkpoint; the write runs on the store itself.
3. `Checkpoint.commit`: the checkpoint is renamed `{store}.checkpoint-{id}.old`. That rename is the commit point: from
   then on the store is the new state, whatever happens. Readers are given the store again.
4. The old checkpoint's directory is removed once no call on the store could still be reading it (`sweep`), or
   when the store is next opened (`recover`).

Its files are hard links: a checkpoint holds disk space only for the data the write replaced, until it is removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyoxigraph as ox

log = logging.getLogger(__name__)

_ARMED = ".checkpoint-"
_NEW, _OLD = ".new", ".old"
_DISCARDED = ".discarded"


class Checkpoint:
    """The state of the store at `path` before a write; armed while it exists under its own name."""

    def __init__(self, path: Path, armed: Path, store: Any) -> None:
        self._path = path
        self._armed = armed
        self.store = store  # read-only, on the checkpoint's directory

    @classmethod
    def take(cls, path: Path, live: Any) -> Checkpoint:
        armed = path.with_name(f"{path.name}{_ARMED}{uuid.uuid4().hex[:12]}")
        new = armed.with_name(armed.name + _NEW)
        live.backup(str(new))  # flushes the store's memtables, then links its files
        store = ox.Store.read_only(str(new))  # opened before the rename: nothing to roll back if it fails
        new.rename(armed)
        _sync_directory(path.parent)
        return cls(path, armed, store)

    def commit(self) -> None:
        """The write is done (or was undone): the store stays as it is now."""
        self._armed.rename(self._armed.with_name(self._armed.name + _OLD))
        _sync_directory(self._path.parent)

    @staticmethod
    def recover(path: Path) -> None:
        """Before the store at `path` opens: roll back a write that a crash cut short, and remove what earlier writes
        left. Every step is a rename or the removal of a directory nobody uses, so a crash in here is recovered from
        the next time, in the same way."""
        discarded = path.with_name(path.name + _DISCARDED)
        shutil.rmtree(discarded, ignore_errors=True)
        armed = [p for p in _checkpoints(path) if not p.name.endswith((_NEW, _OLD))]
        if armed:
            if len(armed) > 1:  # cannot happen (one write at a time): each holds the same state, so take the first
                log.error("the store at %s has %d armed checkpoints", path, len(armed))
            log.warning("a write into the store at %s was cut short; it is rolled back to its state before", path)
            if path.exists():
                path.rename(discarded)
            armed[0].rename(path)
            _sync_directory(path.parent)
            shutil.rmtree(discarded, ignore_errors=True)
        Checkpoint.sweep(path)

    @staticmethod
    def sweep(path: Path) -> None:
        """Remove the store's committed checkpoints and those never armed (none is read: the caller knows)."""
        for leftover in _checkpoints(path):
            if leftover.name.endswith((_NEW, _OLD)):
                shutil.rmtree(leftover, ignore_errors=True)


def _checkpoints(path: Path) -> list[Path]:
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name + _ARMED))


def _sync_directory(directory: Path) -> None:
    """A rename is durable once its directory is synced (a crash of the machine, not only of the process)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
