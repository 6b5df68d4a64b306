"""Cancelling tasks (DELETE /tasks/{id}) over real HTTP, with the in-process worker on a real Redis: a pending
task never runs (and notifies that it was cancelled); a running import stops before it writes and leaves the
graph as it was; an ended task cannot be cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Running, StartReceiver, StartServer, wait_for_status
from helpers import assert_isomorphic, dump_dataset, parse_graph
from pytest_aiohttp import AiohttpServer
from rdflib import URIRef
from rdflib.namespace import RDF

from tests.tasks.monitoring import (
    NT,
    TURTLE,
    Gate,
    fetch,
    hold_the_worker,
    problem_of,
    put_graph,
    read_monitor,
    start_gate,
    status_of,
    submit_monitored,
    wait_until,
    write_triples,
)
from tests.tasks.notifying import AS, GRAPH, GSA, HTM, create_repository, only_notification, submit, triples

BIG = 400_000  # N-Triples lines: validated for a few tenths of a second before anything is written


@pytest.fixture
async def gate(aiohttp_server: AiohttpServer) -> AsyncIterator[Gate]:
    gate = await start_gate(aiohttp_server)
    yield gate
    gate.release.set()  # whatever happened, the held worker finishes before the servers stop


async def cancel(http: aiohttp.ClientSession, running: Running, task_id: str) -> aiohttp.ClientResponse:
    async with http.delete(running.url(f"/tasks/{task_id}")) as response:
        await response.read()
        return response


async def test_cancelled_pending_task_never_runs(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(worker=False)
    await create_repository(http, running)
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH},
                                     body=triples("never", 2), content_type=TURTLE)
    response = await cancel(http, running, task_id)
    assert response.status == 204
    document = await status_of(http, running, task_id)
    assert document["status"] == "cancelled" and document["ended"] and document["started"] is None, document
    answer = await read_monitor(http, running, task_id)
    assert answer.headers["AsyncResult"] == "409", answer
    problem_of(answer, 200, "cancelled", problem_status=409)
    problem_of(await fetch(http, "DELETE", running.url(f"/tasks/{task_id}")), 409, "conflict")


async def test_cancelled_queued_task_never_runs_and_notifies_cancelled(
        start_server: StartServer, start_receiver: StartReceiver, gate: Gate, http: aiohttp.ClientSession) -> None:
    """One job slot, held by a first task whose notification the gate holds: the second waits in the queue, is
    cancelled there, and when the slot frees only its notification (gsa:Cancelled) goes out."""
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port, gate.host_port), worker_jobs=1,
                                 allow_load=True)
    await create_repository(http, running)
    held = await hold_the_worker(http, running, gate)
    before = await dump_dataset(http, running)
    task_id = await submit(http, running, "PUT", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           body=triples("never", 3), content_type=TURTLE,
                           headers={"Prefer": "respond-async"})
    document = await status_of(http, running, task_id)
    assert document["status"] == "pending" and isinstance(document["progress"]["queue_position"], int), document
    response = await cancel(http, running, task_id)
    assert response.status == 204
    assert (await status_of(http, running, task_id))["status"] == "cancelled"
    gate.release.set()
    assert (await wait_for_status(http, running, held))["status"] == "completed"
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "cancelled" and document["started"] is None, document
    graph = parse_graph(note.body, TURTLE)
    node = URIRef(f"urn:uuid:{task_id}")
    assert set(graph.objects(node, GSA.outcome)) == {GSA.Cancelled}, note.body
    assert set(graph.objects(node, RDF.type)) == {AS.Update, HTM.PUT}, note.body
    assert await dump_dataset(http, running) == before
    async with http.get(running.repo_url("/service"), params={"graph": GRAPH}) as got:
        assert got.status == 404, await got.text()


async def test_cancelling_a_running_import_leaves_the_graph_as_it_was(start_server: StartServer,
                                                                      http: aiohttp.ClientSession,
                                                                      tmp_path: Path) -> None:
    """The import validates its whole body before its commit point; a cancellation that arrives while statements
    are still being read (progress short of the total) must win: 202, then "cancelled", and nothing written.
    A fast heartbeat makes the progress visible early in the reading."""
    running = await start_server(heartbeat_s=0.05)
    await create_repository(http, running)
    await put_graph(http, running, triples("kept", 3))
    before = await dump_dataset(http, running)
    path = tmp_path / "big.nt"
    await asyncio.to_thread(write_triples, path, "big", BIG)
    with path.open("rb") as body:
        task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH}, body=body,
                                         content_type=NT)

    def reading(document: dict[str, Any]) -> bool:
        assert document["status"] in ("pending", "running"), document
        statements = document["progress"]["statements"]
        assert statements < BIG, document  # validated already: too late to test a cancellation that wins
        return document["status"] == "running" and statements > 0

    await wait_until(http, running, task_id, reading)
    response = await cancel(http, running, task_id)
    assert response.status == 202
    assert response.headers["Location"] == running.url(f"/tasks/{task_id}/status")
    document = await wait_for_status(http, running, task_id)
    assert document["status"] == "cancelled", document
    assert document["error"]["type"].endswith("/cancelled"), document
    assert document["started"] and document["ended"], document
    assert await dump_dataset(http, running) == before
    async with http.get(running.repo_url("/service"), params={"graph": GRAPH}, headers={"Accept": NT}) as got:
        assert got.status == 200
        assert_isomorphic(parse_graph(triples("kept", 3), NT), parse_graph(await got.read(), NT))
    problem_of(await fetch(http, "DELETE", running.url(f"/tasks/{task_id}")), 409, "conflict")


async def test_cancelling_an_ended_task_is_409(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server()
    await create_repository(http, running)
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH},
                                     body=triples("done", 2), content_type=TURTLE)
    assert (await wait_for_status(http, running, task_id))["status"] == "completed"
    problem = problem_of(await fetch(http, "DELETE", running.url(f"/tasks/{task_id}")), 409, "conflict")
    assert "completed" in problem["detail"], problem
    assert (await status_of(http, running, task_id))["status"] == "completed"
    answer = await read_monitor(http, running, task_id)  # the result is still there, untouched by the attempt
    assert (answer.status, answer.headers["AsyncResult"]) == (200, "201"), answer
