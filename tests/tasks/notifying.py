"""Helpers of the notify-mode tests: submitting in notify mode, the expected notification graph, stored tasks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import rdflib
from conftest import Received, Receiver, Running, wait_for_status
from rdflib import BNode, Literal, Namespace, URIRef
from rdflib.namespace import RDF, XSD
from redis.asyncio import Redis

# Written out here, not imported from the package: a misspelt term there must make these tests fail.
AS = Namespace("https://www.w3.org/ns/activitystreams#")
PROV = Namespace("http://www.w3.org/ns/prov#")
HTM = Namespace("http://www.w3.org/2011/http-methods#")
GSA = Namespace("https://w3id.org/graphstore-async/ns#")
PROBLEM = "tag:graphstore-async,2026:problem/"
EX = "http://example.org/"
GRAPH = EX + "graph/one"
QUIET_S = 0.3  # after the first notification, how long to wait to be sure no second one comes


def triples(name: str, count: int) -> bytes:
    """`count` distinct N-Triples (also Turtle) lines about ex:{name}{i}."""
    return "".join(f'<{EX}{name}{i}> <{EX}p> "{name} {i}" .\n' for i in range(count)).encode()


def header(received: Received, name: str) -> str | None:
    """A header of a received notification, by name in any case."""
    return next((value for key, value in received.headers.items() if key.lower() == name.lower()), None)


async def submit(http: aiohttp.ClientSession, running: Running, method: str, path: str, *,
                 location: str | None, body: bytes | None = None, content_type: str | None = None,
                 client_id: str | None = None, headers: dict[str, str] | None = None,
                 params: dict[str, str] | None = None, repo: str = "test/repo") -> str:
    """A request in notify mode that must be accepted; checks the 202 answer and returns the task id."""
    sent = {"Accept-Asynchronous": "notify", **(headers or {})}
    if location is not None:
        sent["Asynchronous-Location"] = location
    if content_type is not None:
        sent["Content-Type"] = content_type
    if client_id is not None:
        sent["Client-Request-ID"] = client_id
    async with http.request(method, running.repo_url(path, repo=repo), data=body, headers=sent,
                            params=params) as response:
        task_id = accepted(running, response.status, response.headers, await response.text(), repo=repo)
        assert response.headers.get("Client-Request-ID") == client_id
    return task_id


def accepted(running: Running, status: int, headers: Mapping[str, str], text: str, *, account: str = "anonymous",
             repo: str = "test/repo") -> str:
    """The 202 of an accepted task, in either mode: Request-ID (a UUID), Location (its monitor), and the JSON
    body naming the task, its user, repository and monitor; returns the task id."""
    assert status == 202, text
    task_id = headers["Request-ID"]
    assert str(uuid.UUID(task_id)) == task_id
    monitor = running.url(f"/tasks/{task_id}")
    assert headers["Location"] == monitor
    assert json.loads(text) == {"id": task_id, "status": "pending", "user": running.url(f"/{account}"),
                                "repository": running.url(f"/{repo}"), "monitor": monitor,
                                "status_url": monitor + "/status"}
    return task_id


async def finished(http: aiohttp.ClientSession, running: Running, task_id: str,
                   receiver: Receiver | None = None, *, expected: int = 1) -> dict[str, Any]:
    """The status document once the task and its delivery are over; the receiver got `expected` requests,
    and no more come."""
    document = await wait_for_status(http, running, task_id)
    if receiver is not None:
        await receiver.wait_for(expected)
        await asyncio.sleep(QUIET_S)
        assert len(receiver.received) == expected, [r.headers for r in receiver.received]
    return document


async def only_notification(http: aiohttp.ClientSession, running: Running, task_id: str,
                            receiver: Receiver) -> tuple[dict[str, Any], Received]:
    """The task's status document (delivered) and the one notification the receiver got."""
    document = await finished(http, running, task_id, receiver)
    assert document["notification"]["delivery"] == "delivered", document
    return document, receiver.received[0]


