"""Notify mode over real HTTP, with the in-process worker and a real receiver: every operation lands (or
answers) and notifies exactly once, with the PROV graph or the result; notify-to-self; gzip and every
notification type; failed tasks notify their error."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from datetime import UTC, datetime

import aiohttp
import pytest
import rdflib
from aiohttp import web
from conftest import Received, Receiver, Running, StartReceiver, StartServer, free_port, wait_for_status
from helpers import assert_isomorphic, dump_dataset, media_type, parse_graph
from pytest_aiohttp import AiohttpServer
from rdflib import Literal

from tests.tasks.notifying import (
    AS,
    EX,
    GRAPH,
    GSA,
    PROBLEM,
    PROV,
    activity,
    check_times,
    create_repository,
    header,
    only_notification,
    server_and_receiver,
    submit,
    triples,
    without_times,
)

NOTIFICATION_TYPES = ["text/turtle", "application/n-triples", "application/n-quads", "application/rdf+xml",
                      "application/ld+json"]


async def put_sync(http: aiohttp.ClientSession, url: str, body: bytes) -> None:
    async with http.put(url, data=body, headers={"Content-Type": "text/turtle"}) as response:
        assert response.status in (201, 204), await response.text()


async def get_graph(http: aiohttp.ClientSession, url: str, accept: str = "text/turtle") -> rdflib.Graph:
    async with http.get(url, headers={"Accept": accept}) as response:
        text = await response.text()
        assert response.status == 200, text
    return parse_graph(text, accept)


def as_graph(data: bytes | str, media: str = "text/turtle") -> rdflib.Graph:
    return parse_graph(data, media)


def check_headers(note: Received, task_id: str, content_type: str, *, client_id: str | None,
                  authorization: str | None) -> None:
    assert header(note, "Request-ID") == task_id
    assert header(note, "Client-Request-ID") == client_id
    assert media_type(header(note, "Content-Type")) == content_type
    assert header(note, "Authorization") == authorization


# -- 1. every operation lands or answers, and notifies once ----------------------------------------------------


async def test_put_replaces_graph_and_notifies_once(start_server: StartServer, start_receiver: StartReceiver,
                                                    http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    url = running.repo_url("/service?graph=" + GRAPH)
    await put_sync(http, url, triples("old", 1))
    before = datetime.now(UTC)
    task_id = await submit(http, running, "PUT", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           body=triples("a", 3), content_type="text/turtle", client_id="put-1",
                           headers={"Authorization": "Bearer original", "Asynchronous-Method": "PUT",
                                    "Asynchronous-Authorization": "Basic bm90aWZpZWQ6eA=="})
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    assert (document["outcome"]["graph"], document["outcome"]["statements_added"],
            document["outcome"]["statements_removed"]) == (GRAPH, 3, 1), document
    assert_isomorphic(as_graph(triples("a", 3)), await get_graph(http, url))
    assert (note.method, note.path) == ("PUT", "/notify")
    check_headers(note, task_id, "text/turtle", client_id="put-1", authorization="Basic bm90aWZpZWQ6eA==")
    expected = activity(running, task_id, "PUT", status_code=204, client_id="put-1", added=3, removed=1,
                        graph=GRAPH)
    assert_isomorphic(expected, without_times(as_graph(note.body), task_id, before))


async def test_post_into_graph_merges_and_notifies_once(start_server: StartServer, start_receiver: StartReceiver,
                                                        http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    url = running.repo_url("/service?graph=" + GRAPH)
    await put_sync(http, url, triples("old", 2))
    before = datetime.now(UTC)
    task_id = await submit(http, running, "POST", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           body=triples("new", 3), content_type="application/n-triples", client_id="post-1",
                           headers={"Authorization": "Bearer original"})
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    assert_isomorphic(as_graph(triples("old", 2) + triples("new", 3)), await get_graph(http, url))
    assert note.method == "POST"
    # the caller's own token is not forwarded to a third party (only Asynchronous-Authorization would be)
    check_headers(note, task_id, "text/turtle", client_id="post-1", authorization=None)
    expected = activity(running, task_id, "POST", status_code=204, client_id="post-1", added=3, removed=0,
                        graph=GRAPH)
    assert_isomorphic(expected, without_times(as_graph(note.body), task_id, before))


async def test_post_without_graph_creates_one_and_names_it(start_server: StartServer,
                                                           start_receiver: StartReceiver,
                                                           http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    before = datetime.now(UTC)
    task_id = await submit(http, running, "POST", "/service", location=receiver.url(), body=triples("g", 4),
                           content_type="text/turtle", client_id="post-new")
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    made = document["outcome"]["graph"]
    assert isinstance(made, str) and made.startswith(running.repo_url("/service/")), document
    assert document["outcome"]["location"] == made
    assert document["request"]["headers"]["Context"] == made
    assert_isomorphic(as_graph(triples("g", 4)), await get_graph(http, made))
    assert len(await dump_dataset(http, running)) == 4
    check_headers(note, task_id, "text/turtle", client_id="post-new", authorization=None)
    expected = activity(running, task_id, "POST", status_code=201, client_id="post-new", added=4, removed=0,
                        graph=made)
    assert_isomorphic(expected, without_times(as_graph(note.body), task_id, before))


async def test_delete_removes_graph_and_notifies_once(start_server: StartServer, start_receiver: StartReceiver,
                                                      http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    url = running.repo_url("/service?graph=" + GRAPH)
    await put_sync(http, url, triples("gone", 3))
    await put_sync(http, running.repo_url("/service?default"), triples("kept", 1))
    before = datetime.now(UTC)
    task_id = await submit(http, running, "DELETE", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           client_id="delete-1")
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    async with http.get(url) as response:
        assert response.status == 404, await response.text()
    assert len(await dump_dataset(http, running)) == 1
    check_headers(note, task_id, "text/turtle", client_id="delete-1", authorization=None)
    expected = activity(running, task_id, "DELETE", status_code=204, client_id="delete-1", added=0, removed=3,
                        graph=GRAPH)
    assert_isomorphic(expected, without_times(as_graph(note.body), task_id, before))


@pytest.mark.parametrize("asked", [None, "application/n-triples", "application/ld+json"])
async def test_graph_export_notifies_the_graph(start_server: StartServer, start_receiver: StartReceiver,
                                               http: aiohttp.ClientSession, asked: str | None) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    url = running.repo_url("/service?graph=" + GRAPH)
    await put_sync(http, url, triples("x", 5) + b'<http://example.org/x0> <http://example.org/q> _:b .\n')
    headers = {"Asynchronous-Content-Type": asked} if asked else {}
    task_id = await submit(http, running, "GET", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           client_id="export", headers=headers)
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    sent = asked or "text/turtle"
    check_headers(note, task_id, sent, client_id="export", authorization=None)
    assert_isomorphic(await get_graph(http, url), as_graph(note.body, sent))


async def test_update_lands_and_notifies_once(start_server: StartServer, start_receiver: StartReceiver,
                                              http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    url = running.repo_url("/service?graph=" + GRAPH)
    await put_sync(http, url, triples("a", 1))
    update = (f'DELETE DATA {{ GRAPH <{GRAPH}> {{ <{EX}a0> <{EX}p> "a 0" }} }} ;\n'
              f'INSERT DATA {{ GRAPH <{GRAPH}> {{ <{EX}b0> <{EX}p> "b 0" . <{EX}b1> <{EX}p> "b 1" }} }}')
    before = datetime.now(UTC)
    task_id = await submit(http, running, "POST", "/sparql", location=receiver.url(), body=update.encode(),
                           content_type="application/sparql-update", client_id="update-1")
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    assert_isomorphic(as_graph(triples("b", 2)), await get_graph(http, url))
    check_headers(note, task_id, "text/turtle", client_id="update-1", authorization=None)
    # A SPARQL update's counts are not known (the store does not report them): the terms are left out, not 0.
    expected = activity(running, task_id, "POST", status_code=204, client_id="update-1")
    assert_isomorphic(expected, without_times(as_graph(note.body), task_id, before))


async def seed_for_queries(http: aiohttp.ClientSession, running: Running) -> None:
    await put_sync(http, running.repo_url("/service?graph=" + GRAPH), triples("q", 4))
    await put_sync(http, running.repo_url("/service?default"), triples("d", 2))


async def test_select_notifies_its_result(start_server: StartServer, start_receiver: StartReceiver,
                                          http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    await seed_for_queries(http, running)
    query = "SELECT ?g ?s ?o WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } } ORDER BY ?s"
    task_id = await submit(http, running, "POST", "/sparql", location=receiver.url(), body=query.encode(),
                           content_type="application/sparql-query", client_id="select-1")
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    check_headers(note, task_id, "application/sparql-results+json", client_id="select-1", authorization=None)
    async with http.get(running.repo_url("/sparql"), params={"query": query},
                        headers={"Accept": "application/sparql-results+json"}) as response:
        assert response.status == 200
        synchronous = await response.json(content_type=None)
    assert len(synchronous["results"]["bindings"]) == 6
    assert json.loads(note.body) == synchronous


async def test_construct_notifies_its_result(start_server: StartServer, start_receiver: StartReceiver,
                                             http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    await seed_for_queries(http, running)
    query = f"CONSTRUCT {{ ?s <{EX}copy> ?o . ?s <{EX}from> _:n }} WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"
    task_id = await submit(http, running, "GET", "/sparql", params={"query": query}, location=receiver.url(),
                           client_id="construct-1")
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    check_headers(note, task_id, "text/turtle", client_id="construct-1", authorization=None)
    async with http.get(running.repo_url("/sparql"), params={"query": query},
                        headers={"Accept": "text/turtle"}) as response:
        assert response.status == 200
        synchronous = as_graph(await response.read())
    assert len(synchronous) == 8
    assert_isomorphic(synchronous, as_graph(note.body))


# -- 2. notify-to-self --------------------------------------------------------------------------------------------


async def test_notify_to_self_stores_every_notification(start_server: StartServer,
                                                        http: aiohttp.ClientSession) -> None:
    running = await start_server()  # no notify_allow: the server's own origin is always allowed
    await create_repository(http, running)
    await create_repository(http, running, "test/inbox")
    before = datetime.now(UTC)
    client_ids = [f"self-{i}" for i in range(10)]
    headers = {"Asynchronous-Method": "POST", "Asynchronous-Content-Type": "application/ld+json",
               "Asynchronous-Authorization": "Basic " + base64.b64encode(b"inbox:anything").decode()}
    task_ids = await asyncio.gather(*(
        submit(http, running, "POST", "/service", params={"default": ""}, body=triples(f"n{i}-", 5),
               content_type="text/turtle", client_id=client_id, headers=headers,
               location=running.url("/test/inbox/service?default"))
        for i, client_id in enumerate(client_ids)))
    assert len(set(task_ids)) == 10
    for task_id in task_ids:
        document = await wait_for_status(http, running, task_id)
        assert document["status"] == "completed", document
        assert document["notification"]["delivery"] == "delivered", document
    expected_repo = rdflib.Graph()
    for i in range(10):
        expected_repo += as_graph(triples(f"n{i}-", 5))
    assert_isomorphic(expected_repo, parse_graph("\n".join(await dump_dataset(http, running)),
                                                 "application/n-quads"))
    query = f"SELECT DISTINCT ?r WHERE {{ ?a <{AS.inReplyTo}> ?r }}"
    async with http.get(running.repo_url("/sparql", repo="test/inbox"), params={"query": query},
                        headers={"Accept": "application/sparql-results+json"}) as response:
        assert response.status == 200, await response.text()
        rows = (await response.json(content_type=None))["results"]["bindings"]
    assert sorted(row["r"]["value"] for row in rows) == client_ids
    async with http.get(running.repo_url("/service?default", repo="test/inbox"),
                        headers={"Accept": "application/n-triples"}) as response:
        inbox = as_graph(await response.read(), "application/n-triples")
    expected_inbox = rdflib.Graph()
    for task_id, client_id in zip(task_ids, client_ids, strict=True):
        check_times(inbox, task_id, before)
        expected_inbox += activity(running, task_id, "POST", status_code=204, client_id=client_id, added=5,
                                   removed=0)
    untimed = rdflib.Graph()
    for triple in inbox:
        if triple[1] not in (PROV.startedAtTime, PROV.endedAtTime):
            untimed.add(triple)
    assert_isomorphic(expected_inbox, untimed)


# -- 3. gzip and every notification type ------------------------------------------------------------------------


async def raw_receiver(aiohttp_server: AiohttpServer) -> Receiver:
    """A receiver that keeps bodies as they came over the wire (no automatic gunzip)."""
    receiver = Receiver("", [], [])

    async def handle(request: web.Request) -> web.Response:
        receiver.received.append(Received(request.method, request.path_qs, dict(request.headers),
                                          await request.read()))
        return web.Response(status=204)

    app = web.Application(handler_args={"auto_decompress": False})
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    receiver.base = str(server.make_url("")).rstrip("/")
    return receiver


async def test_gzip_notification_of_an_import(start_server: StartServer, aiohttp_server: AiohttpServer,
                                              http: aiohttp.ClientSession) -> None:
    receiver = await raw_receiver(aiohttp_server)
    running = await start_server(notify_allow=(receiver.host_port,))
    await create_repository(http, running)
    before = datetime.now(UTC)
    task_id = await submit(http, running, "PUT", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           body=triples("z", 3), content_type="text/turtle", client_id="gz",
                           headers={"Asynchronous-Content-Encoding": "gzip"})
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    assert header(note, "Content-Encoding") == "gzip"
    assert note.body[:2] == b"\x1f\x8b", note.body[:20]
    check_headers(note, task_id, "text/turtle", client_id="gz", authorization=None)
    expected = activity(running, task_id, "PUT", status_code=201, client_id="gz", added=3, removed=0, graph=GRAPH)
    assert_isomorphic(expected, without_times(as_graph(gzip.decompress(note.body)), task_id, before))


async def test_gzip_notification_of_a_query(start_server: StartServer, aiohttp_server: AiohttpServer,
                                            http: aiohttp.ClientSession) -> None:
    receiver = await raw_receiver(aiohttp_server)
    running = await start_server(notify_allow=(receiver.host_port,))
    await create_repository(http, running)
    await seed_for_queries(http, running)
    query = "SELECT ?s ?o WHERE { ?s ?p ?o } ORDER BY ?s"
    task_id = await submit(http, running, "GET", "/sparql", params={"query": query}, location=receiver.url(),
                           headers={"Asynchronous-Content-Encoding": "gzip"})
    _, note = await only_notification(http, running, task_id, receiver)
    assert header(note, "Content-Encoding") == "gzip"
    async with http.get(running.repo_url("/sparql"), params={"query": query}) as response:
        synchronous = await response.json(content_type=None)
    assert len(synchronous["results"]["bindings"]) == 2
    assert json.loads(gzip.decompress(note.body)) == synchronous


@pytest.mark.parametrize("asked", NOTIFICATION_TYPES)
async def test_every_notification_type_parses(start_server: StartServer, start_receiver: StartReceiver,
                                              http: aiohttp.ClientSession, asked: str) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    before = datetime.now(UTC)
    task_id = await submit(http, running, "PUT", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           body=triples("t", 2), content_type="text/turtle", client_id="typed",
                           headers={"Asynchronous-Content-Type": asked})
    _, note = await only_notification(http, running, task_id, receiver)
    check_headers(note, task_id, asked, client_id="typed", authorization=None)
    if asked == "application/ld+json":
        assert "@context" in json.loads(note.body)
    expected = activity(running, task_id, "PUT", status_code=201, client_id="typed", added=2, removed=0,
                        graph=GRAPH)
    assert_isomorphic(expected, without_times(as_graph(note.body, asked), task_id, before))


# -- 7. failures --------------------------------------------------------------------------------------------------


async def test_failed_import_changes_nothing_and_notifies_the_error(start_server: StartServer,
                                                                   start_receiver: StartReceiver,
                                                                   http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    await put_sync(http, running.repo_url("/service?graph=" + GRAPH), triples("kept", 2))
    dump = await dump_dataset(http, running)
    body = triples("ok", 1999) + f"<{EX}bad> <{EX}p> @@@ .\n".encode()
    assert body.count(b"\n") == 2000
    before = datetime.now(UTC)
    task_id = await submit(http, running, "PUT", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           body=body, content_type="text/turtle", client_id="broken")
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "failed", document
    error = document["error"]
    assert error["type"] == PROBLEM + "syntax-error" and error["line"] == 2000, error
    assert "2000" in error["detail"], error
    assert await dump_dataset(http, running) == dump
    graph = as_graph(note.body)
    assert list(graph.objects(None, GSA.line)) == [Literal(2000)]
    expected = activity(running, task_id, "PUT", outcome="Failed", status_code=400, client_id="broken",
                        error=error)
    assert_isomorphic(expected, without_times(graph, task_id, before))


async def test_failed_query_notifies_the_prov_graph(start_server: StartServer, start_receiver: StartReceiver,
                                                    aiohttp_server: AiohttpServer,
                                                    http: aiohttp.ClientSession) -> None:
    """The worker runs one task at a time; a first task is held at its delivery while the repository of the
    second is dropped; the second then fails when it runs, and notifies the PROV graph with the error."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hold)
    gate = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    gate_host = f"127.0.0.1:{gate.port}"
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port, gate_host), worker_jobs=1)
    await create_repository(http, running)
    await create_repository(http, running, "test/lost")
    held = await submit(http, running, "PUT", "/service?default", body=triples("h", 1), content_type="text/turtle",
                        location=f"http://{gate_host}/hold")
    await asyncio.wait_for(arrived.wait(), 10)
    query = "SELECT * WHERE { ?s ?p ?o }"
    before = datetime.now(UTC)
    task_id = await submit(http, running, "GET", "/sparql", params={"query": query}, repo="test/lost",
                           location=receiver.url(), client_id="lost")
    async with http.delete(running.url("/test/lost")) as response:
        assert response.status == 204, await response.text()
    release.set()
    assert (await wait_for_status(http, running, held))["status"] == "completed"
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "failed", document
    assert document["error"]["status"] == 404, document
    check_headers(note, task_id, "text/turtle", client_id="lost", authorization=None)
    expected = activity(running, task_id, "GET", outcome="Failed", status_code=404, client_id="lost",
                        error=document["error"], repo="test/lost")
    assert_isomorphic(expected, without_times(as_graph(note.body), task_id, before))
