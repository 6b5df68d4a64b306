"""A store's state before a write that is not one transaction: what readers see while it runs, and what the store
goes back to if the process dies before it is done.

pyoxigraph runs `load`, `extend` and `update` in one transaction each, but holds the whole transaction in memory
(about 1.4 KiB for each statement a transaction removes from a named graph, 2.5 KiB for each one a SPARQL update
inserts, 4.6 KiB for each one a SPARQL MOVE moves), so a large write is stored in batches, with `bulk_extend`, none
of which is a transaction. A RocksDB checkpoint costs nothing of the kind: `Store.backup` into a sibling directory
flushes the store's memtables and hard-links its files (~0.1 s here, mostly the flush, whatever the store's size,
and no memory), and the checkpoint opened read-only (~20 ms) is the store as it was. A write in batches therefore
runs as follows (embedded.py, `EmbeddedStore._isolated`):

1. `Checkpoint.take`: the store is checkpointed into `{store}.checkpoint-{id}/`; once that is complete the file
   `{store}.checkpoint-{id}.armed` is made. From then on `recover` rolls the store back to the checkpoint when it
   is next opened.
2. Readers are given the checkpoint; the write runs on the store itself.
3. `Checkpoint.commit`: the `.armed` file is removed. That is the commit point: from then on the store is the new
   state, whatever happens. Readers are given the store again.
4. The checkpoint's directory is removed once no call on the store could still be reading it (`sweep`), or when
   the store is next opened (`recover`).

A checkpoint's directory is never renamed while it is open: RocksDB opens its files by name as it first needs
them. Its files are hard links, so it holds disk space only for the data the write replaced, until it is removed.
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

_NAME = ".checkpoint-"
_ARMED = ".armed"
_DISCARDED = ".discarded"


class Checkpoint:
    """The state of the store at `path` before a write; armed while its `.armed` file exists."""

    def __init__(self, path: Path, armed: Path, store: Any) -> None:
        self._path = path
        self._armed = armed
        self.store = store  # read-only, on the checkpoint's directory

    @classmethod
    def take(cls, path: Path, live: Any) -> Checkpoint:
        directory = path.with_name(f"{path.name}{_NAME}{uuid.uuid4().hex[:12]}")
        live.backup(str(directory))  # flushes the store's memtables, then links its files
        store = ox.Store.read_only(str(directory))
        armed = directory.with_name(directory.name + _ARMED)
        armed.touch(exist_ok=False)
        _sync_directory(path.parent)
        return cls(path, armed, store)

    def commit(self) -> None:
        """The write is done (or was undone): the store stays as it is now."""
        self._armed.unlink()
        _sync_directory(self._path.parent)

    @staticmethod
    def recover(path: Path) -> None:
        """Before the store at `path` opens: roll back a write that a crash cut short, and remove what earlier writes
        left; nothing, while the store is open (a write may be running). Each step is a rename, or a removal of
        something nobody uses, so a crash in here is recovered from the next time, in the same way."""
        discarded = path.with_name(path.name + _DISCARDED)
        armed = _entries(path, armed=True)  # one at most: one write at a time arms a checkpoint
        if not (armed or _entries(path, armed=False) or discarded.exists()) or _in_use(path):
            return
        shutil.rmtree(discarded, ignore_errors=True)
        for marker in armed[:1]:
            directory = marker.with_name(marker.name.removesuffix(_ARMED))
            if directory.is_dir():  # else a recovery cut short has put it in place already
                log.warning("a write into the store at %s was cut short; it is rolled back to its state before", path)
                if path.exists():
                    path.rename(discarded)
                directory.rename(path)
                _sync_directory(path.parent)
        for marker in armed:
            marker.unlink()
        if armed:
            _sync_directory(path.parent)
            shutil.rmtree(discarded, ignore_errors=True)
        Checkpoint.sweep(path)

    @staticmethod
    def sweep(path: Path) -> None:
        """Remove the store's checkpoints that are not armed: committed, or never completed (the caller knows that
        none is being read)."""
        for directory in _entries(path, armed=False):
            if not directory.with_name(directory.name + _ARMED).exists():
                shutil.rmtree(directory, ignore_errors=True)


def _in_use(path: Path) -> bool:
    """Whether the store is open, in this process or another (its checkpoints are then that writer's business):
    RocksDB's own lock says so."""
    if not path.is_dir():
        return False
    try:
        probe = ox.Store(str(path))
    except OSError:
        return True
    del probe  # closed: the lock is free again
    return False


def _entries(path: Path, *, armed: bool) -> list[Path]:
    """The `.armed` files of the store's checkpoints, or their directories."""
    if not path.parent.is_dir():
        return []
    prefix = path.name + _NAME
    return sorted(p for p in path.parent.iterdir()
                  if p.name.startswith(prefix) and p.name.endswith(_ARMED) == armed)


def _sync_directory(directory: Path) -> None:
    """A rename is durable once its directory is synced (a crash of the machine, not only of the process)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
