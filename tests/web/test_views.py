"""Named views (issue 5, SPEC §5) over real HTTP: stored, replaced, listed, deleted and kept across a restart;
run in every format, with `$name=value` bindings of every kind, injection attempts, limit/offset, form POSTs,
grants, and graphs that do not exist. The asynchronous runs are in tests/tasks/test_views_async.py."""

from __future__ import annotations

import csv
import io
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import rdflib
from conftest import Running, StartServer, free_port
from helpers import assert_isomorphic, assert_problem, dump_dataset, get_ok, media_type, parse_graph
from pytest_aiohttp import AiohttpServer

from graphstore_async.auth import new_token, token_entry
from graphstore_async.settings import Settings
from graphstore_async.web.app import create_app

EX = "http://example.org/"
XSD = "http://www.w3.org/2001/XMLSchema#"
SRJ, SRX = "application/sparql-results+json", "application/sparql-results+xml"
SRX_NS = "{http://www.w3.org/2005/sparql-results#}"
SPARQL_QUERY = "application/sparql-query"
INJECTED = '" } DROP ALL {'
MULTILINE = 'two\nlines \\ back\\slash "quoted" \\" \r\n} ; DROP ALL ; #'
DATA = f"""@prefix ex: <{EX}> .
@prefix xsd: <{XSD}> .
ex:a ex:name "alice" ; ex:age 5 ; ex:score 2.5 ; ex:ratio 1e3 ; ex:active true ; ex:born "1990-05-17"^^xsd:date ;
  ex:tag "x"^^ex:custom ; ex:label "cat"@en , "chat"@fr ; ex:knows ex:b .
ex:b ex:name "bob" ; ex:age 6 ; ex:score 3.5 ; ex:active false ; ex:born "1991-01-01"^^xsd:date ;
  ex:tag "y"^^ex:custom ; ex:label "dog"@en ; ex:knows ex:a , ex:c .
ex:c ex:name "5" ; ex:label "cat" ; ex:born "1990-05-17" ; ex:knows _:x .
_:x ex:name "anonymous" ; ex:knows [ ex:name "nested" ] .
"""
ITEMS_GRAPH = EX + "items"

BY_OBJECT = "SELECT ?s ?p WHERE { ?s ?p ?o } ORDER BY ?s ?p"
OF_SUBJECT = f"PREFIX ex: <{EX}>\nSELECT ?o WHERE {{ ?s ?p ?o }} ORDER BY ?o"
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
PEOPLE = f"PREFIX ex: <{EX}>\nSELECT ?s ?name WHERE {{ ?s ex:name ?name }} ORDER BY ?name"
COPY = f"PREFIX ex: <{EX}>\nCONSTRUCT {{ ?s ex:link ?o . ?s ex:seen [ ex:by ?o ] }} WHERE {{ ?s ex:knows ?o }}"
ITEMS = f"SELECT ?v WHERE {{ GRAPH <{ITEMS_GRAPH}> {{ ?x <{EX}item> ?v }} }} ORDER BY ?v"


def data_graph() -> rdflib.Graph:
    """DATA, plus two subjects whose names are the injection strings the tests look for."""
    graph = rdflib.Graph().parse(data=DATA, format="turtle")
    graph.add((rdflib.URIRef(EX + "i1"), rdflib.URIRef(EX + "p"), rdflib.Literal(INJECTED)))
    graph.add((rdflib.URIRef(EX + "i2"), rdflib.URIRef(EX + "p"), rdflib.Literal(MULTILINE)))
    return graph


async def seed(http: aiohttp.ClientSession, running: Running, repo: str = "test/repo",
               headers: dict[str, str] | None = None) -> None:
    async with http.put(running.repo_url("/service?default", repo=repo),
                        data=data_graph().serialize(format="nt", encoding="utf-8"),
                        headers={"Content-Type": "application/n-triples", **(headers or {})}) as response:
        assert response.status in (201, 204), await response.text()
    async with http.put(running.repo_url("/service", repo=repo), params={"graph": ITEMS_GRAPH},
                        data="".join(f"<{EX}list> <{EX}item> {i} .\n" for i in range(10)),
                        headers={"Content-Type": "text/turtle", **(headers or {})}) as response:
        assert response.status in (201, 204), await response.text()


