"""Named views run as tasks (issue 5, SPEC §5): notify mode to a receiver (gzipped, every result format), monitor
mode, arguments checked before anything is queued, and Dydra's materialisation — a CONSTRUCT view notified into
another repository of the same server."""

from __future__ import annotations

import csv
import gzip
import io
import json

import aiohttp
import pytest
import rdflib
from conftest import Receiver, Running, StartServer, wait_for_status
from helpers import assert_isomorphic, assert_problem, dump_dataset, get_ok, media_type, parse_graph
from pytest_aiohttp import AiohttpServer

from tests.tasks.monitoring import read_monitor, submit_monitored
from tests.tasks.notifying import create_repository, header, only_notification, stored_tasks, submit
from tests.tasks.test_notify import raw_receiver
from tests.web.test_views import BY_OBJECT, COPY, EX, PEOPLE, SPARQL_QUERY, SRJ, put_view, seed

GZIP = {"Asynchronous-Content-Encoding": "gzip"}
MATERIALISE_DATA = f"""@prefix ex: <{EX}> .
ex:a ex:p "one" ; ex:p _:x ; ex:q [ ex:r "nested" ; ex:r _:x ] .
_:x ex:p "anonymous" ; ex:p ex:b .
ex:b ex:p _:y .
_:y ex:p "last" .
ex:c ex:other "left out" .
"""
MATERIALISE = (f"PREFIX ex: <{EX}>\nCONSTRUCT {{ ?s ex:copied ?o . ?s ex:mark [ ex:from ?o ] . ?o ex:seen ?s }}\n"
               "WHERE { ?s ex:p ?o }")


def same_result(media: str, expected: bytes, actual: bytes) -> None:
    if media == SRJ:
        assert json.loads(actual) == json.loads(expected)
        assert json.loads(actual)["results"]["bindings"], "an empty result proves little"
    elif media == "text/csv":
        table = list(csv.reader(io.StringIO(actual.decode())))
        assert table == list(csv.reader(io.StringIO(expected.decode())))
        assert len(table) > 1
    else:
        graph = parse_graph(actual, media)
        assert len(graph) > 0
        assert_isomorphic(parse_graph(expected, media), graph)


@pytest.fixture
async def receiver_and_server(start_server: StartServer, aiohttp_server: AiohttpServer,
                              http: aiohttp.ClientSession) -> tuple[Running, Receiver]:
    receiver = await raw_receiver(aiohttp_server)  # keeps bodies as they came: gzip stays gzip
    running = await start_server(notify_allow=(receiver.host_port,))
    await create_repository(http, running)
    await seed(http, running)
    await put_view(http, running, "people", PEOPLE)
    await put_view(http, running, "by-object", BY_OBJECT)
    await put_view(http, running, "copy", COPY)
    return running, receiver


@pytest.mark.parametrize(("path", "params", "headers", "expected"), [
    ("/people", {}, {}, SRJ),
    ("/by-object", {"$o": '"cat"@en'}, {}, SRJ),
    ("/people.csv", {"$name": "bob"}, {}, "text/csv"),
    ("/people", {"limit": "2", "offset": "1"}, {"Asynchronous-Content-Type": "text/csv"}, "text/csv"),
    ("/copy", {}, {}, "text/turtle"),
    ("/copy.nt", {"$s": f"<{EX}b>"}, {}, "application/n-triples"),
    ("/copy", {}, {"Asynchronous-Content-Type": "application/ld+json"}, "application/ld+json"),
    ("/copy.nq", {}, {"Asynchronous-Content-Type": "text/turtle"}, "application/n-quads"),
])
async def test_view_in_notify_mode_sends_its_result_gzipped_once(
        receiver_and_server: tuple[Running, Receiver], http: aiohttp.ClientSession, path: str,
        params: dict[str, str], headers: dict[str, str], expected: str) -> None:
    running, receiver = receiver_and_server
    task_id = await submit(http, running, "GET", path, params=params, location=receiver.url(),
                           client_id="view-1", headers={**GZIP, **headers})
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    assert header(note, "Content-Encoding") == "gzip"
    assert note.body[:2] == b"\x1f\x8b", note.body[:20]
    assert media_type(header(note, "Content-Type")) == expected
    assert header(note, "Request-ID") == task_id
    accept = None if "." in path or "Asynchronous-Content-Type" not in headers else expected
    content_type, body = await get_ok(http, running, path, accept, **params)
    assert content_type == expected
    same_result(expected, body, gzip.decompress(note.body))


async def test_view_posted_in_notify_mode_takes_its_form_arguments(
        receiver_and_server: tuple[Running, Receiver], http: aiohttp.ClientSession) -> None:
    running, receiver = receiver_and_server
    async with http.post(running.repo_url("/by-object"), data={"$o": f"<{EX}b>"},
                         headers={"Accept-Asynchronous": "notify", "Asynchronous-Location": receiver.url(),
                                  **GZIP}) as response:
        assert response.status == 202, await response.text()
        task_id = response.headers["Request-ID"]
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    result = json.loads(gzip.decompress(note.body))
    assert [(r["s"]["value"], r["p"]["value"]) for r in result["results"]["bindings"]] == [(EX + "a", EX + "knows")]


