"""HEAD and OPTIONS on every route of app.py, and 405s that list what works there, over real HTTP. The routes
are read from the router (tests/web/routing.py): a route added later is covered by itself."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
from conftest import Running, StartServer, wait_for_status
from helpers import PROBLEM_JSON, assert_problem, media_type
from routing import PROBES, RawAnswer, methods_in, raw_request, resources, routed_methods, url_of
from yarl import URL

from graphstore_async.auth import new_token, token_entry

EX = "http://example.org/"
PEOPLE = f"SELECT ?s ?o WHERE {{ ?s <{EX}name> ?o }} ORDER BY ?s"
TURTLE = f'<{EX}alice> <{EX}name> "Alice" . <{EX}bob> <{EX}name> "Bob" .'
ACCOUNTS = "[accounts.test]\n" + token_entry("test", new_token())
# Headers of one exchange, not of the answer; and a body's length, which a streamed GET has not and which differs
# between two answers of /metrics (the first request is counted in the second).
EXCHANGE_HEADERS = {"date", "connection", "keep-alive", "transfer-encoding", "content-length"}


def values(task_id: str) -> dict[str, str]:
    return {"account": "test", "repo": "repo", "view": "people", "path": "g", "task_id": task_id}


async def seeded_with_a_task(http: aiohttp.ClientSession, server: Running) -> str:
    """The test repository with a directly identified graph (service/g), a view `people`, and a finished task
    (a query in monitor mode); the task's id."""
    async with http.put(server.repo_url("/service/g"), data=TURTLE, headers={"Content-Type": "text/turtle"}) as r:
        assert r.status == 201, await r.text()
    async with http.put(server.repo_url("/people"), data=PEOPLE,
                        headers={"Content-Type": "application/sparql-query"}) as r:
        assert r.status == 201, await r.text()
    async with http.get(server.repo_url("/sparql"), params={"query": "SELECT * WHERE { GRAPH ?g { ?s ?p ?o } }"},
                        headers={"Prefer": "respond-async"}) as r:
        assert r.status == 202, await r.text()
        task_id = r.headers["Request-ID"]
    await wait_for_status(http, server, task_id)
    return task_id


def answer_headers(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items() if name.lower() not in EXCHANGE_HEADERS}


async def assert_head_is_get(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None,
                             **params: str) -> RawAnswer:
    """HEAD first (it must change nothing a GET then sees), then GET: the same status and headers, and the HEAD
    sends no byte of body."""
    sent = {"Accept-Encoding": "gzip", **(headers or {})}
    target = str(URL(url).with_query(params)) if params else url
    head = await raw_request("HEAD", target, sent)
    async with http.get(target, headers=sent) as response:
        await response.read()
        status, got = response.status, response.headers
    assert head.body == b"", (url, head.body[:200])
    assert head.status == status, (url, head.status, status)
    assert answer_headers(head.headers) == answer_headers(got), url
    return head


async def test_every_route_answers_options_with_the_methods_that_work_there(
        start_server: StartServer, http: aiohttp.ClientSession) -> None:
    """On a server with accounts, anonymously (nothing can change): OPTIONS is 204 with Allow; every method in
    it is answered by its handler (401, 404, …: never 405), and every other is 405 with the same Allow."""
    running = await start_server(config=ACCOUNTS)
    for resource in resources(running.settings):
        url = url_of(running, resource, values(str(uuid.uuid4())))
        async with http.options(url) as response:
            assert response.status == 204, (url, await response.text())
            assert await response.read() == b""
            allow = methods_in(response.headers["Allow"])
        assert allow == routed_methods(resource) | {"OPTIONS"}, resource.canonical
        assert ("HEAD" in allow) == ("GET" in allow), resource.canonical
        for method in PROBES:
            async with http.request(method, url) as response:
                if method in allow:
                    assert response.status != 405, (method, url, await response.text())
                    continue
                assert methods_in(response.headers["Allow"]) == allow, (method, url)
                if method == "HEAD":
                    assert response.status == 405 and media_type(response.headers["Content-Type"]) == PROBLEM_JSON
                else:
                    await assert_problem(response, 405, f"{method} is not allowed", ", ".join(sorted(allow)))