async def put_view(http: aiohttp.ClientSession, running: Running, name: str, text: str, status: int = 201,
                   headers: dict[str, str] | None = None) -> None:
    async with http.put(running.repo_url(f"/{name}"), data=text.encode(),
                        headers={"Content-Type": SPARQL_QUERY, **(headers or {})}) as response:
        assert response.status == status, await response.text()
        if status == 201:
            assert response.headers["Location"] == running.repo_url(f"/{name}")


async def rows(http: aiohttp.ClientSession, running: Running, path: str, **params: str) -> list[dict[str, Any]]:
    """A SELECT view's bindings, each variable to its full SPARQL JSON term."""
    content_type, body = await get_ok(http, running, path, SRJ, **params)
    assert content_type == SRJ
    bindings: list[dict[str, Any]] = json.loads(body)["results"]["bindings"]
    return bindings


async def values(http: aiohttp.ClientSession, running: Running, path: str, **params: str) -> list[tuple[str, ...]]:
    return [tuple(term["value"] for term in row.values()) for row in await rows(http, running, path, **params)]


async def sparql(http: aiohttp.ClientSession, running: Running, query: str, accept: str) -> bytes:
    async with http.get(running.repo_url("/sparql"), params={"query": query}, headers={"Accept": accept}) as r:
        body = await r.read()
        assert r.status == 200, body
        assert media_type(r.headers.get("Content-Type")) == accept
        return body


@pytest.fixture
async def seeded(server: Running, http: aiohttp.ClientSession) -> Running:
    await seed(http, server)
    return server


# -- managing views ----------------------------------------------------------------------------------------------


async def test_create_replace_get_text_list_and_delete(seeded: Running, http: aiohttp.ClientSession) -> None:
    started = datetime.now(UTC) - timedelta(seconds=2)
    await put_view(http, seeded, "people", PEOPLE, 201)
    await put_view(http, seeded, "copy", COPY, 201)
    async with http.get(seeded.repo_url("/people"), headers={"Accept": SPARQL_QUERY}) as response:
        assert response.status == 200
        assert media_type(response.headers["Content-Type"]) == SPARQL_QUERY
        assert await response.text() == PEOPLE
    assert [name for _, name in await values(http, seeded, "/people")][:3] == ["5", "alice", "anonymous"]
    replaced = PEOPLE.replace("ORDER BY ?name", "ORDER BY DESC(?name)")
    await put_view(http, seeded, "people", replaced, 204)
    async with http.get(seeded.repo_url("/people"), headers={"Accept": SPARQL_QUERY}) as response:
        assert await response.text() == replaced
    assert [name for _, name in await values(http, seeded, "/people")][:2] == ["nested", "bob"]
    async with http.get(seeded.repo_url("/views")) as response:
        assert response.status == 200, await response.text()
        listed = (await response.json())["views"]
    assert [(v["name"], v["form"], v["url"]) for v in listed] == [
        ("copy", "CONSTRUCT", seeded.repo_url("/copy")), ("people", "SELECT", seeded.repo_url("/people"))]
    for view in listed:
        assert started <= datetime.fromisoformat(view["modified"]) <= datetime.now(UTC) + timedelta(seconds=2)
    async with http.delete(seeded.repo_url("/people")) as response:
        assert response.status == 204, await response.text()
    for method in ("GET", "DELETE"):
        async with http.request(method, seeded.repo_url("/people")) as response:
            await assert_problem(response, 404, "people")
    async with http.get(seeded.repo_url("/views")) as response:
        assert [v["name"] for v in (await response.json())["views"]] == ["copy"]


async def test_unknown_view_is_404(seeded: Running, http: aiohttp.ClientSession) -> None:
    for method, headers in (("GET", {}), ("GET", {"Accept": SPARQL_QUERY}), ("DELETE", {})):
        async with http.request(method, seeded.repo_url("/nothing"), headers=headers) as response:
            await assert_problem(response, 404, "nothing")
    async with http.get(seeded.repo_url("/nothing.csv")) as response:
        await assert_problem(response, 404, "nothing")
    async with http.post(seeded.repo_url("/nothing"), data={"$s": "x"}) as response:
        await assert_problem(response, 404, "nothing")
    async with http.get(seeded.url("/test/none/people")) as response:
        await assert_problem(response, 404, "test/none")


