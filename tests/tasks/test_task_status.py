"""A task's status over real HTTP, with the in-process worker on a real Redis: the status document in JSON,
Turtle and JSON-LD says the same facts; server-sent events follow a task to its end; GET /tasks lists the
caller's tasks, newest first, filtered and limited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import rdflib
from conftest import REPO, Running, StartServer, wait_for_status
from helpers import assert_isomorphic, media_type, parse_graph
from pytest_aiohttp import AiohttpServer
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF

from tests.tasks.monitoring import (
    ACCOUNTS,
    BOB_TOKEN,
    NT,
    ROOT_TOKEN,
    TEST_TOKEN,
    TURTLE,
    Gate,
    bearer,
    fetch,
    hold_the_worker,
    problem_of,
    start_gate,
    status_of,
    submit_monitored,
    write_triples,
)
from tests.tasks.notifying import AS, EX, GRAPH, GSA, HTM, PROV, create_repository, triples

JSON_LD = "application/ld+json"
STATUS_RANK = {"pending": 0, "running": 1, "completed": 2, "failed": 2, "cancelled": 2}


@pytest.fixture
async def gate(aiohttp_server: AiohttpServer) -> AsyncIterator[Gate]:
    gate = await start_gate(aiohttp_server)
    yield gate
    gate.release.set()  # whatever happened, the held worker finishes before the servers stop


# -- the status document: JSON, Turtle and JSON-LD -------------------------------------------------------------


def expected_graph(running: Running, document: dict[str, Any]) -> rdflib.Graph:
    """The facts of a JSON status document, as the PROV graph should give them (times apart)."""
    node = URIRef(f"urn:uuid:{document['id']}")
    outcome = document["outcome"] or {}
    status = GSA[document["status"].capitalize()]
    graph = rdflib.Graph()
    graph.add((node, RDF.type, AS.Update))
    graph.add((node, RDF.type, HTM[document["operation"]["method"]]))
    graph.add((node, AS.id, node))
    graph.add((node, AS.actor, URIRef(document["user"])))
    graph.add((node, AS.object, URIRef(running.url(f"/{document['repository']}"))))
    graph.add((node, GSA.status, status))
    graph.add((node, GSA.statementsProcessed, Literal(document["progress"]["statements"])))
    if document["client_request_id"] is not None:
        graph.add((node, AS.inReplyTo, Literal(document["client_request_id"])))
    if document["status"] in ("completed", "failed", "cancelled"):
        graph.add((node, GSA.outcome, status))
    for term, key in ((GSA.statusCode, "status"), (GSA.statementsAdded, "statements_added"),
                      (GSA.statementsRemoved, "statements_removed")):
        if outcome.get(key) is not None:
            graph.add((node, term, Literal(outcome[key])))
    if outcome.get("graph"):
        graph.add((node, PROV.generated, URIRef(outcome["graph"])))
    if document["error"] is not None:
        error, problem = document["error"], BNode()
        graph.add((node, GSA.error, problem))
        graph.add((problem, RDF.type, GSA.Problem))
        graph.add((problem, GSA.problemType, URIRef(error["type"])))
        graph.add((problem, GSA.detail, Literal(error["detail"])))
        for key in ("line", "column"):
            if error.get(key) is not None:
                graph.add((problem, GSA[key], Literal(error[key])))
    return graph


def check_times(graph: rdflib.Graph, document: dict[str, Any]) -> rdflib.Graph:
    """The graph's started/ended times are the document's; the graph without them."""
    node = URIRef(f"urn:uuid:{document['id']}")
    for term, key in ((PROV.startedAtTime, "started"), (PROV.endedAtTime, "ended")):
        values = [value.toPython() for value in graph.objects(node, term)]
        expected = [] if document[key] is None else [datetime.fromisoformat(document[key])]
        assert values == expected, (key, values, document[key])
    rest = rdflib.Graph()
    for triple in graph:
        if triple[1] not in (PROV.startedAtTime, PROV.endedAtTime):
            rest.add(triple)
    return rest


async def status_in(http: aiohttp.ClientSession, running: Running, task_id: str, media: str) -> rdflib.Graph:
    answer = await fetch(http, "GET", running.url(f"/tasks/{task_id}/status"), headers={"Accept": media})
    assert answer.status == 200, answer
    assert answer.content_type == media, answer.headers
    assert "Accept" in answer.headers.get("Vary", ""), answer.headers
    return parse_graph(answer.body, media)


@pytest.mark.parametrize("outcome", ["completed", "failed"])
async def test_status_in_json_turtle_and_json_ld_agree(start_server: StartServer, http: aiohttp.ClientSession,
                                                       outcome: str) -> None:
    running = await start_server()
    await create_repository(http, running)
    body = triples("s", 4) if outcome == "completed" else triples("s", 1) + b"<urn:x:bad> <urn:x:p> @@@ .\n"
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH}, body=body,
                                     content_type=TURTLE, headers={"Client-Request-ID": f"status-{outcome}"})
    document = await wait_for_status(http, running, task_id)
    assert document["status"] == outcome, document
    assert (document["id"], document["client_request_id"]) == (task_id, f"status-{outcome}"), document
    assert document["outcome"]["status"] == (201 if outcome == "completed" else 400), document
    if outcome == "completed":
        assert (document["outcome"]["statements_added"], document["progress"]["statements"]) == (4, 4), document
    else:
        assert document["error"]["line"] == 2, document
    turtle = await status_in(http, running, task_id, TURTLE)
    assert_isomorphic(expected_graph(running, document), check_times(turtle, document))
    assert_isomorphic(turtle, await status_in(http, running, task_id, JSON_LD))
    assert await status_of(http, running, task_id) == document  # repeatable


async def test_status_of_a_pending_task_in_turtle(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(worker=False)
    await create_repository(http, running)
    task_id = await submit_monitored(http, running, "DELETE", "/service", params={"graph": GRAPH})
    document = await status_of(http, running, task_id)
    assert (document["status"], document["started"], document["ended"]) == ("pending", None, None), document
    answer = await fetch(http, "GET", running.url(f"/tasks/{task_id}/status"), headers={"Accept": TURTLE})
    assert int(answer.headers["Retry-After"]) >= 1, answer.headers
    turtle = parse_graph(answer.body, TURTLE)
    assert_isomorphic(expected_graph(running, document), check_times(turtle, document))
    assert not list(turtle.objects(None, GSA.outcome))


# -- server-sent events ------------------------------------------------------------------------------------------


async def read_events(http: aiohttp.ClientSession, url: str, first: asyncio.Event) -> list[tuple[str, Any]]:
    """Every (event, data) of a stream, until the server ends it; `first` is set at the first one."""
    events: list[tuple[str, Any]] = []
    kind = ""
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=60)) as response:
        assert response.status == 200, await response.text()
        assert media_type(response.headers["Content-Type"]) == "text/event-stream", response.headers
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                kind = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.removeprefix("data:"))))
                first.set()
    return events


async def test_events_follow_an_import_to_its_end(start_server: StartServer, gate: Gate, tmp_path: Path,
                                                  http: aiohttp.ClientSession) -> None:
    """The import waits behind a held task, so the stream starts while it is pending; then it runs and ends."""
    running = await start_server(notify_allow=(gate.host_port,), worker_jobs=1, heartbeat_s=0.05,
                                 allow_load=True)
    await create_repository(http, running)
    await hold_the_worker(http, running, gate)
    path = tmp_path / "import.nt"
    await asyncio.to_thread(write_triples, path, "e", 200_000)
    with path.open("rb") as body:
        task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH}, body=body,
                                         content_type=NT)
    first = asyncio.Event()
    reader = asyncio.create_task(read_events(http, running.url(f"/tasks/{task_id}/events"), first))
    await asyncio.wait_for(first.wait(), 20)
    gate.release.set()
    events = await asyncio.wait_for(reader, 60)
    assert events[0][0] == "status" and events[0][1]["status"] == "pending", events[0]
    assert {document["id"] for _, document in events} == {task_id}
    previous: dict[str, Any] | None = None
    for kind, document in events:
        if previous is not None:
            assert STATUS_RANK[previous["status"]] <= STATUS_RANK[document["status"]], (previous, document)
            assert previous["progress"]["statements"] <= document["progress"]["statements"], (previous, document)
            assert kind == ("progress" if previous["status"] == document["status"] else "status"), (kind, document)
            assert (previous["status"], previous["progress"]["statements"]) != (
                document["status"], document["progress"]["statements"])  # one event per change
        previous = document
    last = events[-1][1]
    assert last["status"] == "completed", last
    assert last["outcome"]["statements_added"] == 200_000, last
    assert [doc["status"] for _, doc in events].count("completed") == 1


# -- GET /tasks ------------------------------------------------------------------------------------------------------


async def put_async(http: aiohttp.ClientSession, running: Running, token: str, account: str, name: str,
                    repo: str = REPO, bad: bool = False) -> str:
    body = triples(name, 1) + (b"<urn:x:bad> <urn:x:p> @@@ .\n" if bad else b"")
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": f"{EX}{name}"},
                                     body=body, content_type=TURTLE, headers=bearer(token), repo=repo,
                                     account=account)
    document = await wait_for_status(http, running, task_id, headers=bearer(token))
    assert document["status"] == ("failed" if bad else "completed"), document
    return task_id


async def listed(http: aiohttp.ClientSession, running: Running, token: str, **query: str) -> list[str]:
    answer = await fetch(http, "GET", running.url("/tasks"), params=query, headers=bearer(token))
    assert answer.status == 200, answer
    return [document["id"] for document in answer.json()["tasks"]]


async def test_listing_is_the_callers_tasks_newest_first(start_server: StartServer,
                                                         http: aiohttp.ClientSession) -> None:
    running = await start_server(ACCOUNTS)
    for repo in (REPO, "test/other"):
        async with http.put(running.repo_url(repo=repo), headers=bearer(TEST_TOKEN)) as response:
            assert response.status == 201, await response.text()
    t1 = await put_async(http, running, TEST_TOKEN, "test", "t1")
    t2 = await put_async(http, running, TEST_TOKEN, "test", "t2", repo="test/other")
    t3 = await put_async(http, running, TEST_TOKEN, "test", "t3", bad=True)
    t4 = await put_async(http, running, TEST_TOKEN, "test", "t4")
    t5 = await put_async(http, running, TEST_TOKEN, "test", "t5")
    b1 = await put_async(http, running, BOB_TOKEN, "bob", "b1")  # bob writes test/repo too, last of all
    assert await listed(http, running, TEST_TOKEN, status="completed", repository=REPO, limit="2") == [t5, t4]
    assert await listed(http, running, TEST_TOKEN, status="completed", repository=REPO) == [t5, t4, t1]
    assert await listed(http, running, TEST_TOKEN) == [t5, t4, t3, t2, t1]
    assert await listed(http, running, TEST_TOKEN, limit="3") == [t5, t4, t3]
    assert await listed(http, running, TEST_TOKEN, status="failed") == [t3]
    assert await listed(http, running, TEST_TOKEN, repository="test/other") == [t2]
    assert await listed(http, running, TEST_TOKEN, status="pending") == []
    assert await listed(http, running, BOB_TOKEN) == [b1]
    assert await listed(http, running, BOB_TOKEN, repository=REPO, status="completed") == [b1]
    assert await listed(http, running, ROOT_TOKEN) == [b1, t5, t4, t3, t2, t1]
    answer = await fetch(http, "GET", running.url("/tasks"), params={"limit": "1"}, headers=bearer(TEST_TOKEN))
    assert answer.json()["tasks"] == [await status_of(http, running, t5, bearer(TEST_TOKEN))]


@pytest.mark.parametrize("query", [{"status": "done"}, {"status": ""}, {"limit": "0"}, {"limit": "1001"},
                                   {"limit": "two"}, {"limit": "-1"}])
async def test_listing_refuses_a_bad_filter(start_server: StartServer, http: aiohttp.ClientSession,
                                            query: dict[str, str]) -> None:
    running = await start_server(worker=False)
    problem_of(await fetch(http, "GET", running.url("/tasks"), params=query), 400, "bad-request")