def activity(running: Running, task_id: str, method: str, *, outcome: str = "Completed",
             status_code: int, client_id: str | None = None, added: int | None = None,
             removed: int | None = None, graph: str | None = None, error: dict[str, Any] | None = None,
             repo: str = "test/repo") -> rdflib.Graph:
    """The notification graph a task should send, without its times."""
    expected = rdflib.Graph()
    node = URIRef(f"urn:uuid:{task_id}")
    expected.add((node, RDF.type, AS.Update))
    expected.add((node, RDF.type, HTM[method]))
    expected.add((node, AS.id, node))
    expected.add((node, AS.actor, URIRef(running.url("/anonymous"))))
    expected.add((node, AS.object, URIRef(running.url(f"/{repo}"))))
    if client_id is not None:
        expected.add((node, AS.inReplyTo, Literal(client_id)))
    expected.add((node, GSA.outcome, GSA[outcome]))
    expected.add((node, GSA.statusCode, Literal(status_code)))
    if added is not None:
        expected.add((node, GSA.statementsAdded, Literal(added)))
    if removed is not None:
        expected.add((node, GSA.statementsRemoved, Literal(removed)))
    if graph is not None:
        expected.add((node, PROV.generated, URIRef(graph)))
    if error is not None:
        problem = BNode()
        expected.add((node, GSA.error, problem))
        expected.add((problem, RDF.type, GSA.Problem))
        expected.add((problem, GSA.problemType, URIRef(error["type"])))
        expected.add((problem, GSA.detail, Literal(error["detail"])))
        for key in ("line", "column"):
            if error.get(key) is not None:
                expected.add((problem, GSA[key], Literal(error[key])))
    return expected


def check_times(graph: rdflib.Graph, task_id: str, not_before: datetime) -> None:
    """The task's prov:startedAtTime and prov:endedAtTime: one each, xsd:dateTime in UTC, started <= ended, both
    between `not_before` and now."""
    node = URIRef(f"urn:uuid:{task_id}")
    times = []
    for term in (PROV.startedAtTime, PROV.endedAtTime):
        values = list(graph.objects(node, term))
        assert len(values) == 1, (term, values)
        value = values[0]
        assert isinstance(value, Literal) and value.datatype == XSD.dateTime, value
        moment = value.toPython()
        assert isinstance(moment, datetime) and moment.utcoffset() == timedelta(0), value
        times.append(moment)
    started, ended = times
    now = datetime.now(UTC)
    assert not_before - timedelta(seconds=1) <= started <= ended <= now + timedelta(seconds=1), times


def without_times(graph: rdflib.Graph, task_id: str, not_before: datetime) -> rdflib.Graph:
    """The graph without prov:startedAtTime/endedAtTime, once the task's are checked (check_times)."""
    check_times(graph, task_id, not_before)
    rest = rdflib.Graph()
    for triple in graph:
        if triple[1] not in (PROV.startedAtTime, PROV.endedAtTime):
            rest.add(triple)
    return rest


async def stored_tasks(running: Running) -> tuple[int, int]:
    """(task records, queued jobs) of this server in Redis."""
    redis = Redis.from_url(running.settings.redis_url)
    try:
        prefix = running.settings.redis_prefix
        records = [key async for key in redis.scan_iter(match=f"{prefix}:task:*")
                   if key.decode().count(":") == prefix.count(":") + 2]
        queued = int(await redis.zcard(f"{prefix}:queue"))
    finally:
        await redis.aclose()
    return len(records), queued


async def create_repository(http: aiohttp.ClientSession, running: Running, repo: str = "test/repo") -> None:
    async with http.put(running.url(f"/{repo}")) as response:
        assert response.status == 201, await response.text()


async def server_and_receiver(start_server: Any, start_receiver: Any, http: aiohttp.ClientSession,
                              answers: list[int] | None = None, **settings: Any) -> tuple[Running, Receiver]:
    """A receiver, and a server (with test/repo) whose notifications may reach it."""
    receiver: Receiver = await start_receiver(answers=answers)
    running: Running = await start_server(notify_allow=(receiver.host_port,), **settings)
    await create_repository(http, running)
    return running, receiver