async def test_bad_query_is_400_with_line_and_column_and_stores_nothing(seeded: Running,
                                                                       http: aiohttp.ClientSession) -> None:
    await put_view(http, seeded, "people", PEOPLE)
    bad = "SELECT ?s WHERE {\n  ?s ?p ?o .\n  BIND(1 AS 2)\n}"
    for name in ("broken", "people"):
        async with http.put(seeded.repo_url(f"/{name}"), data=bad.encode(),
                            headers={"Content-Type": SPARQL_QUERY}) as response:
            problem = await assert_problem(response, 400, "line 3", "column 13")
        assert (problem["line"], problem["column"]) == (3, 13), problem
    async with http.put(seeded.repo_url("/update"), data=f"INSERT DATA {{ <{EX}x> <{EX}p> 1 }}".encode(),
                        headers={"Content-Type": SPARQL_QUERY}) as response:
        await assert_problem(response, 400)
    async with http.get(seeded.repo_url("/people"), headers={"Accept": SPARQL_QUERY}) as response:
        assert await response.text() == PEOPLE  # the bad replacement left the view as it was
    async with http.get(seeded.repo_url("/views")) as response:
        assert [v["name"] for v in (await response.json())["views"]] == ["people"]


@pytest.mark.parametrize("name", ["service", "tasks", "SPARQL", "Views"])  # PUT on sparql, views: 405
async def test_reserved_names_are_400(seeded: Running, http: aiohttp.ClientSession, name: str) -> None:
    dump = await dump_dataset(http, seeded)
    async with http.put(seeded.repo_url(f"/{name}"), data=PEOPLE.encode(),
                        headers={"Content-Type": SPARQL_QUERY}) as response:
        await assert_problem(response, 400, "reserved")
    async with http.get(seeded.repo_url("/views")) as response:
        assert (await response.json())["views"] == []
    assert await dump_dataset(http, seeded) == dump


async def test_bad_names_and_endpoint_methods(seeded: Running, http: aiohttp.ClientSession) -> None:
    for name in ("people.ttl", "people.srj", "-dash", "x" * 65):
        async with http.put(seeded.repo_url(f"/{name}"), data=PEOPLE.encode(),
                            headers={"Content-Type": SPARQL_QUERY}) as response:
            await assert_problem(response, 400)
    for name, allowed in (("sparql", "GET, HEAD, OPTIONS, POST"), ("views", "GET, HEAD, OPTIONS")):
        async with http.put(seeded.repo_url(f"/{name}"), data=b"<urn:a> <urn:b> <urn:c> .",
                            headers={"Content-Type": "application/n-triples"}) as response:
            await assert_problem(response, 405)
            assert response.headers["Allow"] == allowed
    async with http.get(seeded.repo_url("/views")) as response:
        assert (await response.json())["views"] == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/sparql-update", "text/turtle", None])
