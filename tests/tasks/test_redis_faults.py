"""Redis goes away and comes back (issue 10, item 1): a redis-server of the test's own (append-only, appendfsync
always) is killed and started again on the same port and data. Meanwhile asynchronous requests and /tasks are
503 problems with Retry-After, synchronous ones work, /ready says what fails; afterwards the worker takes tasks
again — those queued before the fault complete exactly once — without a restart of the server."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Running, StartReceiver, StartServer, free_port, wait_for_status
from helpers import assert_problem, count_triples

from tests.tasks.notifying import create_repository, submit, triples

READY_WITHIN_S = 20.0


class OwnRedis:
    """A redis-server with append-only persistence, that a test may kill and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path / "redis")
    redis.workdir.mkdir()
    redis.start()
    yield redis
    if redis.process is not None:
        redis.kill()


async def ready(http: aiohttp.ClientSession, running: Running) -> tuple[int, dict[str, Any]]:
    async with http.get(running.url("/ready")) as response:
        return response.status, await response.json(content_type=None)


async def wait_ready(http: aiohttp.ClientSession, running: Running) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while (await ready(http, running))[0] != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"/ready is not 200 after {READY_WITHIN_S} s: {await ready(http, running)}")
        await asyncio.sleep(0.1)


async def test_a_redis_restart_stops_nothing_for_good(own_redis: OwnRedis, start_server: StartServer,
                                                      start_receiver: StartReceiver,
                                                      http: aiohttp.ClientSession) -> None:
    receiver = await start_receiver()
    running = await start_server(redis_url=own_redis.url, notify_allow=(receiver.host_port,))
    await create_repository(http, running)
    await wait_ready(http, running)
    first = await submit(http, running, "POST", "/service?default", body=triples("before", 1),
                         content_type="text/turtle", location=receiver.url())
    assert (await wait_for_status(http, running, first))["status"] == "completed"

    own_redis.kill()
    status, document = await ready(http, running)
    assert status == 503 and document["checks"]["redis"].startswith("unreachable"), document
    async with http.post(running.repo_url("/service?default"), data=triples("during", 1),
                         headers={"Content-Type": "text/turtle", "Accept-Asynchronous": "notify"}) as response:
        problem = await assert_problem(response, 503, "Redis")
        assert response.headers["Retry-After"].isdigit()
    assert problem["type"].endswith("/tasks-unavailable"), problem
    async with http.get(running.url(f"/tasks/{first}/status")) as response:
        await assert_problem(response, 503)
    async with http.get(running.url("/tasks")) as response:
        await assert_problem(response, 503)
    async with http.post(running.repo_url("/service?default"), data=triples("sync", 2),
                         headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 204, await response.text()  # synchronous writes go on
    assert await count_triples(http, running) == 3  # and reads
    await asyncio.sleep(2 * running.settings.heartbeat_s)  # the worker, reaper and beat all meet the fault

    own_redis.start()  # the same port and data (append-only file)
    await wait_ready(http, running)
    after = await submit(http, running, "POST", "/service?default", body=triples("after", 1),
                         content_type="text/turtle", location=receiver.url())
    document = await wait_for_status(http, running, after, timeout_s=30)
    assert document["status"] == "completed" and document["notification"]["delivery"] == "delivered", document
    assert await count_triples(http, running) == 4
    assert sorted(r.headers["Request-ID"] for r in receiver.received) == sorted([first, after])


async def test_tasks_running_and_queued_when_redis_died_complete_exactly_once(
        own_redis: OwnRedis, start_server: StartServer, start_receiver: StartReceiver,
        http: aiohttp.ClientSession, tmp_path: Path) -> None:
    receiver = await start_receiver()
    running = await start_server(redis_url=own_redis.url, notify_allow=(receiver.host_port,), worker_jobs=1,
                                 transactional_load_bytes=1_000_000)
    await create_repository(http, running)
    await wait_ready(http, running)
    big = tmp_path / "big.nt"
    big.write_bytes(b"".join(f'<http://example.org/big{i}> <http://example.org/p> "{i}" .\n'.encode()
                             for i in range(300_000)))
    with big.open("rb") as body:
        importing = await submit(http, running, "PUT", "/service?graph=http://example.org/big", body=body,
                                 content_type="application/n-triples", location=receiver.url())
    queued = [await submit(http, running, "POST", "/service?default", body=triples(f"q{i}-", 1),
                           content_type="text/turtle", location=receiver.url()) for i in range(5)]
    own_redis.kill()  # the import is running (one slot), the five wait behind it
    await asyncio.sleep(1.0)
    own_redis.start()
    for task_id in [importing, *queued]:
        document = await wait_for_status(http, running, task_id, timeout_s=60)
        assert document["status"] == "completed", document
    await receiver.wait_for(6)
    await asyncio.sleep(0.5)
    assert sorted(r.headers["Request-ID"] for r in receiver.received) == sorted([importing, *queued])  # once each
    assert await count_triples(http, running) == 5
    assert await count_triples(http, running, "http://example.org/big") == 300_000


async def test_a_server_started_while_redis_is_down_works_once_it_is_up(
        own_redis: OwnRedis, start_server: StartServer, start_receiver: StartReceiver,
        http: aiohttp.ClientSession) -> None:
    receiver = await start_receiver()
    own_redis.kill()
    running = await start_server(redis_url=own_redis.url, notify_allow=(receiver.host_port,))
    status, document = await ready(http, running)
    assert status == 503, document
    async with http.put(running.repo_url()) as response:  # synchronous work does not need Redis
        assert response.status == 201, await response.text()
    await asyncio.sleep(1.0)  # the worker has tried, and failed, to connect
    own_redis.start()
    await wait_ready(http, running)
    task_id = await submit(http, running, "POST", "/service?default", body=triples("late", 1),
                           content_type="text/turtle", location=receiver.url())
    assert (await wait_for_status(http, running, task_id, timeout_s=30))["status"] == "completed"


async def test_a_waiting_request_that_fails_after_its_task_was_queued_leaves_the_task_whole(
        own_redis: OwnRedis, start_server: StartServer, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    """`Prefer: wait=N`: the task is queued, then Redis goes away while the request waits for it. The request
    fails (503), but the task it queued keeps its body: once Redis is back, the same request again (same
    Request-ID) is that task, and it completes with the body's triples."""
    running = await start_server(redis_url=own_redis.url, worker_jobs=1, transactional_load_bytes=1_000_000)
    await create_repository(http, running)
    await wait_ready(http, running)
    big = tmp_path / "big.nt"
    big.write_bytes(b"".join(f'<http://example.org/big{i}> <http://example.org/p> "{i}" .\n'.encode()
                             for i in range(300_000)))
    with big.open("rb") as body:  # holds the only slot, so the waiting task stays queued
        await submit(http, running, "PUT", "/service?graph=http://example.org/big", body=body,
                     content_type="application/n-triples", location=None)
    headers = {"Content-Type": "text/turtle", "Prefer": "respond-async, wait=30", "Request-ID": "client-key-1"}
    graph = "/service?graph=http://example.org/waited"

    async def waiting() -> aiohttp.ClientResponse:
        async with http.put(running.repo_url(graph), data=triples("w", 3), headers=headers) as response:
            await response.read()
            return response

    request = asyncio.create_task(waiting())
    deadline = time.monotonic() + 20
    while True:  # until the second task is queued
        async with http.get(running.url("/tasks")) as response:
            if len((await response.json())["tasks"]) == 2:
                break
        assert time.monotonic() < deadline, "the waiting request's task was not queued"
        await asyncio.sleep(0.05)
    own_redis.kill()
    answer = await asyncio.wait_for(request, 20)
    assert answer.status == 503, answer.status
    own_redis.start()
    await wait_ready(http, running)
    async with http.put(running.repo_url(graph), data=triples("w", 3),
                        headers={**headers, "Prefer": "respond-async"}) as response:
        assert response.status == 202, await response.text()
        task_id = response.headers["Request-ID"]
    document = await wait_for_status(http, running, task_id, timeout_s=60)
    assert document["status"] == "completed", document  # not failed for a body removed under it
    assert await count_triples(http, running, "http://example.org/waited") == 3
