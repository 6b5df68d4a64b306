"""Deliveries apart from execution (issue 10, items 2 and 4): a dead or hanging receiver holds no execution slot
and delays no other destination; a task never ends without its notification, or without saying why."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from aiohttp import web
from conftest import StartReceiver, StartServer, free_port, wait_for_status
from helpers import raw_exchange
from pytest_aiohttp import AiohttpServer
from redis.asyncio import Redis

from graphstore_async.tasks.delivery import Deliverer
from graphstore_async.tasks.dispatch import Dispatcher
from graphstore_async.tasks.notification import NOTIFICATION
from graphstore_async.tasks.queue import Queue
from graphstore_async.tasks.records import Tasks
from graphstore_async.tasks.spool import Spool
from tests.tasks.notifying import create_repository, submit, triples


async def hanging_receiver(aiohttp_server: AiohttpServer, release: asyncio.Event) -> tuple[str, list[float]]:
    """A receiver that takes every request and never answers (until the test releases it)."""
    arrivals: list[float] = []

    async def handle(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    return str(server.make_url("")).rstrip("/"), arrivals


async def test_a_hanging_receiver_delays_no_other_task(start_server: StartServer, start_receiver: StartReceiver,
                                                       http: aiohttp.ClientSession,
                                                       aiohttp_server: AiohttpServer) -> None:
    """20 tasks notify a receiver that never answers; then a task notifying a healthy receiver and a monitor-mode
    task finish in about the time they take alone (before: they waited behind 8 slots held for minutes)."""
    release = asyncio.Event()
    try:
        hanging, arrivals = await hanging_receiver(aiohttp_server, release)
        healthy = await start_receiver()
        running = await start_server(notify_allow=(hanging.removeprefix("http://"), healthy.host_port),
                                     notify_timeout_s=20.0, worker_jobs=8, delivery_per_origin=2)
        await create_repository(http, running)
        for i in range(20):
            await submit(http, running, "POST", "/service?default", body=triples(f"h{i}-", 1),
                         content_type="text/turtle", location=hanging + "/notify")
        deadline = time.monotonic() + 10
        while len(arrivals) < 2 and time.monotonic() < deadline:  # the hanging receiver holds its share
            await asyncio.sleep(0.05)
        assert len(arrivals) == 2, arrivals  # at most delivery_per_origin attempts in flight to one origin

        started = time.monotonic()
        notified = await submit(http, running, "POST", "/service?default", body=triples("ok", 1),
                                content_type="text/turtle", location=healthy.url())
        async with http.post(running.repo_url("/sparql"), data="ASK { ?s ?p ?o }",
                             headers={"Content-Type": "application/sparql-query",
                                      "Prefer": "respond-async"}) as response:
            assert response.status == 202, await response.text()
            monitored = (await response.json())["id"]
        await healthy.wait_for(1, timeout_s=10)
        document = await wait_for_status(http, running, monitored, timeout_s=10)
        took = time.monotonic() - started
        assert document["status"] == "completed", document
        assert (await wait_for_status(http, running, notified))["notification"]["delivery"] == "delivered"
        print(f"\nbehind 20 tasks notifying a hanging receiver, a notified task and a monitor-mode task took "
              f"{took:.2f} s")
        assert took < 5.0, f"the healthy tasks took {took:.1f} s behind the hanging receiver"  # alone: ~0.1 s
        assert len(arrivals) == 2  # still: the other 18 wait their turn without holding a slot
    finally:
        release.set()


async def test_client_request_id_that_cannot_be_sent_again_is_refused(start_server: StartServer,
                                                                      http: aiohttp.ClientSession) -> None:
    running = await start_server()
    await create_repository(http, running)
    body = "<http://example.org/a> <http://example.org/b> <http://example.org/c> ."
    head = (f"POST /test/repo/service?default HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/n-triples\r\n"
            f"Accept-Asynchronous: notify\r\nContent-Length: {len(body)}\r\nConnection: close\r\n")
    answer = await raw_exchange(running.base, head + "Client-Request-ID: caf\xe9\xff\r\n\r\n" + body)
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 400 " in status_line, answer
    problem = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert problem["header"] == "Client-Request-ID" and "ASCII" in problem["detail"], problem
    async with http.get(running.url("/tasks")) as response:
        assert (await response.json())["tasks"] == []  # nothing was queued


async def test_a_notification_that_cannot_be_made_ends_failed_with_the_reason(
        start_server: StartServer, http: aiohttp.ClientSession) -> None:
    """A task whose terms name a location nobody can send to (written past acceptance, as an older version or a
    bug could): its delivery ends failed, with the reason in its status, instead of staying null for ever."""
    running = await start_server(worker=False)  # the dispatcher is driven by hand below
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("x", 1),
                           content_type="text/turtle", location=None)
    redis = Redis.from_url(running.settings.redis_url)
    try:
        key = f"{running.settings.redis_prefix}:task:{task_id}"
        terms: dict[str, Any] = json.loads(await redis.hget(key, "terms"))  # type: ignore[misc]
        terms["notify"] = {"location": "http://[::1", "method": "POST", "format": "text/turtle",  # unparsable
                           "gzip": False}
        await redis.hset(key, mapping={"terms": json.dumps(terms), "status": "completed"})  # type: ignore[misc]
        settings = running.settings
        tasks, queue = Tasks(redis, settings), Queue(redis, settings)
        deliverer = Deliverer(settings)
        try:
            await Dispatcher(settings, tasks, queue, Spool(settings), deliverer).attempt(task_id, NOTIFICATION, 1)
        finally:
            await deliverer.close()
    finally:
        await redis.aclose()
    async with http.get(running.url(f"/tasks/{task_id}/status")) as response:
        document = await response.json()
    assert document["notification"]["delivery"] == "failed", document
    assert "could not be made" in document["notification"]["error"], document