async def test_wrong_content_type_is_415(seeded: Running, http: aiohttp.ClientSession,
                                         content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    async with http.put(seeded.repo_url("/people"), data=PEOPLE.encode(), headers=headers) as response:
        await assert_problem(response, 415)
    async with http.get(seeded.repo_url("/people")) as response:
        await assert_problem(response, 404)


async def restartable(aiohttp_server: AiohttpServer, data_dir: Path, redis_url: str) -> tuple[Running, Any]:
    """A server like conftest's that the test can close (the embedded store allows one process at a time)."""
    port = free_port()
    settings = Settings(data_dir=data_dir, redis_url=redis_url, base_url=f"http://127.0.0.1:{port}",
                        redis_prefix=f"gsa-test-{uuid.uuid4().hex[:12]}", heartbeat_s=0.5, notify_backoff_s=0.05)
    test_server = await aiohttp_server(create_app(settings), host="127.0.0.1", port=port)
    return Running(str(test_server.make_url("")).rstrip("/"), settings), test_server


async def test_views_survive_a_restart(start_server: StartServer, aiohttp_server: AiohttpServer, tmp_path: Path,
                                       redis_url: str, http: aiohttp.ClientSession) -> None:
    first, first_server = await restartable(aiohttp_server, tmp_path / "kept", redis_url)
    async with http.put(first.repo_url()) as response:
        assert response.status == 201, await response.text()
    await seed(http, first)
    await put_view(http, first, "people", PEOPLE)
    await put_view(http, first, "copy", COPY)
    expected_rows = await rows(http, first, "/people")
    async with http.get(first.repo_url("/views")) as response:
        listed = [(v["name"], v["form"], v["modified"]) for v in (await response.json())["views"]]
    await first_server.close()
    second = await start_server(data_dir=first.settings.data_dir)
    async with http.get(second.repo_url("/views")) as response:
        assert response.status == 200, await response.text()
        assert [(v["name"], v["form"], v["modified"]) for v in (await response.json())["views"]] == listed
    async with http.get(second.repo_url("/copy"), headers={"Accept": SPARQL_QUERY}) as response:
        assert await response.text() == COPY
    assert await rows(http, second, "/people") == expected_rows


# -- formats -----------------------------------------------------------------------------------------------------


def srx_rows(body: bytes) -> list[dict[str, Any]]:
    """SPARQL XML results as SPARQL JSON bindings."""
    out = []
    for result in ET.fromstring(body).iter(SRX_NS + "result"):
        row = {}
        for binding in result.iter(SRX_NS + "binding"):
            term = binding[0]
            kind = {"uri": "uri", "literal": "literal", "bnode": "bnode"}[term.tag.removeprefix(SRX_NS)]
            value: dict[str, Any] = {"type": kind, "value": term.text or ""}
            if term.get("datatype"):
                value["datatype"] = term.get("datatype")
            if term.get("{http://www.w3.org/XML/1998/namespace}lang"):
                value["xml:lang"] = term.get("{http://www.w3.org/XML/1998/namespace}lang")
            row[binding.get("name")] = value
        out.append(row)
    return out


@pytest.mark.parametrize(("extension", "accept", "expected"), [
    ("", None, SRJ), ("", SRJ, SRJ), ("", SRX, SRX), ("", "text/csv", "text/csv"),
    ("", "text/tab-separated-values", "text/tab-separated-values"),
    (".srj", None, SRJ), (".srx", None, SRX), (".csv", None, "text/csv"),
    (".tsv", None, "text/tab-separated-values"), (".csv", SRJ, "text/csv"), (".srj", "text/csv", SRJ),
])
async def test_select_view_in_every_format(seeded: Running, http: aiohttp.ClientSession, extension: str,
                                           accept: str | None, expected: str) -> None:
    await put_view(http, seeded, "people", PEOPLE)
    content_type, body = await get_ok(http, seeded, f"/people{extension}", accept)
    assert content_type == expected
    synchronous = await sparql(http, seeded, PEOPLE, expected)
    reference = json.loads(await sparql(http, seeded, PEOPLE, SRJ))["results"]["bindings"]
    assert len(reference) == 5
    if expected == SRJ:
        assert json.loads(body) == json.loads(synchronous)
    elif expected == SRX:
        assert srx_rows(body) == srx_rows(synchronous)
        assert [row["s"]["value"] for row in srx_rows(body)] == [row["s"]["value"] for row in reference]
    elif expected == "text/csv":
        table = list(csv.reader(io.StringIO(body.decode())))
        assert table == list(csv.reader(io.StringIO(synchronous.decode())))
        assert table[0] == ["s", "name"] and [r[1] for r in table[1:]] == [r["name"]["value"] for r in reference]
    else:
        assert body == synchronous
        lines = body.decode().splitlines()
        assert lines[0] == "?s\t?name" and len(lines) == 6, lines


@pytest.mark.parametrize(("extension", "accept", "expected"), [
    ("", None, "text/turtle"), (".ttl", None, "text/turtle"), (".nt", None, "application/n-triples"),
    (".nq", None, "application/n-quads"), (".jsonld", None, "application/ld+json"),
    ("", "application/n-triples", "application/n-triples"), ("", "application/n-quads", "application/n-quads"),
    ("", "application/ld+json", "application/ld+json"), ("", "application/rdf+xml", "application/rdf+xml"),
    ("", "application/trig", "application/trig"), (".nt", "application/rdf+xml", "application/n-triples"),
])
async def test_construct_view_in_every_format(seeded: Running, http: aiohttp.ClientSession, extension: str,
                                              accept: str | None, expected: str) -> None:
    await put_view(http, seeded, "copy", COPY)
    content_type, body = await get_ok(http, seeded, f"/copy{extension}", accept)
    assert content_type == expected
    graph = parse_graph(body, expected)
    assert len(graph) == 5 * 3, graph.serialize(format="nt")  # 5 ex:knows: a link, a seen node, its ex:by
    assert_isomorphic(parse_graph(await sparql(http, seeded, COPY, expected), expected), graph)


async def test_ask_view_and_formats_a_form_cannot_produce(seeded: Running, http: aiohttp.ClientSession) -> None:
    await put_view(http, seeded, "people", PEOPLE)
    await put_view(http, seeded, "copy", COPY)
    await put_view(http, seeded, "known", f"ASK {{ ?s <{EX}knows> ?o }}")
    for path in ("/people.ttl", "/people.nt", "/people.jsonld", "/copy.srj", "/copy.csv", "/known.ttl"):
        async with http.get(seeded.repo_url(path)) as response:
            await assert_problem(response, 400, path.rpartition(".")[2])
    async with http.get(seeded.repo_url("/people"), headers={"Accept": "text/turtle"}) as response:
        await assert_problem(response, 406)
    _, body = await get_ok(http, seeded, "/known.srj", **{"$o": f"<{EX}a>"})
    assert json.loads(body)["boolean"] is True
    _, body = await get_ok(http, seeded, "/known", **{"$o": f"<{EX}nobody>"})
    assert json.loads(body)["boolean"] is False


# -- bindings ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (f"<{EX}b>", [("a", "knows")]),
    ("5", [("a", "age")]),                       # an integer: not the string "5" of ex:c
    ('"5"', [("c", "name")]),                    # a plain literal: not the integer
    ("2.5", [("a", "score")]),                   # decimal
    ("1e3", [("a", "ratio")]),                   # double
    ("true", [("a", "active")]),
    ("false", [("b", "active")]),
    ('"1990-05-17"^^xsd:date', [("a", "born")]),  # not ex:c's plain "1990-05-17"
    (f'"1990-05-17"^^<{XSD}date>', [("a", "born")]),
    ("1990-05-17", [("c", "born")]),
    (f'"x"^^<{EX}custom>', [("a", "tag")]),
    ('"cat"@en', [("a", "label")]),              # not ex:c's plain "cat"
    ('"chat"@fr', [("a", "label")]),
    ("cat", [("c", "label")]),                   # plain text: a plain literal, not the tagged one
    ("alice", [("a", "name")]),
    ("nobody", []),
    ("6.0", []),                                 # a decimal is not the integer 6
])
async def test_each_binding_kind_filters(seeded: Running, http: aiohttp.ClientSession, value: str,
                                         expected: list[tuple[str, str]]) -> None:
    await put_view(http, seeded, "by-object", BY_OBJECT)
    found = await values(http, seeded, "/by-object", **{"$o": value})
    assert found == [(EX + s, EX + p) for s, p in expected]
    async with http.post(seeded.repo_url("/by-object"), data={"$o": value}, headers={"Accept": SRJ}) as response:
        assert response.status == 200, await response.text()
        posted = (await response.json(content_type=None))["results"]["bindings"]
    assert [(row["s"]["value"], row["p"]["value"]) for row in posted] == found


