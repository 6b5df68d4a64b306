"""SPARQL LOAD with `allow_load`: fetched by our own client through the egress policy, never by the engine.

A source server on 127.0.0.1 serves Turtle and records every request; a second one stands in for a forbidden
target and must record nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from conftest import Running, StartServer, free_port, wait_for_status
from helpers import assert_problem, count_triples
from pytest_aiohttp import AiohttpServer

TURTLE = b"".join(f'<http://example.org/s{i}> <http://example.org/p> "{i}" .\n'.encode() for i in range(25))
GRAPH = "http://example.org/loaded"


@dataclass
class Source:
    base: str
    hits: list[str] = field(default_factory=list)

    @property
    def host_port(self) -> str:
        return self.base.removeprefix("http://")

    def url(self, path: str) -> str:
        return self.base + path


async def start_source(aiohttp_server: AiohttpServer, redirect_to: str | None = None) -> Source:
    """/data.ttl (Turtle), /data (no type, no extension), /page (HTML), /missing (404); or a redirect."""
    source = Source("")

    async def handle(request: web.Request) -> web.Response:
        source.hits.append(request.path)
        if redirect_to:
            raise web.HTTPFound(redirect_to)
        if request.path == "/data.ttl":
            return web.Response(body=TURTLE, content_type="text/turtle")
        if request.path == "/page":
            return web.Response(text="<html></html>", content_type="text/html")
        if request.path == "/data":
            return web.Response(body=TURTLE, content_type="application/octet-stream")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    source.base = str(server.make_url("")).rstrip("/")
    return source


async def loading_server(start_server: StartServer, http: aiohttp.ClientSession, *allowed: Source,
                         **settings: object) -> Running:
    running = await start_server(allow_load=True, notify_allow=tuple(s.host_port for s in allowed), **settings)
    async with http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    return running


async def update(http: aiohttp.ClientSession, running: Running, text: str,
                 headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    return await http.post(running.repo_url("/sparql"), data=text,
                           headers={"Content-Type": "application/sparql-update", **(headers or {})})


async def test_load_fetches_through_our_client_into_the_graph(start_server: StartServer, http: aiohttp.ClientSession,
                                                              aiohttp_server: AiohttpServer) -> None:
    source = await start_source(aiohttp_server)
    running = await loading_server(start_server, http, source)
    async with await update(http, running, f"LOAD <{source.url('/data.ttl')}> INTO GRAPH <{GRAPH}>") as response:
        assert response.status == 204, await response.text()
    assert await count_triples(http, running, GRAPH) == 25
    async with await update(http, running, f"load <{source.url('/data')}>") as response:  # by its name: none
        await assert_problem(response, 502, "neither by its type nor by its name")
    async with await update(http, running, f"LOAD <{source.url('/page')}>") as response:
        await assert_problem(response, 502, "text/html")
    async with await update(http, running, f"LOAD <{source.url('/missing.ttl')}>") as response:
        await assert_problem(response, 502, "404")
    async with await update(http, running, f"LOAD SILENT <{source.url('/missing.ttl')}>") as response:
        assert response.status == 204, await response.text()
    assert await count_triples(http, running) == 0
    assert source.hits == ["/data.ttl", "/data", "/page", "/missing.ttl", "/missing.ttl"]


async def test_load_of_a_forbidden_target_fetches_nothing(start_server: StartServer, http: aiohttp.ClientSession,
                                                          aiohttp_server: AiohttpServer) -> None:
    forbidden = await start_source(aiohttp_server)
    running = await loading_server(start_server, http, notify_hosts=(f"inside.test={'127.0.0.1'}",))
    port = forbidden.host_port.rpartition(":")[2]
    for url in (forbidden.url("/data.ttl"), f"http://inside.test:{port}/data.ttl", f"http://127.1:{port}/data.ttl",
                f"http://127\u30020\u30020\u30021:{port}/data.ttl", "file:///etc/passwd", "ftp://example.org/x"):
        async with await update(http, running, f"LOAD <{url}>") as response:
            problem = await assert_problem(response, (400,))
        assert problem["type"].endswith(("/fetch-refused", "/bad-request")), problem
    assert forbidden.hits == []
    assert await count_triples(http, running) == 0


async def test_load_does_not_follow_a_redirect(start_server: StartServer, http: aiohttp.ClientSession,
                                               aiohttp_server: AiohttpServer) -> None:
    inside = await start_source(aiohttp_server)
    redirecting = await start_source(aiohttp_server, redirect_to=inside.url("/data.ttl"))
    running = await loading_server(start_server, http, redirecting, inside)
    async with await update(http, running, f"LOAD <{redirecting.url('/x.ttl')}>") as response:
        await assert_problem(response, 502, "302")
    assert redirecting.hits == ["/x.ttl"] and inside.hits == []


@pytest.mark.parametrize("text", [
    "LOAD <{url}> ; INSERT DATA { <http://a/b> <http://a/c> 1 }",
    "PREFIX s: <{base}/> LOAD s:data.ttl",
    "LOAD <{url}> INTO GRAPH <{url}> ; LOAD <{url}>",
    "; LOAD <{url}>",  # empty operations the engine refuses: the LOAD must not be fetched for them
    "LOAD <{url}> ; ;",
    "LOAD <{url}>;;",
])
async def test_load_among_other_operations_is_refused(start_server: StartServer, http: aiohttp.ClientSession,
                                                      aiohttp_server: AiohttpServer, text: str) -> None:
    source = await start_source(aiohttp_server)
    running = await loading_server(start_server, http, source)
    text = text.replace("{url}", source.url("/data.ttl")).replace("{base}", source.base)
    async with await update(http, running, text) as response:
        await assert_problem(response, 400, "exactly one LOAD")
    assert source.hits == [] and await count_triples(http, running) == 0


async def test_load_as_a_task_fetches_only_when_it_runs(start_server: StartServer, http: aiohttp.ClientSession,
                                                        aiohttp_server: AiohttpServer) -> None:
    source = await start_source(aiohttp_server)
    idle = await loading_server(start_server, http, source, worker=False)  # accepts, never runs
    text = f"LOAD <{source.url('/data.ttl')}> INTO GRAPH <{GRAPH}>"
    async with await update(http, idle, text, {"Prefer": "respond-async"}) as response:
        assert response.status == 202, await response.text()
    assert source.hits == [], "accepting the task fetched its source"
    running = await loading_server(start_server, http, source)
    async with await update(http, running, text, {"Prefer": "respond-async"}) as response:
        assert response.status == 202, await response.text()
        task_id = (await response.json())["id"]
    document = await wait_for_status(http, running, task_id)
    assert document["status"] == "completed", document
    assert document["outcome"]["statements_added"] == 25, document
    assert await count_triples(http, running, GRAPH) == 25
    assert source.hits == ["/data.ttl"]
