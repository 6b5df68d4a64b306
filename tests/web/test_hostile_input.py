"""Hostile input, sent as an attacker would (issue 9): SPARQL that would make the server fetch a URL (LOAD,
SERVICE and the spellings that hid SERVICE from the old tokenizer), nesting and chains that crash the engine,
JSON-LD nested deep, RDF/XML entity expansion, multi-member gzip, and texts large enough to stall the loop.

A listener on 127.0.0.1 stands in for every forbidden target: each refusal is checked by its status, its
problem+json body, the listener's empty log (nothing was fetched), and the dataset (nothing changed).
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import time
from typing import Any

import aiohttp
import pytest
from conftest import Running, StartReceiver, StartServer, wait_for_status
from helpers import assert_problem, count_triples, dump_dataset

from graphstore_async.sparqltext import scan

SPARQL_UPDATE = {"Content-Type": "application/sparql-update"}
SPARQL_QUERY = {"Content-Type": "application/sparql-query"}


async def open_server(start_server: StartServer, http: aiohttp.ClientSession, **settings: Any) -> Running:
    running = await start_server(**settings)
    async with http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    async with http.post(running.repo_url("/sparql"), headers=SPARQL_UPDATE,
                         data="INSERT DATA { <http://example.org/s> <http://example.org/p> 1 }") as response:
        assert response.status == 204, await response.text()
    return running


async def post(http: aiohttp.ClientSession, running: Running, text: str, *, update: bool,
               headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    return await http.post(running.repo_url("/sparql"), data=io.BytesIO(text.encode()),
                           headers={**(SPARQL_UPDATE if update else SPARQL_QUERY), **(headers or {})})


# -- SSRF: LOAD and SERVICE -------------------------------------------------------------------------------------


def fetching_texts(target: str) -> dict[str, tuple[str, bool]]:
    """Every spelling we know of a text that makes the engine fetch `target`: (text, is an update)."""
    return {
        "load": (f"LOAD <{target}> INTO GRAPH <http://example.org/g>", True),
        "load-silent-lowercase": (f"load silent <{target}>", True),
        "load-run-together": (f"LOADSILENT<{target}>", True),
        "load-prefixed": (f"PREFIX t: <{target}> LOAD t:x", True),
        "load-after-insert": (f"INSERT DATA {{ <http://a/b> <http://a/c> 1 }} ; LOAD <{target}>", True),
        "service": (f"SELECT * WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}", False),
        "service-nbsp-iri-hides-rest": (f"SELECT * WHERE {{ <http://x/\u00a0#> ?p ?o . SERVICE <{target}> {{}} }}",
                                        False),
        "service-after-cr-comment": (f"SELECT * WHERE {{ # comment\rSERVICE <{target}> {{}} }}", False),
        "service-silent-run-together": (f"ASK {{ SERVICESILENT<{target}>{{}} }}", False),
        "service-as-prefix": (f"PREFIX service: <{target}> ASK {{ service:x{{}} }}", False),
        "service-after-escaped-local": (f"PREFIX ex: <http://x/> ASK {{ ?s ex:p\\#x . SERVICE <{target}> {{}} }}",
                                        False),
        "service-after-boolean": (f"ASK {{ ?s ?p true SERVICE SILENT <{target}> {{}} }}", False),
        "service-in-update": (f"INSERT {{ ?s ?p ?o }} WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}", True),
    }


CASES = sorted(fetching_texts("http://127.0.0.1:1/"))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["sync", "notify", "monitor"])
async def test_sparql_that_would_fetch_is_refused_without_fetching(
        start_server: StartServer, start_receiver: StartReceiver, http: aiohttp.ClientSession,
        case: str, mode: str) -> None:
    listener = await start_receiver()
    running = await open_server(start_server, http, notify_allow=(listener.host_port,))
    text, update = fetching_texts(listener.url("/secret"))[case]
    headers = {"notify": {"Accept-Asynchronous": "notify"}, "monitor": {"Prefer": "respond-async"}}.get(mode, {})
    before = await dump_dataset(http, running)
    async with await post(http, running, text, update=update, headers=headers) as response:
        problem = await assert_problem(response, 400)
    assert problem["type"].endswith("/fetch-refused"), problem
    await asyncio.sleep(0.2)
    assert listener.received == [], "the server fetched the forbidden URL"
    assert await dump_dataset(http, running) == before


async def test_allowed_service_is_fetched_only_when_it_runs_and_not_through_a_redirect(
        start_server: StartServer, start_receiver: StartReceiver, http: aiohttp.ClientSession) -> None:
    """With SERVICE allowed to one listed endpoint, a task's acceptance check fetches nothing (the engine once
    fetched at acceptance too); the run fetches the endpoint once; its redirect elsewhere is not followed."""
    elsewhere = await start_receiver()
    endpoint = await start_receiver(redirect_to=elsewhere.url("/metadata"))
    running = await open_server(start_server, http, allow_service=True, service_endpoints=(endpoint.base,),
                                notify_allow=(endpoint.host_port, elsewhere.host_port))
    query = f"SELECT * WHERE {{ SERVICE SILENT <{endpoint.url('/sparql')}> {{ ?s ?p ?o }} }}"
    async with await post(http, running, query, update=False, headers={"Prefer": "respond-async"}) as response:
        assert response.status == 202, await response.text()
        task_id = (await response.json())["id"]
    assert endpoint.received == [], "the acceptance-time check fetched the endpoint"
    document = await wait_for_status(http, running, task_id)
    assert document["status"] == "completed", document
    assert len(endpoint.received) == 1
    assert elsewhere.received == [], "the engine followed a redirect"
    other = "SELECT * WHERE { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }"
    async with await post(http, running, other, update=False) as response:  # not a listed endpoint
        await assert_problem(response, 400, "not one of the endpoints")


# -- nesting and chains -----------------------------------------------------------------------------------------

NESTED = {
    "groups": lambda n: "SELECT * WHERE " + "{" * n + "}" * n,
    "optional": lambda n: "SELECT * WHERE { " + "OPTIONAL { " * n + "}" * n + " }",
    "parentheses": lambda n: "SELECT * WHERE { FILTER(" + "(" * n + "true" + ")" * n + ") }",
    "exists": lambda n: "SELECT * WHERE { " + "FILTER EXISTS { " * n + "}" * n + " }",
    "concat": lambda n: "SELECT * WHERE { BIND(" + "CONCAT(" * n + '"a"' + ")" * n + " AS ?x) }",
    "collections": lambda n: "SELECT * WHERE { ?s <http://example.org/p> " + "( " * n + ")" * n + " }",
    "update-groups": lambda n: "DELETE { } WHERE " + "{" * n + "}" * n,
    "triple-terms": lambda n: "SELECT * WHERE { ?s ?p " + "<<( ?s ?p " * n + "?o" + " )>>" * n + " }",
    "update-triple-terms": lambda n: ("DELETE DATA { <http://example.org/s> <http://example.org/p> "
                                      + "<<( <http://example.org/s> <http://example.org/p> " * n
                                      + "<http://example.org/o>" + " )>>" * n + " }"),
}


@pytest.mark.parametrize("construct", sorted(NESTED))
async def test_nesting_past_the_bound_is_refused_and_at_the_bound_runs(
        start_server: StartServer, http: aiohttp.ClientSession, construct: str) -> None:
    running = await open_server(start_server, http)
    depth = running.settings.max_query_depth
    update = construct.startswith("update")
    for n in (3000, depth + 1):  # the attack (a crash of the whole server before), then a text just past the bound
        text = NESTED[construct](n)
        async with await post(http, running, text, update=update) as response:
            problem = await assert_problem(response, 400, "nests brackets")
        assert problem["type"].endswith("/too-complex") and problem["max_depth"] == depth, problem
    allowed = NESTED[construct](depth - 2)  # the outer braces of the text add their own level
    async with await post(http, running, allowed, update=update) as response:
        assert response.status in (200, 204), await response.text()
    assert await count_triples(http, running) == 1


CHAINS = {
    "plus": lambda n: "SELECT * WHERE { FILTER(" + "+".join(["1"] * n) + ") }",
    "or": lambda n: "SELECT * WHERE { FILTER(" + "||".join(["true"] * n) + ") }",
    "union": lambda n: "SELECT * WHERE { " + " UNION ".join(["{}"] * n) + " }",
    "not": lambda n: "SELECT * WHERE { FILTER(" + "!" * n + "true) }",
    "bind": lambda n: "SELECT * WHERE { " + " ".join(f"BIND({i} AS ?v{i})" for i in range(n)) + " }",
    "aggregates": lambda n: "SELECT (" + "+".join(["COUNT(*)"] * n) + " AS ?c) WHERE { }",
}


@pytest.mark.parametrize("construct", sorted(CHAINS))
async def test_long_operator_chains_are_refused_before_the_engine(
        start_server: StartServer, http: aiohttp.ClientSession, construct: str) -> None:
    running = await open_server(start_server, http)
    async with await post(http, running, CHAINS[construct](10_000), update=False) as response:  # a crash before
        problem = await assert_problem(response, 400, "tokens outside data blocks")
    assert problem["type"].endswith("/too-complex"), problem
    async with await post(http, running, CHAINS[construct](200), update=False) as response:
        assert response.status == 200, await response.text()


def largest_within(build: Any, max_terms: int) -> str:
    """The longest chain of this kind that is still within max_query_terms."""
    low, high = 1, max_terms
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if scan(build(middle)).terms <= max_terms else (low, middle - 1)
    return str(build(low))


@pytest.mark.parametrize("construct", sorted(CHAINS))
async def test_the_longest_chain_within_the_bound_runs_safely(
        start_server: StartServer, http: aiohttp.ClientSession, construct: str) -> None:
    """The bound is safe: the longest chain it lets through runs, and the server (this process) lives on."""
    running = await open_server(start_server, http)
    text = largest_within(CHAINS[construct], running.settings.max_query_terms)
    async with await post(http, running, text, update=False) as response:
        assert response.status == 200, await response.text()
    async with http.get(running.url("/health")) as response:
        assert response.status == 200


async def test_large_data_blocks_are_not_counted_as_complexity(start_server: StartServer,
                                                               http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http)
    rows = " ".join(f"<http://example.org/s{i}> <http://example.org/p> {i} ." for i in range(20_000))
    async with await post(http, running, f"INSERT DATA {{ {rows} }}", update=True) as response:
        assert response.status == 204, await response.text()
    values = " ".join(str(i) for i in range(20_000))
    query = f"SELECT (COUNT(*) AS ?n) WHERE {{ VALUES ?x {{ {values} }} }}"
    async with await post(http, running, query, update=False, headers={"Accept": "text/csv"}) as response:
        assert response.status == 200, await response.text()
        assert (await response.text()).split() == ["n", "20000"]
    assert await count_triples(http, running) == 20_001


# -- huge texts -------------------------------------------------------------------------------------------------


async def test_query_past_max_query_bytes_is_413(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http, max_query_bytes=100_000)
    query = "SELECT * WHERE { VALUES ?x { " + "1 " * 60_000 + "} }"
    async with await post(http, running, query, update=False) as response:
        problem = await assert_problem(response, 413)
    assert problem["max_bytes"] == 100_000


async def test_a_large_query_is_scanned_off_the_event_loop(start_server: StartServer,
                                                           http: aiohttp.ClientSession) -> None:
    """A 9 MB VALUES query (the scan takes seconds) does not stop /health from answering meanwhile."""
    running = await open_server(start_server, http)
    query = "SELECT (COUNT(*) AS ?n) WHERE { VALUES ?x { " + " ".join(str(i) for i in range(1_300_000)) + " } }"
    assert 8_000_000 < len(query) < running.settings.max_query_bytes
    big = asyncio.create_task(http.post(running.repo_url("/sparql"), data=io.BytesIO(query.encode()),
                                        headers={**SPARQL_QUERY, "Accept": "text/csv"}))
    await asyncio.sleep(0.5)  # the body is sent and being scanned
    slowest = 0.0
    while not big.done():
        started = time.monotonic()
        async with http.get(running.url("/health")) as response:
            assert response.status == 200
        slowest = max(slowest, time.monotonic() - started)
        await asyncio.sleep(0.05)
    async with await big as response:
        assert response.status == 200, await response.text()
    assert slowest < 5.0, f"/health waited {slowest:.1f} s behind the scan"  # it was 28 s on the loop


# -- bodies: JSON-LD nesting, RDF/XML entities, gzip members ------------------------------------------------------


def nested_jsonld(depth: int) -> bytes:
    return ('{"@id": "http://example.org/s", "http://example.org/p": ' + '{"http://example.org/p": ' * depth
            + '"x"' + "}" * depth + "}").encode()


@pytest.mark.parametrize("mode", ["sync", "task"])
async def test_deeply_nested_jsonld_is_refused_and_the_worker_survives(
        start_server: StartServer, http: aiohttp.ClientSession, mode: str) -> None:
    running = await open_server(start_server, http)
    url = running.repo_url("/service?graph=http://example.org/g")
    headers = {"Content-Type": "application/ld+json"}
    if mode == "task":
        headers["Prefer"] = "respond-async"
    async with http.put(url, data=nested_jsonld(10_000), headers=headers) as response:  # 130 KB; a crash before
        if mode == "sync":
            problem = await assert_problem(response, 400, "nests objects and arrays")
        else:
            assert response.status == 202, await response.text()
            document = await wait_for_status(http, running, (await response.json())["id"])
            assert document["status"] == "failed", document
            problem = document["error"]
    assert problem["type"].endswith("/too-complex"), problem
    assert await count_triples(http, running) == 1
    async with http.put(url, data=nested_jsonld(50), headers={"Content-Type": "application/ld+json"}) as response:
        assert response.status == 201, await response.text()  # the worker and the server are alive
    assert await count_triples(http, running, "http://example.org/g") == 51


def nested_triple_terms(depth: int, *, lines: bool = False) -> bytes:
    """One statement whose object nests RDF 1.2 triple terms `depth` deep (N-Triples, so Turtle too); with
    `lines`, a line end inside every level."""
    term = "<http://example.org/o>"
    for _ in range(depth):
        term = f"<<( <http://example.org/s> <http://example.org/p> {term} )>>" + ("\n" if lines else "")
    return f"<http://example.org/s> <http://example.org/p> {term} .\n".encode()


@pytest.mark.parametrize(("media", "mode"), [("application/n-triples", "sync"), ("text/turtle", "sync"),
                                             ("text/turtle", "task"), ("text/turtle", "multipart"),
                                             ("application/n-quads", "sync"), ("application/trig", "task")])
async def test_deeply_nested_triple_terms_are_refused_and_the_server_survives(
        start_server: StartServer, http: aiohttp.ClientSession, media: str, mode: str) -> None:
    """20,000 nested triple terms (1.2 MB) crashed pyoxigraph (SIGSEGV) loading or dumping them."""
    running = await open_server(start_server, http)
    url = running.repo_url("/service?graph=http://example.org/g")
    body = nested_triple_terms(20_000, lines=media == "text/turtle")
    if mode == "multipart":
        form = aiohttp.FormData()
        form.add_field("part", io.BytesIO(body), content_type=media, filename="nested.ttl")
        request = http.post(url, data=form)
    else:
        headers = {"Content-Type": media, **({"Prefer": "respond-async"} if mode == "task" else {})}
        request = http.put(url, data=io.BytesIO(body), headers=headers)
    async with request as response:
        if mode == "task":
            assert response.status == 202, await response.text()
            document = await wait_for_status(http, running, (await response.json())["id"])
            assert document["status"] == "failed", document
            problem = document["error"]
        else:
            problem = await assert_problem(response, 400, "nests triple terms")
    assert problem["type"].endswith("/too-complex") and problem["max_depth"] == running.settings.max_body_depth
    assert await count_triples(http, running) == 1
    assert json.loads(await (await http.get(running.repo_url())).read())["graphs"] == []
    at_the_bound = nested_triple_terms(running.settings.max_body_depth)
    async with http.put(url, data=at_the_bound, headers={"Content-Type": "application/n-triples"}) as response:
        assert response.status == 201, await response.text()  # the server is alive, and the bound is not too low
    assert await count_triples(http, running, "http://example.org/g") == 1


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">
  <rdf:Description rdf:about="http://example.org/s"><ex:p>&lol8;</ex:p></rdf:Description>
</rdf:RDF>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">
  <rdf:Description rdf:about="http://example.org/s"><ex:p>&secret;</ex:p></rdf:Description>
</rdf:RDF>
"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, BILLION_LAUGHS.replace(b"\n", b"\r\n")],
                         ids=["billion-laughs", "external-entity", "crlf"])
async def test_rdfxml_with_entity_declarations_is_refused(start_server: StartServer, http: aiohttp.ClientSession,
                                                          body: bytes) -> None:
    running = await open_server(start_server, http)
    async with http.post(running.repo_url("/service?default"), data=body,
                         headers={"Content-Type": "application/rdf+xml"}) as response:
        problem = await assert_problem(response, 400, "entit")
    assert problem["type"].endswith("/too-complex"), problem
    assert await count_triples(http, running) == 1


async def test_gzip_body_of_several_members_is_stored_whole(start_server: StartServer,
                                                            http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http)
    first = b"".join(f'<http://example.org/a{i}> <http://example.org/p> "{i}" .\n'.encode() for i in range(100))
    second = b"".join(f'<http://example.org/b{i}> <http://example.org/p> "{i}" .\n'.encode() for i in range(100))
    url = running.repo_url("/service?graph=http://example.org/g")
    headers = {"Content-Type": "application/n-triples", "Content-Encoding": "gzip"}
    async with http.put(url, data=gzip.compress(first) + gzip.compress(second), headers=headers) as response:
        assert response.status == 201, await response.text()
    assert await count_triples(http, running, "http://example.org/g") == 200  # not the first member alone
    query = "ASK { <http://example.org/s> <http://example.org/p> 1 }"  # and a SPARQL body the same way
    async with http.post(running.repo_url("/sparql"), data=gzip.compress(query[:10].encode())
                         + gzip.compress(query[10:].encode()),
                         headers={**SPARQL_QUERY, "Content-Encoding": "gzip"}) as response:
        assert response.status == 200 and (await response.json())["boolean"] is True


@pytest.mark.parametrize("trailer", [b"garbage", b"\x1f\x8bnot-gzip", b"\x00" * 8])
async def test_gzip_body_with_trailing_data_is_refused(start_server: StartServer, http: aiohttp.ClientSession,
                                                       trailer: bytes) -> None:
    running = await open_server(start_server, http)
    body = gzip.compress(b"<http://example.org/a> <http://example.org/p> 1 .\n") + trailer
    async with http.put(running.repo_url("/service?graph=http://example.org/g"), data=body,
                        headers={"Content-Type": "application/n-triples", "Content-Encoding": "gzip"}) as response:
        problem = await assert_problem(response, 400, "gzip")
    assert problem["type"].endswith("/bad-encoding"), problem
    assert await count_triples(http, running) == 1
    assert json.loads(await (await http.get(running.repo_url())).read())["graphs"] == []


MULTIPART = (b"--XX\r\nContent-Type: text/turtle\r\n{extra}\r\n<http://example.org/a> <http://example.org/p> 1 .\r\n"
             b"--XX--\r\n")


@pytest.mark.parametrize(("content_type", "body", "status"), [
    ("multipart/form-data", MULTIPART.replace(b"{extra}", b""), 400),  # no boundary
    ("multipart/form-data; boundary=YY", MULTIPART.replace(b"{extra}", b""), 400),  # the wrong one
    ("multipart/form-data; boundary=XX", MULTIPART.replace(b"{extra}", b"")[:40], 400),  # cut short
    ("multipart/form-data; boundary=XX", MULTIPART.replace(b"{extra}", b"Content-Encoding: deflate\r\n"), 415),
], ids=["no-boundary", "wrong-boundary", "truncated", "deflate-part"])
async def test_bad_multipart_bodies_are_4xx_and_change_nothing(
        start_server: StartServer, http: aiohttp.ClientSession, content_type: str, body: bytes, status: int) -> None:
    running = await open_server(start_server, http)
    async with http.post(running.repo_url("/service?graph=http://example.org/g"), data=body,
                         headers={"Content-Type": content_type}) as response:
        await assert_problem(response, status)
    assert await count_triples(http, running) == 1
    assert await count_triples(http, running, "http://example.org/g") == 0


async def test_a_failing_service_endpoint_is_a_502_problem(start_server: StartServer, start_receiver: StartReceiver,
                                                           http: aiohttp.ClientSession) -> None:
    endpoint = await start_receiver(answers=[500])  # not SPARQL results
    running = await open_server(start_server, http, allow_service=True, service_endpoints=(endpoint.base,),
                                notify_allow=(endpoint.host_port,))
    query = f"SELECT * WHERE {{ SERVICE <{endpoint.url('/sparql')}> {{ ?s ?p ?o }} }}"
    async with await post(http, running, query, update=False) as response:
        problem = await assert_problem(response, 502, "SERVICE")
    assert problem["type"].endswith("/bad-gateway"), problem
    assert len(endpoint.received) == 1


async def test_a_listed_service_endpoint_is_still_within_the_egress_policy(
        start_server: StartServer, start_receiver: StartReceiver, http: aiohttp.ClientSession) -> None:
    endpoint = await start_receiver()
    running = await open_server(start_server, http, allow_service=True, service_endpoints=(endpoint.base,))
    query = f"SELECT * WHERE {{ SERVICE <{endpoint.url('/sparql')}> {{ ?s ?p ?o }} }}"  # loopback, not allowed
    async with await post(http, running, query, update=False) as response:
        problem = await assert_problem(response, 400, "refused")
    assert problem["type"].endswith("/fetch-refused"), problem
    assert endpoint.received == []