async def test_bound_terms_come_back_typed(seeded: Running, http: aiohttp.ClientSession) -> None:
    await put_view(http, seeded, "of-subject", OF_SUBJECT)
    found = await rows(http, seeded, "/of-subject", **{"$s": f"<{EX}a>", "$p": f"<{EX}label>"})
    assert [row["o"] for row in found] == [{"type": "literal", "value": "cat", "xml:lang": "en"},
                                           {"type": "literal", "value": "chat", "xml:lang": "fr"}]
    found = await rows(http, seeded, "/of-subject", **{"$s": f"<{EX}b>", "$p": f"<{EX}born>"})
    assert [row["o"] for row in found] == [{"type": "literal", "value": "1991-01-01", "datatype": XSD + "date"}]
    found = await rows(http, seeded, "/of-subject", **{"$s": f"<{EX}c>", "$o": '"cat"@en'})
    assert found == []


async def test_binding_restricts_what_an_aggregate_counts(seeded: Running, http: aiohttp.ClientSession) -> None:
    await put_view(http, seeded, "count", COUNT)
    total = len(data_graph())
    assert await values(http, seeded, "/count") == [(str(total),)]
    assert await values(http, seeded, "/count", **{"$s": f"<{EX}a>"}) == [("10",)]
    assert await values(http, seeded, "/count", **{"$p": f"<{EX}label>"}) == [("4",)]
    assert await values(http, seeded, "/count", **{"$s": f"<{EX}b>", "$p": f"<{EX}knows>"}) == [("2",)]
    grouped = "SELECT ?s (COUNT(?o) AS ?n) WHERE {{ ?s ?p ?o }} GROUP BY ?s ORDER BY ?s"
    await put_view(http, seeded, "grouped", grouped)
    assert await values(http, seeded, "/grouped", **{"$p": f"<{EX}age>"}) == [(EX + "a", "1"), (EX + "b", "1")]


