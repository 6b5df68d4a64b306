"""The reaper's decision, against real Redis: a running task whose heartbeat lapsed goes back to pending — unless
it finished, or beat again, between the reaper's look and its act. (A task that finished and was then set back to
pending would stay pending for ever: its job is gone.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from conftest import Running, StartServer
from redis.asyncio import Redis

from graphstore_async.tasks.records import Tasks, now_iso
from graphstore_async.tasks.result import Result
from graphstore_async.taskstatus import TaskStatus
from tests.tasks.monitoring import status_of, submit_monitored
from tests.tasks.notifying import create_repository

HEARTBEAT_S = 0.02  # the heartbeat lives 5 beats: 0.1 s
LAPSE_S = 0.3


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def lapsed_task(start_server: StartServer, http: aiohttp.ClientSession, redis: Redis
                      ) -> tuple[Running, Tasks, str]:
    """A task marked running with a heartbeat, as a worker does (no worker runs here), whose heartbeat has then
    lapsed: the reaper would pick it."""
    running = await start_server(worker=False, heartbeat_s=HEARTBEAT_S)
    await create_repository(http, running)
    tasks = Tasks(redis, running.settings)
    task_id = await submit_monitored(http, running, "POST", "/sparql", body=b"INSERT DATA { <urn:x:s> <urn:x:p> 1 }",
                                     content_type="application/sparql-update")
    assert (await tasks.start(task_id, now_iso()))[0]
    assert (await status_of(http, running, task_id))["status"] == "running"
    assert task_id not in await tasks.stale_running()
    await asyncio.sleep(LAPSE_S)
    assert task_id in await tasks.stale_running()  # the reaper looks ...
    return running, tasks, task_id


async def test_a_lapsed_heartbeat_puts_the_task_back(start_server: StartServer, http: aiohttp.ClientSession,
                                                     redis: Redis) -> None:
    running, tasks, task_id = await lapsed_task(start_server, http, redis)
    assert await tasks.back_to_pending(task_id)
    assert (await status_of(http, running, task_id))["status"] == "pending"
    assert task_id not in await tasks.stale_running()


async def test_a_task_that_finished_meanwhile_stays_finished(start_server: StartServer,
                                                             http: aiohttp.ClientSession, redis: Redis) -> None:
    running, tasks, task_id = await lapsed_task(start_server, http, redis)
    task = await tasks.get(task_id)
    assert task is not None
    await tasks.finish(task, TaskStatus.COMPLETED, Result(204))  # ... the worker ends
    assert not await tasks.back_to_pending(task_id)  # ... the reaper acts
    assert (await status_of(http, running, task_id))["status"] == "completed"
    assert task_id not in await tasks.stale_running()


async def test_a_task_that_beat_again_stays_running(start_server: StartServer, http: aiohttp.ClientSession,
                                                    redis: Redis) -> None:
    running, tasks, task_id = await lapsed_task(start_server, http, redis)
    assert not await tasks.beat(task_id, 7)  # a late beat of a worker that stalled, not died
    assert not await tasks.back_to_pending(task_id)
    document = await status_of(http, running, task_id)
    assert (document["status"], document["progress"]["statements"]) == ("running", 7), document