async def test_a_405_on_sparql_lists_only_what_works_there(server: Running, http: aiohttp.ClientSession) -> None:
    """The {view} route matches …/sparql too: its PUT and DELETE used to be listed (and reached) there."""
    for method in ("PUT", "DELETE", "PATCH", "PROPFIND"):
        async with http.request(method, server.repo_url("/sparql"), data=PEOPLE,
                                headers={"Content-Type": "application/sparql-query"}) as response:
            await assert_problem(response, 405, method)
            assert response.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    async with http.get(server.repo_url("/views")) as response:
        assert (await response.json())["views"] == []  # no view named sparql was made


async def test_head_is_get_without_a_body_on_every_route(server: Running, http: aiohttp.ClientSession) -> None:
    task_id = await seeded_with_a_task(http, server)
    for resource in resources(server.settings):
        if "GET" in routed_methods(resource):
            await assert_head_is_get(http, url_of(server, resource, values(task_id)))


async def test_head_of_a_query_is_its_get_without_a_body(server: Running, http: aiohttp.ClientSession) -> None:
    await seeded_with_a_task(http, server)
    url = server.repo_url("/sparql")
    cases = [("ASK {}", None), (PEOPLE, "text/csv"), (PEOPLE, "application/sparql-results+xml"),
             ("CONSTRUCT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }", "application/n-triples"),
             ("SELECT * WHERE { ?s ?p }", None),  # 400: a syntax error
             ("CONSTRUCT WHERE { ?s ?p ?o }", "application/sparql-results+json")]  # 406
    statuses = []
    for query, accept in cases:
        head = await assert_head_is_get(http, url, {"Accept": accept} if accept else {}, query=query)
        statuses.append(head.status)
    assert statuses == [200, 200, 200, 200, 400, 406]
    head = await assert_head_is_get(http, url, update=f"INSERT DATA {{ <{EX}x> <{EX}y> 1 }}")
    assert head.status == 400


async def test_head_is_never_a_task(server: Running, http: aiohttp.ClientSession) -> None:
    for path, params in (("/sparql", {"query": "ASK {}"}), ("/service", {"default": ""})):
        url = str(URL(server.repo_url(path)).with_query(params))
        answer = await raw_request("HEAD", url, {"Prefer": "respond-async", "Accept-Asynchronous": "notify",
                                                 "Asynchronous-Location": server.url("/nowhere")})
        assert answer.status == 200 and "Request-ID" not in answer.headers, answer
    async with http.get(server.url("/tasks")) as response:
        assert (await response.json())["tasks"] == []


async def test_head_of_a_view_is_its_get(server: Running, http: aiohttp.ClientSession) -> None:
    await seeded_with_a_task(http, server)
    text = await assert_head_is_get(http, server.repo_url("/people"), {"Accept": "application/sparql-query"})
    assert media_type(text.headers["Content-Type"]) == "application/sparql-query"
    run = await assert_head_is_get(http, server.repo_url("/people.csv"))
    assert media_type(run.headers["Content-Type"]) == "text/csv"
    missing = await assert_head_is_get(http, server.repo_url("/nobody"))
    assert missing.status == 404


async def test_head_of_a_monitor_reads_no_result(server: Running, http: aiohttp.ClientSession) -> None:
    """monitor_reads is 1: HEADs leave the one read to the GET, and after it say 404 as the GET does."""
    task_id = await seeded_with_a_task(http, server)
    monitor = server.url(f"/tasks/{task_id}")
    for _ in range(2):
        head = await raw_request("HEAD", monitor)
        assert head.status == 200 and head.headers["AsyncResult"] == "200" and head.body == b"", head
    async with http.get(monitor) as response:
        assert response.status == 200
        rows = json.loads(await response.read())["results"]["bindings"]
    assert len(rows) == 2
    await assert_head_is_get(http, monitor)
    assert (await raw_request("HEAD", monitor)).status == 404


async def test_head_of_events_does_not_wait_for_the_task(server: Running, http: aiohttp.ClientSession) -> None:
    """A task's event stream lasts until the task ends; its HEAD answers at once, with no event."""
    async with http.post(server.repo_url("/sparql"), data=b"ASK {}", headers={
            "Content-Type": "application/sparql-query", "Prefer": "respond-async"}) as response:
        task_id = response.headers["Request-ID"]
    head = await raw_request("HEAD", server.url(f"/tasks/{task_id}/events"))
    assert head.status == 200 and media_type(head.headers["Content-Type"]) == "text/event-stream"
    assert head.body == b""