async def test_unknown_variable_or_bad_value_is_400(seeded: Running, http: aiohttp.ClientSession) -> None:
    await put_view(http, seeded, "by-object", BY_OBJECT)
    for params in ({"$x": "1"}, {"$": "1"}, {"$o": "1", "$nope": "2"}, {"$o": '"x"@not a tag'},
                   {"$o": "<not an iri>"}, {"$o": "<relative>"}, {"limit": "-1"}, {"offset": "x"}):
        async with http.get(seeded.repo_url("/by-object"), params=params) as response:
            await assert_problem(response, 400)
    async with http.post(seeded.repo_url("/by-object"), data={"$x": "1"}) as response:
        await assert_problem(response, 400, "x")



@pytest.mark.parametrize("body", [b"$o=%FF", b"$o=\xff", b"$o=%C3%28", b"$o=\xc3\x28"],
                         ids=["escaped-ff", "raw-ff", "escaped-bad-pair", "raw-bad-pair"])
@pytest.mark.parametrize("mode", [{}, {"Accept-Asynchronous": "notify"}, {"Prefer": "respond-async"}],
                         ids=["now", "notify", "monitor"])
async def test_a_posted_form_that_is_not_utf8_is_400_and_queues_nothing(
        seeded: Running, http: aiohttp.ClientSession, body: bytes, mode: dict[str, str]) -> None:
    """A view's POSTed arguments are read strictly, as the SPARQL endpoint reads its forms: bytes (raw or
    percent-escaped) that are not UTF-8 are the client's error, not a replacement character bound into the query."""
    await put_view(http, seeded, "by-object", BY_OBJECT)
    async with http.post(seeded.repo_url("/by-object"), data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded", **mode}) as response:
        problem = await assert_problem(response, 400, "UTF-8")
    assert problem["type"].endswith("/bad-request"), problem
    async with http.get(seeded.url("/tasks")) as listed:
        assert (await listed.json())["tasks"] == []  # nothing was queued


# -- injection ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "status", "expected"), [
    (INJECTED, 200, ["i1"]),
    (MULTILINE, 200, ["i2"]),
    ("<http://x> } ; DROP ALL ; SELECT * {", 200, []),
    ('"x" . } DELETE WHERE { ?s ?p ?o } #', 200, []),
    ('"a\\" } DROP ALL { "', 200, []),
    ('"\\\\" } DROP ALL { "', 200, []),
    ("x\n} ; CLEAR DEFAULT ; SELECT * WHERE {\n#", 200, []),
    ("<http://x> DROP ALL <http://y>", 400, []),
    ("<http://x> } ; DROP ALL ; INSERT DATA { <http://a> <http://b> <http://c> } #>", 400, []),
    ('"x"@en } DROP ALL {', 400, []),
    ('"x"^^<http://x } DROP ALL { >', 400, []),
])
async def test_injection_attempts_change_nothing(seeded: Running, http: aiohttp.ClientSession, value: str,
                                                 status: int, expected: list[str]) -> None:
    await put_view(http, seeded, "by-object", f"SELECT ?s WHERE {{ ?s <{EX}p> ?o }} ORDER BY ?s")
    before = await dump_dataset(http, seeded)
    assert len(before) == len(data_graph()) + 10
    for how in ("get", "post"):
        request: dict[str, Any] = ({"params": {"$o": value}} if how == "get" else {"data": {"$o": value}})
        async with http.request(how.upper(), seeded.repo_url("/by-object"), headers={"Accept": SRJ},
                                **request) as response:
            if status == 400:
                await assert_problem(response, 400)
            else:
                assert response.status == 200, await response.text()
                found = (await response.json(content_type=None))["results"]["bindings"]
                assert [row["s"]["value"] for row in found] == [EX + name for name in expected]
        assert await dump_dataset(http, seeded) == before