@pytest.mark.parametrize(("path", "params", "accept", "expected"), [
    ("/people", {}, None, SRJ),
    ("/by-object", {"$o": "5"}, SRJ, SRJ),
    ("/people", {"$name": "alice"}, "text/csv", "text/csv"),
    ("/copy.ttl", {}, None, "text/turtle"),
    ("/copy", {"$o": f"<{EX}a>"}, "application/n-triples", "application/n-triples"),
])
async def test_view_in_monitor_mode_gives_the_same_result(server: Running, http: aiohttp.ClientSession, path: str,
                                                          params: dict[str, str], accept: str | None,
                                                          expected: str) -> None:
    await seed(http, server)
    await put_view(http, server, "people", PEOPLE)
    await put_view(http, server, "by-object", BY_OBJECT)
    await put_view(http, server, "copy", COPY)
    task_id = await submit_monitored(http, server, "GET", path, params=params,
                                     headers={"Accept": accept} if accept else None)
    document = await wait_for_status(http, server, task_id)
    assert document["status"] == "completed", document
    answer = await read_monitor(http, server, task_id)
    assert answer.status == 200, answer
    assert answer.headers.get("AsyncResult") == "200", answer.headers
    assert answer.content_type == expected
    content_type, body = await get_ok(http, server, path, accept, **params)
    assert content_type == expected
    same_result(expected, body, answer.body)


async def test_view_posted_in_monitor_mode(server: Running, http: aiohttp.ClientSession) -> None:
    await seed(http, server)
    await put_view(http, server, "by-object", BY_OBJECT)
    task_id = await submit_monitored(http, server, "POST", "/by-object", body=b"%24o=%22chat%22%40fr",
                                     content_type="application/x-www-form-urlencoded")
    assert (await wait_for_status(http, server, task_id))["status"] == "completed"
    answer = await read_monitor(http, server, task_id)
    assert answer.status == 200 and answer.content_type == SRJ, answer
    assert [(r["s"]["value"], r["p"]["value"]) for r in answer.json()["results"]["bindings"]] == [
        (EX + "a", EX + "label")]


async def test_bad_arguments_are_refused_before_anything_is_queued(
        receiver_and_server: tuple[Running, Receiver], http: aiohttp.ClientSession) -> None:
    running, receiver = receiver_and_server
    dump = await dump_dataset(http, running)
    notify = {"Accept-Asynchronous": "notify", "Asynchronous-Location": receiver.url()}
    for path, params, headers, status in (
            ("/by-object", {"$nope": "1"}, notify, 400),
            ("/by-object", {"$o": "<not an iri>"}, notify, 400),
            ("/by-object", {"$o": '"x"@en } DROP ALL {'}, {"Prefer": "respond-async"}, 400),
            ("/people.ttl", {}, notify, 400),
            ("/people", {}, {**notify, "Asynchronous-Content-Type": "text/turtle"}, 400),
            ("/missing", {}, notify, 404),
            ("/missing", {}, {"Prefer": "respond-async"}, 404)):
        async with http.get(running.repo_url(path), params=params, headers=headers) as response:
            await assert_problem(response, status)
    assert await stored_tasks(running) == (0, 0)
    assert receiver.received == []
    assert await dump_dataset(http, running) == dump


async def test_injection_in_notify_mode_changes_nothing(receiver_and_server: tuple[Running, Receiver],
                                                       http: aiohttp.ClientSession) -> None:
    running, receiver = receiver_and_server
    dump = await dump_dataset(http, running)
    task_id = await submit(http, running, "GET", "/by-object", params={"$o": '" } DROP ALL {'},
                           location=receiver.url())
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    assert [r["s"]["value"] for r in json.loads(note.body)["results"]["bindings"]] == [EX + "i1"]
    assert await dump_dataset(http, running) == dump


async def test_construct_view_materialised_into_another_repository(start_server: StartServer,
                                                                   http: aiohttp.ClientSession) -> None:
    """Dydra's test: a CONSTRUCT view run in notify mode, its N-Triples result POSTed by the server into the
    default graph of another of its repositories, which then holds exactly that result."""
    running = await start_server()  # the server's own origin needs no notify_allow
    await create_repository(http, running)
    await create_repository(http, running, "test/target")
    async with http.put(running.repo_url("/service?default"), data=MATERIALISE_DATA,
                        headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 204, await response.text()
    async with http.put(running.repo_url("/service", repo="test/target"), params={"graph": EX + "kept"},
                        data=f"<{EX}t> <{EX}p> <{EX}o> .\n", headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 201, await response.text()
    await put_view(http, running, "materialise", MATERIALISE)
    task_id = await submit(http, running, "GET", "/materialise", location=running.url("/test/target/service?default"),
                           headers={"Asynchronous-Method": "POST",
                                    "Asynchronous-Content-Type": "application/n-triples"})
    document = await wait_for_status(http, running, task_id)
    assert document["status"] == "completed", document
    assert document["notification"]["delivery"] == "delivered", document

    _, body = await get_ok(http, running, "/materialise.nt")
    expected = parse_graph(body, "application/n-triples")
    # 6 solutions, 4 triples each, less the 3 `?o ex:seen ?s` whose ?o is a literal; fresh blank nodes in each
    assert len(expected) == 6 * 4 - 3, expected.serialize(format="nt")
    assert any(isinstance(term, rdflib.BNode) for triple in expected for term in triple)
    async with http.get(running.repo_url("/service?default", repo="test/target"),
                        headers={"Accept": "application/n-triples"}) as response:
        assert response.status == 200, await response.text()
        target = parse_graph(await response.read(), "application/n-triples")
    assert_isomorphic(expected, target)
    async with http.get(running.repo_url("/service", repo="test/target"), params={"graph": EX + "kept"},
                        headers={"Accept": "application/n-triples"}) as response:
        assert len(parse_graph(await response.read(), "application/n-triples")) == 1  # other graphs untouched
    async with http.get(running.repo_url("/materialise"), headers={"Accept": SPARQL_QUERY}) as response:
        assert await response.text() == MATERIALISE
