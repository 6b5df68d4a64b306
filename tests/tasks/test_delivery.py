"""Notification delivery over real HTTP: retries, a receiver that comes up late, failures that are final,
redirects not followed; the egress policy at acceptance and at delivery; bad Asynchronous-* headers and a full
queue refused before anything is queued or written; signatures; credentials kept out of status documents.

No request here ever goes to a non-loopback address: private addresses must be refused at acceptance, and the
server that is asked to notify them runs without a worker, so that even a wrongly accepted task sends nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any

import aiohttp
import pytest
from conftest import Running, StartReceiver, StartServer, free_port, wait_for_status
from helpers import assert_problem, dump_dataset, media_type, parse_graph
from redis.asyncio import Redis

from tests.tasks.notifying import (
    GRAPH,
    QUIET_S,
    create_repository,
    finished,
    header,
    only_notification,
    server_and_receiver,
    stored_tasks,
    submit,
    triples,
)


async def attempts_of(http: aiohttp.ClientSession, status_url: str) -> list[dict[str, Any]]:
    async with http.get(status_url) as response:
        assert response.status == 200, await response.text()
        attempts: list[dict[str, Any]] = (await response.json())["notification"]["attempts"]
        return attempts


# -- 4. delivery --------------------------------------------------------------------------------------------------


async def test_retried_after_503_until_delivered(start_server: StartServer, start_receiver: StartReceiver,
                                                 http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http, answers=[503, 503])
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("r", 2),
                           content_type="text/turtle", location=receiver.url(), client_id="retry")
    document = await finished(http, running, task_id, receiver, expected=3)
    notification = document["notification"]
    assert notification["delivery"] == "delivered", document
    assert [(a["attempt"], a["status"]) for a in notification["attempts"]] == [(1, 503), (2, 503), (3, 204)]
    assert len({r.body for r in receiver.received}) == 1
    assert {r.headers.get("Request-ID") for r in receiver.received} == {task_id}


async def test_receiver_down_then_up_gets_it(start_server: StartServer, start_receiver: StartReceiver,
                                             http: aiohttp.ClientSession) -> None:
    port = free_port()  # nobody listens there yet
    running = await start_server(notify_allow=(f"127.0.0.1:{port}",), notify_attempts=30, notify_backoff_s=0.05)
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("late", 2),
                           content_type="text/turtle", location=f"http://127.0.0.1:{port}/late")
    deadline = time.monotonic() + 20
    while not await attempts_of(http, running.url(f"/tasks/{task_id}/status")):
        assert time.monotonic() < deadline, "no delivery attempt was recorded"
        await asyncio.sleep(0.02)
    receiver = await start_receiver(port=port)
    document = await finished(http, running, task_id, receiver)
    attempts = document["notification"]["attempts"]
    assert document["notification"]["delivery"] == "delivered", document
    assert len(attempts) >= 2 and attempts[-1]["status"] == 204, attempts
    assert all(a["status"] is None and a["error"] for a in attempts[:-1]), attempts
    assert receiver.received[0].path == "/late"


async def test_400_is_final(start_server: StartServer, start_receiver: StartReceiver,
                            http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http, answers=[400])
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("f", 1),
                           content_type="text/turtle", location=receiver.url())
    document = await finished(http, running, task_id, receiver, expected=1)
    assert document["status"] == "completed", document
    assert document["notification"]["delivery"] == "failed", document
    assert [(a["attempt"], a["status"]) for a in document["notification"]["attempts"]] == [(1, 400)]


async def test_redirect_is_not_followed(start_server: StartServer, start_receiver: StartReceiver,
                                        http: aiohttp.ClientSession) -> None:
    elsewhere = await start_receiver()
    redirecting = await start_receiver(redirect_to=elsewhere.url("/elsewhere"))
    running = await start_server(notify_allow=(elsewhere.host_port, redirecting.host_port))
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("x", 1),
                           content_type="text/turtle", location=redirecting.url())
    document = await finished(http, running, task_id, redirecting, expected=1)
    assert document["notification"]["delivery"] == "failed", document
    assert [a["status"] for a in document["notification"]["attempts"]] == [302]
    assert elsewhere.received == []


# -- 5. egress -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", [
    "http://10.1.2.3/x", "http://192.168.0.1/x", "http://169.254.169.254/latest", "http://127.0.0.1:{port}/",
    "http://[::1]:{port}/", "http://0.0.0.0:{port}/",
])
async def test_private_location_refused_at_acceptance(start_server: StartServer, start_receiver: StartReceiver,
                                                      http: aiohttp.ClientSession, location: str) -> None:
    receiver = await start_receiver()  # on loopback, not allowed
    running = await start_server(worker=False)  # even a task wrongly accepted could send nothing
    await create_repository(http, running)
    location = location.format(port=receiver.host_port.rpartition(":")[2])
    async with http.put(running.repo_url("/service?default"), data=triples("e", 2),
                        headers={"Content-Type": "text/turtle", "Accept-Asynchronous": "notify",
                                 "Asynchronous-Location": location}) as response:
        await assert_problem(response, 400)
        assert "Request-ID" not in response.headers
    assert await stored_tasks(running) == (0, 0)
    assert await dump_dataset(http, running) == []
    assert receiver.received == []


async def test_name_resolving_to_loopback_refused_at_delivery(start_server: StartServer,
                                                              start_receiver: StartReceiver,
                                                              http: aiohttp.ClientSession) -> None:
    receiver = await start_receiver()
    port = receiver.host_port.rpartition(":")[2]
    running = await start_server(notify_hosts=("evil.test=127.0.0.1",), notify_attempts=3)  # not allowed
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("d", 2),
                           content_type="text/turtle", location=f"http://evil.test:{port}/notify")
    document = await finished(http, running, task_id, receiver, expected=0)
    assert document["status"] == "completed", document
    assert document["notification"]["delivery"] == "failed", document
    attempts = document["notification"]["attempts"]
    assert len(attempts) == 1, attempts  # a refusal is final: retrying cannot change the policy
    assert attempts[0]["status"] is None and "refused" in attempts[0]["error"].lower(), attempts
    assert receiver.received == []


# -- 6. bad Asynchronous-* headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [
    ("Accept-Asynchronous", "notify-not"),
    ("Asynchronous-Method", "GET"),
    ("Asynchronous-Location", "/relative/notify"),
    ("Asynchronous-Content-Encoding", "br"),
    ("Asynchronous-Content-Type", "image/png"),
])
async def test_bad_header_refused_before_anything_is_queued(start_server: StartServer,
                                                            start_receiver: StartReceiver,
                                                            http: aiohttp.ClientSession, name: str,
                                                            value: str) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    url = running.repo_url("/service?graph=" + GRAPH)
    async with http.put(url, data=triples("before", 1), headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 201
    dump = await dump_dataset(http, running)
    headers = {"Content-Type": "text/turtle", "Accept-Asynchronous": "notify",
               "Asynchronous-Location": receiver.url(), name: value}
    async with http.put(url, data=triples("after", 50), headers=headers) as response:
        problem = await assert_problem(response, 400)
        assert "Request-ID" not in response.headers
    assert name.lower() in problem["detail"].lower() or problem.get("header") == name, problem
    await asyncio.sleep(QUIET_S)
    assert await stored_tasks(running) == (0, 0)
    assert await dump_dataset(http, running) == dump
    assert receiver.received == []


async def test_unproducible_result_type_of_a_query_refused(start_server: StartServer,
                                                           start_receiver: StartReceiver,
                                                           http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    async with http.get(running.repo_url("/sparql"), params={"query": "SELECT * WHERE { ?s ?p ?o }"},
                        headers={"Accept-Asynchronous": "notify", "Asynchronous-Location": receiver.url(),
                                 "Asynchronous-Content-Type": "text/turtle"}) as response:
        problem = await assert_problem(response, 400, "Asynchronous-Content-Type")
    assert problem.get("header") == "Asynchronous-Content-Type", problem
    await asyncio.sleep(QUIET_S)
    assert await stored_tasks(running) == (0, 0)
    assert receiver.received == []


# -- 9. the queue's bound ------------------------------------------------------------------------------------------


async def test_full_queue_refuses_with_retry_after(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(worker=False, queue_limit=2)
    await create_repository(http, running)
    accepted = [await submit(http, running, "PUT", "/service", params={"graph": f"{GRAPH}/{i}"},
                             body=triples(f"q{i}-", 3), content_type="text/turtle", location=None)
                for i in range(2)]
    async with http.put(running.repo_url("/service?graph=" + GRAPH + "/third"), data=triples("third", 3),
                        headers={"Content-Type": "text/turtle", "Accept-Asynchronous": "notify"}) as response:
        await assert_problem(response, 503)
        assert media_type(response.headers.get("Content-Type")) == "application/problem+json"
        retry_after = response.headers.get("Retry-After", "")
        assert retry_after.isdigit() and int(retry_after) > 0, response.headers
        assert "Request-ID" not in response.headers
    assert await stored_tasks(running) == (2, 2)
    spooled = sorted(path.name for path in (running.settings.spool_dir / "tasks").iterdir())
    assert spooled == sorted(accepted)
    assert await dump_dataset(http, running) == []
    for task_id in accepted:
        async with http.get(running.url(f"/tasks/{task_id}/status")) as response:
            document = json.loads(await response.text())
        assert document["status"] == "pending" and document["progress"]["queue_position"] in (0, 1), document


# -- 8. signatures --------------------------------------------------------------------------------------------------


async def test_signed_notification_verifies(start_server: StartServer, start_receiver: StartReceiver,
                                            http: aiohttp.ClientSession) -> None:
    key = os.urandom(32)
    running, receiver = await server_and_receiver(start_server, start_receiver, http,
                                                  notify_signing_key="whsec_" + base64.b64encode(key).decode())
    sent_at = int(time.time())
    task_id = await submit(http, running, "PUT", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           body=triples("s", 2), content_type="text/turtle")
    _, note = await only_notification(http, running, task_id, receiver)
    message_id, timestamp = header(note, "webhook-id"), header(note, "webhook-timestamp")
    signatures = (header(note, "webhook-signature") or "").split()
    assert message_id == task_id
    assert timestamp is not None and sent_at - 5 <= int(timestamp) <= time.time() + 5, timestamp
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + note.body, hashlib.sha256).digest()
    assert "v1," + base64.b64encode(mac).decode() in signatures, signatures
    assert len(parse_graph(note.body, "text/turtle")) > 0


async def test_unsigned_without_a_key(start_server: StartServer, start_receiver: StartReceiver,
                                      http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("u", 1),
                           content_type="text/turtle", location=receiver.url())
    _, note = await only_notification(http, running, task_id, receiver)
    assert [name for name in note.headers if name.lower().startswith("webhook-")] == []


# -- 10. credentials ---------------------------------------------------------------------------------------------


async def test_status_document_never_shows_credentials(start_server: StartServer, start_receiver: StartReceiver,
                                                       http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("c", 1),
                           content_type="text/turtle", location=receiver.url(),
                           headers={"Authorization": "Bearer original-secret-token",
                                    "Asynchronous-Authorization": "Basic bm90aWZ5LXNlY3JldA=="})
    document: dict[str, Any] = await finished(http, running, task_id, receiver)
    headers = document["request"]["headers"]
    assert headers["Authorization"] == "***" and headers["Asynchronous-Authorization"] == "***", headers
    assert headers["Asynchronous-Location"] == receiver.url()
    text = json.dumps(document)
    assert "original-secret-token" not in text and "bm90aWZ5LXNlY3JldA" not in text
    assert header(receiver.received[0], "Authorization") == "Basic bm90aWZ5LXNlY3JldA=="


async def redis_dump(running: Running) -> bytes:
    """Every key and value the server keeps in Redis under its prefix, as one byte string."""
    redis = Redis.from_url(running.settings.redis_url)
    try:
        dump = b""
        async for key in redis.scan_iter(match=f"{running.settings.redis_prefix}:*"):
            kind = (await redis.type(key)).decode()
            value: Any = await redis.hgetall(key) if kind == "hash" else (  # type: ignore[misc]
                await redis.lrange(key, 0, -1) if kind == "list" else await redis.get(key) if kind == "string"  # type: ignore[misc]
                else b"")
            dump += key + repr(value).encode()
        return dump
    finally:
        await redis.aclose()


async def test_credentials_are_sealed_in_redis_and_gone_after_delivery(
        start_server: StartServer, start_receiver: StartReceiver, http: aiohttp.ClientSession) -> None:
    receiver = await start_receiver()
    blocker = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port, blocker.host_port), worker_jobs=1)
    await create_repository(http, running)
    # a first task holds the only worker slot (its receiver answers 503 then 204), so the second stays pending
    blocker.answers.extend([503] * 3)
    await submit(http, running, "PUT", "/service?default", body=triples("b", 1), content_type="text/turtle",
                 location=blocker.url())
    secret, notify_secret = "original-secret-token-4711", "notify-secret-0815"
    task_id = await submit(http, running, "PUT", "/service?graph=" + GRAPH, body=triples("c", 1),
                           content_type="text/turtle", location=running.url("/test/repo/service?graph=" + GRAPH),
                           headers={"Authorization": f"Bearer {secret}",
                                    "Asynchronous-Authorization": f"Bearer {notify_secret}"})
    waiting = await redis_dump(running)
    assert task_id.encode() in waiting
    assert secret.encode() not in waiting and notify_secret.encode() not in waiting  # sealed, not in clear
    document = await wait_for_status(http, running, task_id)
    assert document["notification"]["delivery"] == "delivered", document  # to our own origin, with the token
    raw = Redis.from_url(running.settings.redis_url)
    try:
        key = f"{running.settings.redis_prefix}:task:{task_id}"
        record = json.loads(await raw.hget(key, "record"))  # type: ignore[misc]
        terms = json.loads(await raw.hget(key, "terms"))  # type: ignore[misc]
    finally:
        await raw.aclose()
    assert record["headers"]["Authorization"] == "***", record  # the record only says that one was given
    assert record["headers"]["Asynchronous-Authorization"] == "***", record
    assert terms["notify"]["authorization"] is None, terms  # the notification is over: nothing kept


@pytest.mark.parametrize("listed", [False, True], ids=["third-party", "listed-origin"])
async def test_own_authorization_goes_only_to_own_origin_and_listed_origins(
        start_server: StartServer, start_receiver: StartReceiver, http: aiohttp.ClientSession, listed: bool) -> None:
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port,),
                                 notify_forward_auth_to=(receiver.base,) if listed else ())
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("c", 1),
                           content_type="text/turtle", location=receiver.url(),
                           headers={"Authorization": "Bearer the-callers-own"})
    await finished(http, running, task_id, receiver)
    assert header(receiver.received[0], "Authorization") == ("Bearer the-callers-own" if listed else None)