async def test_injection_through_names_limit_and_offset(seeded: Running, http: aiohttp.ClientSession) -> None:
    await put_view(http, seeded, "by-object", BY_OBJECT)
    before = await dump_dataset(http, seeded)
    for params in ({"$o } DROP ALL { ?s": "1"}, {"limit": "1 } DROP ALL {"}, {"offset": "0 ; DROP ALL"},
                   {"limit": "1\nDROP ALL"}):
        async with http.get(seeded.repo_url("/by-object"), params=params) as response:
            await assert_problem(response, 400)
    assert await dump_dataset(http, seeded) == before


# -- limit and offset --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "params", "expected"), [
    (ITEMS, {}, list(range(10))),
    (ITEMS, {"limit": "3"}, [0, 1, 2]),
    (ITEMS, {"offset": "7"}, [7, 8, 9]),
    (ITEMS, {"limit": "3", "offset": "2"}, [2, 3, 4]),
    (ITEMS, {"limit": "0"}, []),
    (ITEMS + " LIMIT 5 OFFSET 2", {}, [2, 3, 4, 5, 6]),
    (ITEMS + " LIMIT 5 OFFSET 2", {"limit": "2"}, [2, 3]),
    (ITEMS + " LIMIT 5 OFFSET 2", {"limit": "9"}, [2, 3, 4, 5, 6]),
    (ITEMS + " LIMIT 5 OFFSET 2", {"offset": "1"}, [3, 4, 5, 6]),
    (ITEMS + " LIMIT 5 OFFSET 2", {"offset": "4", "limit": "10"}, [6]),
    (ITEMS + " LIMIT 5 OFFSET 2", {"offset": "5"}, []),
    (ITEMS + " offset 3 limit 4", {"limit": "2", "offset": "1"}, [4, 5]),
    (ITEMS + " LIMIT 4", {"offset": "2"}, [2, 3]),
    (ITEMS + " OFFSET 6", {"limit": "2"}, [6, 7]),
    (f"SELECT ?v WHERE {{ {{ SELECT ?v WHERE {{ GRAPH <{ITEMS_GRAPH}> {{ ?x <{EX}item> ?v }} }}"
     " ORDER BY ?v LIMIT 8 } } ORDER BY DESC(?v)",
     {"limit": "3"}, [7, 6, 5]),
    (ITEMS + " LIMIT 5 VALUES ?x { <http://example.org/list> }", {"offset": "3"}, [3, 4]),
])
async def test_limit_and_offset(seeded: Running, http: aiohttp.ClientSession, query: str, params: dict[str, str],
                                expected: list[int]) -> None:
    await put_view(http, seeded, "items", query)
    assert [int(v) for (v,) in await values(http, seeded, "/items", **params)] == expected
    async with http.post(seeded.repo_url("/items"), data=params, headers={"Accept": "text/csv"}) as response:
        assert response.status == 200, await response.text()
        assert [int(line) for line in (await response.text()).splitlines()[1:]] == expected


# -- grants and missing graphs -----------------------------------------------------------------------------------

