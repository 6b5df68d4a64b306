"""Bad Prefer values are refused before anything is queued: 400, a problem naming the header, no task, the store
unchanged, and nothing left in the spool."""

from __future__ import annotations

import aiohttp
import pytest
from conftest import StartServer
from helpers import assert_problem, dump_dataset
from notifying import create_repository, stored_tasks, triples

GRAPH = "http://example.org/graph"


@pytest.mark.parametrize(("prefer", "says"), [
    ("respond-async, wait=soon", "wait"),
    ("respond-async, wait=-1", "negative"),
    ("respond-async, callback", "url"),
    ('respond-async, callback; url="http://10.1.2.3/done"', "10.1.2.3"),
    ('callback; url="/relative/done"', "absolute"),
], ids=["wait-not-a-number", "wait-negative", "callback-without-url", "callback-private", "callback-relative"])
async def test_bad_prefer_is_refused_and_changes_nothing(start_server: StartServer, http: aiohttp.ClientSession,
                                                         prefer: str, says: str) -> None:
    # no worker: even a wrongly accepted task could not reach 10.x (nothing ever leaves loopback)
    running = await start_server(worker=False)
    await create_repository(http, running)
    url = running.repo_url("/service?graph=" + GRAPH)
    async with http.put(url, data=triples("before", 1), headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 201
    dump = await dump_dataset(http, running)
    async with http.put(url, data=triples("after", 20),
                        headers={"Content-Type": "text/turtle", "Prefer": prefer}) as response:
        problem = await assert_problem(response, 400, says)
        assert "Request-ID" not in response.headers
    assert problem.get("header") == "Prefer", problem
    assert await stored_tasks(running) == (0, 0)
    assert await dump_dataset(http, running) == dump
    spool = running.settings.spool_dir / "tasks"
    assert not spool.exists() or not any(spool.iterdir())
