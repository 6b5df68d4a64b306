"""Query tasks and their time limits, with the in-process worker on a real Redis: a task past
task_query_timeout_s fails with query-timeout, and DELETE of a running query task says what stops and what runs on
(the engine cannot interrupt a query). Each test waits for the store threads it leaves (runaway.py)."""

from __future__ import annotations

import time

import aiohttp
from conftest import StartServer
from runaway import CROSS_COUNT, busy_store_threads, fill, wait_until_idle

from tests.tasks.monitoring import fetch, problem_of, read_monitor, status_of, submit_monitored, wait_until

CSV = {"Accept": "text/csv"}


async def test_query_task_past_its_limit_fails_with_query_timeout(start_server: StartServer,
                                                                  http: aiohttp.ClientSession) -> None:
    """Tasks have a limit of their own (task_query_timeout_s), whatever the synchronous one is."""
    running = await start_server(task_query_timeout_s=1, query_timeout_s=600)
    await fill(http, running.repo_url())
    task_id = await submit_monitored(http, running, "GET", "/sparql", params={"query": CROSS_COUNT}, headers=CSV)
    document = await wait_until(http, running, task_id, lambda d: d["status"] in ("failed", "completed"))
    assert document["status"] == "failed", document
    assert document["error"]["type"].endswith("/query-timeout") and document["error"]["timeout_s"] == 1, document
    assert document["error"]["status"] == 503
    answer = await read_monitor(http, running, task_id)
    assert answer.headers["AsyncResult"] == "503", answer
    problem_of(answer, 200, "query-timeout", problem_status=503)
    await wait_until_idle()


async def test_task_timeout_parameter_is_capped_by_the_task_limit(start_server: StartServer,
                                                                  http: aiohttp.ClientSession) -> None:
    running = await start_server(task_query_timeout_s=1)
    await fill(http, running.repo_url())
    started = time.monotonic()
    task_id = await submit_monitored(http, running, "GET", "/sparql",
                                     params={"query": CROSS_COUNT, "timeout": "3600"}, headers=CSV)
    document = await wait_until(http, running, task_id, lambda d: d["status"] in ("failed", "completed"))
    assert document["error"]["type"].endswith("/query-timeout") and document["error"]["timeout_s"] == 1, document
    assert time.monotonic() - started < 5
    await wait_until_idle()


async def test_cancelling_a_running_query_says_the_engine_runs_on(start_server: StartServer,
                                                                  http: aiohttp.ClientSession) -> None:
    running = await start_server(task_query_timeout_s=600)
    await fill(http, running.repo_url())
    task_id = await submit_monitored(http, running, "GET", "/sparql", params={"query": CROSS_COUNT}, headers=CSV)
    await wait_until(http, running, task_id, lambda d: d["status"] == "running")
    while not busy_store_threads():  # the engine has the query
        time.sleep(0.01)
    answer = await fetch(http, "DELETE", running.url(f"/tasks/{task_id}"))
    assert answer.status == 202, answer
    assert answer.headers["Location"].endswith(f"/tasks/{task_id}/status")
    said = answer.json()
    assert said["id"] == task_id and said["cancellation"] == "requested", said
    assert "its result is discarded" in said["detail"].lower() and "cannot interrupt a query" in said["detail"], said
    asked = time.monotonic()
    document = await wait_until(http, running, task_id, lambda d: d["status"] != "running")
    assert document["status"] == "cancelled" and time.monotonic() - asked < 3, document
    assert document["error"]["type"].endswith("/cancelled"), document
    assert "cannot interrupt a query" in document["cancellation"], document
    # As said: the task has ended, but the engine still computes the query on its store thread.
    assert busy_store_threads() == 1
    await wait_until_idle()
    problem_of(await read_monitor(http, running, task_id), 200, "cancelled", problem_status=409)
    assert (await status_of(http, running, task_id))["status"] == "cancelled"
