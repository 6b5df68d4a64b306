"""The spool keeps a task's files for its retention, then lets them go."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import Running, StartServer, wait_for_status

from graphstore_async.settings import Settings
from graphstore_async.tasks.spool import Spool
from tests.tasks.monitoring import submit_monitored
from tests.tasks.notifying import GRAPH, create_repository, triples


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


# -- over HTTP: the bodies of a task are kept while it waits, and go once it has run ------------------------------


def bodies_of(running: Running, task_id: str) -> list[bytes]:
    return [path.read_bytes() for path in (running.settings.spool_dir / "tasks" / task_id).glob("*.body")]


@pytest.mark.parametrize("bad", [False, True], ids=["completed", "failed"])
async def test_bodies_stay_while_pending_and_go_once_run(start_server: StartServer, http: aiohttp.ClientSession,
                                                        bad: bool) -> None:
    body = triples("spooled", 3) + (b"<urn:x:bad> <urn:x:p> @@@ .\n" if bad else b"")
    waiting = await start_server(worker=False)
    await create_repository(http, waiting)
    pending = await submit_monitored(http, waiting, "PUT", "/service", params={"graph": GRAPH}, body=body,
                                     content_type="text/turtle")
    assert bodies_of(waiting, pending) == [body]

    running = await start_server()
    await create_repository(http, running)
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH}, body=body,
                                     content_type="text/turtle")
    document = await wait_for_status(http, running, task_id)
    assert document["status"] == ("failed" if bad else "completed"), document
    deadline = time.monotonic() + 10  # the worker removes them just after it records the end
    while bodies_of(running, task_id) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert bodies_of(running, task_id) == []