TEST_TOKEN, READER, WRITER, STRANGER = new_token(), new_token(), new_token(), new_token()
ACCOUNTS = """
[accounts.test]

[accounts.reader]
grants = { "test/repo" = "read" }

[accounts.writer]
grants = { "test/repo" = "write" }

[accounts.stranger]
""" + "".join(token_entry(account, token) for account, token in
              (("test", TEST_TOKEN), ("reader", READER), ("writer", WRITER), ("stranger", STRANGER)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_running_needs_read_and_managing_needs_write(start_server: StartServer,
                                                           http: aiohttp.ClientSession) -> None:
    running = await start_server(config=ACCOUNTS)
    async with http.put(running.repo_url(), headers=bearer(TEST_TOKEN)) as response:
        assert response.status == 201, await response.text()
    await seed(http, running, headers=bearer(TEST_TOKEN))
    await put_view(http, running, "people", PEOPLE, headers=bearer(TEST_TOKEN))
    url = running.repo_url("/people")
    text_head = {"Accept": SPARQL_QUERY}

    async with http.get(url) as response:
        await assert_problem(response, 401)
    for method, extra, data in (("GET", {}, None), ("GET", text_head, None), ("POST", {}, {"$s": "x"})):
        async with http.request(method, url, headers={**bearer(STRANGER), **extra}, data=data) as response:
            await assert_problem(response, 403, "stranger has no read grant on test/repo")
    for path in ("/views", "/missing", "/people.csv"):
        async with http.get(running.repo_url(path), headers=bearer(STRANGER)) as response:
            await assert_problem(response, 403, "stranger has no read grant on test/repo")
    for token, name in ((STRANGER, "stranger"), (READER, "reader")):
        async with http.put(running.repo_url("/mine"), data=PEOPLE.encode(),
                            headers={**bearer(token), "Content-Type": SPARQL_QUERY}) as response:
            await assert_problem(response, 403, f"{name} has no write grant on test/repo")
        async with http.put(url, data=COUNT.encode(),
                            headers={**bearer(token), "Content-Type": SPARQL_QUERY}) as response:
            await assert_problem(response, 403, f"{name} has no write grant on test/repo")
        async with http.delete(url, headers=bearer(token)) as response:
            await assert_problem(response, 403, f"{name} has no write grant on test/repo")

    async with http.get(url, headers={**bearer(READER), "Accept": SRJ}) as response:
        assert response.status == 200, await response.text()
        assert len((await response.json(content_type=None))["results"]["bindings"]) == 5
    async with http.post(url, data={"$name": "bob"}, headers={**bearer(READER), "Accept": SRJ}) as response:
        assert response.status == 200, await response.text()
        assert len((await response.json(content_type=None))["results"]["bindings"]) == 1
    async with http.get(url, headers={**bearer(READER), **text_head}) as response:
        assert await response.text() == PEOPLE
    async with http.get(running.repo_url("/views"), headers=bearer(READER)) as response:
        assert [v["name"] for v in (await response.json())["views"]] == ["people"]

    await put_view(http, running, "mine", COUNT, 201, headers=bearer(WRITER))
    await put_view(http, running, "mine", ITEMS, 204, headers=bearer(WRITER))
    async with http.delete(running.repo_url("/mine"), headers=bearer(WRITER)) as response:
        assert response.status == 204, await response.text()
    async with http.get(url.replace("/people", "/people.csv"), headers=bearer(WRITER)) as response:
        assert response.status == 200, await response.text()
    async with http.get(running.repo_url("/views"), headers=bearer(TEST_TOKEN)) as response:
        assert [v["name"] for v in (await response.json())["views"]] == ["people"]


async def test_view_over_a_graph_that_does_not_exist(seeded: Running, http: aiohttp.ClientSession) -> None:
    missing = EX + "missing"
    await put_view(http, seeded, "in-graph", f"SELECT ?s ?o WHERE {{ GRAPH <{missing}> {{ ?s ?p ?o }} }}")
    await put_view(http, seeded, "from", f"SELECT ?s FROM <{missing}> WHERE {{ ?s ?p ?o }}")
    await put_view(http, seeded, "copy", f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{missing}> {{ ?s ?p ?o }} }}")
    await put_view(http, seeded, "count", f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{missing}> {{ ?s ?p ?o }} }}")
    assert await rows(http, seeded, "/in-graph") == []
    assert await rows(http, seeded, "/in-graph", **{"$s": f"<{EX}a>"}) == []
    assert await rows(http, seeded, "/from") == []
    assert await values(http, seeded, "/count") == [("0",)]
    for extension, media in ((".ttl", "text/turtle"), (".nq", "application/n-quads"),
                             (".jsonld", "application/ld+json")):
        content_type, body = await get_ok(http, seeded, "/copy" + extension)
        assert content_type == media
        assert len(parse_graph(body, media)) == 0
    content_type, body = await get_ok(http, seeded, "/in-graph.csv")
    assert body.decode().splitlines() == ["s,o"]
