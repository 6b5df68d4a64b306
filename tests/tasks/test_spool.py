"""The spool keeps a task's files for its retention, then lets them go."""

from __future__ import annotations

import os
import time
from pathlib import Path

from graphstore_async.settings import Settings
from graphstore_async.tasks.spool import Spool


def test_sweep_removes_only_directories_past_retention(tmp_path: Path) -> None:
    spool = Spool(Settings(data_dir=tmp_path))
    old, fresh = spool.directory("old-task"), spool.directory("fresh-task")
    for directory in (old, fresh):
        directory.mkdir(parents=True)
        (directory / "result").write_bytes(b"x")
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))
    assert spool.sweep(older_than_s=600) == 1
    assert not old.exists()
    assert (fresh / "result").read_bytes() == b"x"


def test_remove_bodies_keeps_results(tmp_path: Path) -> None:
    spool = Spool(Settings(data_dir=tmp_path))
    directory = spool.directory("t")
    directory.mkdir(parents=True)
    (directory / "a.body").write_bytes(b"body")
    spool.result("t").write_bytes(b"result")
    spool.remove_bodies("t")
    assert not (directory / "a.body").exists()
    assert spool.result("t").read_bytes() == b"result"
