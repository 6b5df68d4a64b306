"""SPARQL 1.1 Protocol over real HTTP: the three ways to query, updates, negotiation, datasets, bad inputs."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import rdflib
from helpers import (
    RDFLIB_FORMATS,
    assert_isomorphic,
    assert_problem,
    dump_dataset,
    media_type,
    parse_graph,
    select,
    update,
)

EX = "http://example.org/"
G1, G2, RICH_GRAPH, OUT = EX + "g1", EX + "g2", EX + "rich", EX + "out"
SRX = "{http://www.w3.org/2005/sparql-results#}"
RICH_TURTLE = """@prefix ex: <http://example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
ex:alice a ex:Person ; ex:name "Alice"@en , "Alicia"@es ; ex:age "42"^^xsd:integer ;
  ex:born "1990-05-17"^^xsd:date ; ex:knows _:bob ; ex:address [ ex:city ex:Springfield ] .
_:bob ex:name "Bob \\"B\\"" ; ex:knows ex:alice .
"""
RICH = rdflib.Graph().parse(data=RICH_TURTLE, format="turtle")
SEED = f"""PREFIX ex: <{EX}>
INSERT DATA {{
  ex:d ex:p "default" .
  GRAPH ex:g1 {{ ex:a ex:p "one"@en . ex:a ex:q ex:c }}
  GRAPH ex:g2 {{ ex:b ex:p "two" }}
}}"""
SELECT_P = f"SELECT ?s ?o WHERE {{ GRAPH ?g {{ ?s <{EX}p> ?o }} }} ORDER BY ?s"
SELECT_ROWS = [{"s": EX + "a", "o": "one"}, {"s": EX + "b", "o": "two"}]


@pytest.fixture
async def seeded(server: Any, http: aiohttp.ClientSession) -> list[str]:
    """The repository with a default graph, g1, g2 and a rich graph; the dump of it all."""
    await update(http, server, SEED)
    async with http.put(server.repo_url("/service"), params={"graph": RICH_GRAPH}, data=RICH_TURTLE,
                        headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 201, await response.text()
    return await dump_dataset(http, server)


def sparql_request(how: str, name: str, text: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    """Request arguments carrying a query or update by GET, POST form or POST direct."""
    params = dict(params or {})
    if how == "get":
        return {"method": "GET", "params": {name: text, **params}}
    if how == "form":
        return {"method": "POST", "data": {name: text, **params}}
    kind = "application/sparql-query" if name == "query" else "application/sparql-update"
    return {"method": "POST", "params": params, "data": text.encode(), "headers": {"Content-Type": kind}}


async def call(http: aiohttp.ClientSession, server: Any, args: dict[str, Any],
               accept: str | None = None) -> aiohttp.ClientResponse:
    args = {**args, "headers": {**args.get("headers", {}), **({"Accept": accept} if accept else {})}}
    return await http.request(args.pop("method"), server.repo_url("/sparql"), **args)


def json_rows(body: bytes) -> list[dict[str, str]]:
    doc = json.loads(body)
    assert doc["head"]["vars"] == ["s", "o"], doc
    return [{k: v["value"] for k, v in row.items()} for row in doc["results"]["bindings"]]


def xml_rows(body: bytes) -> list[dict[str, str]]:
    root = ET.fromstring(body)
    assert [v.get("name") for v in root.iter(SRX + "variable")] == ["s", "o"]
    return [{b.get("name", ""): "".join(b.itertext()) for b in result.iter(SRX + "binding")}
            for result in root.iter(SRX + "result")]


def csv_rows(body: bytes) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["s", "o"], rows
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def tsv_rows(body: bytes) -> list[dict[str, str]]:
    lines = body.decode().splitlines()
    assert lines[0] == "?s\t?o", lines
    assert lines[1:] == [f'<{EX}a>\t"one"@en', f'<{EX}b>\t"two"'], lines
    return SELECT_ROWS


RESULT_PARSERS: dict[str, Callable[[bytes], list[dict[str, str]]]] = {
    "application/sparql-results+json": json_rows,
    "application/sparql-results+xml": xml_rows,
    "text/csv": csv_rows,
    "text/tab-separated-values": tsv_rows,
}


@pytest.mark.parametrize("how", ["get", "form", "direct"])
async def test_query_by_each_method_answers_rows(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                                 how: str) -> None:
    async with await call(http, server, sparql_request(how, "query", SELECT_P)) as response:
        body = await response.read()
        assert response.status == 200, body
        assert json_rows(body) == SELECT_ROWS


@pytest.mark.parametrize("how", ["form", "direct"])
async def test_update_by_each_method_changes_data(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                                  how: str) -> None:
    text = f'INSERT DATA {{ GRAPH <{G2}> {{ <{EX}new> <{EX}p> "{how}" }} }}'
    async with await call(http, server, sparql_request(how, "update", text)) as response:
        assert response.status == 204, await response.text()
    rows = await select(http, server, SELECT_P)
    assert rows == [*SELECT_ROWS, {"s": EX + "new", "o": how}]


@pytest.mark.parametrize("accept", list(RESULT_PARSERS))
async def test_select_result_in_negotiated_format(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                                  accept: str) -> None:
    async with await call(http, server, sparql_request("get", "query", SELECT_P), accept) as response:
        body = await response.read()
        assert response.status == 200, body
        assert media_type(response.headers["Content-Type"]) == accept
        assert RESULT_PARSERS[accept](body) == SELECT_ROWS


async def test_select_json_content_type_has_no_parameters(server: Any, http: aiohttp.ClientSession) -> None:
    async with await call(http, server, sparql_request("get", "query", SELECT_P),
                          "application/sparql-results+json") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/sparql-results+json"


@pytest.mark.parametrize(("accept", "expected"), [
    ("application/sparql-results+xml;q=0.9, application/sparql-results+json;q=0.1", "application/sparql-results+xml"),
    ("application/sparql-results+xml;q=0.1, application/sparql-results+json;q=0.9", "application/sparql-results+json"),
    ("text/*;q=0.5, text/tab-separated-values;q=0.8, */*;q=0.1", "text/tab-separated-values"),
])
async def test_select_accept_q_values_respected(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                                accept: str, expected: str) -> None:
    async with await call(http, server, sparql_request("get", "query", SELECT_P), accept) as response:
        body = await response.read()
        assert response.status == 200, body
        assert media_type(response.headers["Content-Type"]) == expected
        assert RESULT_PARSERS[expected](body) == SELECT_ROWS


@pytest.mark.parametrize(("query", "answer"), [(f"ASK {{ GRAPH <{G1}> {{ ?s ?p ?o }} }}", True),
                                               (f"ASK {{ GRAPH <{OUT}> {{ ?s ?p ?o }} }}", False)])
async def test_ask_result_in_json_and_xml(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                          query: str, answer: bool) -> None:
    async with await call(http, server, sparql_request("get", "query", query),
                          "application/sparql-results+json") as response:
        assert response.headers["Content-Type"] == "application/sparql-results+json"
        assert json.loads(await response.read()) == {"head": {}, "boolean": answer}
    async with await call(http, server, sparql_request("get", "query", query),
                          "application/sparql-results+xml") as response:
        assert media_type(response.headers["Content-Type"]) == "application/sparql-results+xml"
        root = ET.fromstring(await response.read())
        assert [b.text for b in root.iter(SRX + "boolean")] == [str(answer).lower()]


CONSTRUCT = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{RICH_GRAPH}> {{ ?s ?p ?o }} }}"


@pytest.mark.parametrize("accept", [None, "*/*", "text/html, */*;q=0.1"])
async def test_construct_defaults_to_turtle(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                            accept: str | None) -> None:
    headers = {} if accept is None else {"Accept": accept}
    async with http.get(server.repo_url("/sparql"), params={"query": CONSTRUCT}, headers=headers,
                        skip_auto_headers=["Accept"]) as response:
        text = await response.text()
        assert response.status == 200, text
        assert media_type(response.headers["Content-Type"]) == "text/turtle"
    assert_isomorphic(RICH, parse_graph(text, "text/turtle"))


@pytest.mark.parametrize("accept", list(RDFLIB_FORMATS))
async def test_construct_in_each_rdf_format(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                            accept: str) -> None:
    async with await call(http, server, sparql_request("form", "query", CONSTRUCT), accept) as response:
        text = await response.text()
        assert response.status == 200, text
        assert media_type(response.headers["Content-Type"]) == accept
    assert_isomorphic(RICH, parse_graph(text, accept))


@pytest.mark.parametrize(("query", "accept"), [
    (SELECT_P, "image/png"),
    (f"ASK {{ <{EX}a> ?p ?o }}", "text/turtle"),
    (CONSTRUCT, "application/sparql-results+json"),
])
async def test_query_accept_unavailable_is_406(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                               query: str, accept: str) -> None:
    async with await call(http, server, sparql_request("get", "query", query), accept) as response:
        await assert_problem(response, 406, accept)


async def test_query_default_graph_uri_restricts_default_graph(server: Any, http: aiohttp.ClientSession,
                                                               seeded: list[str]) -> None:
    query = f"SELECT ?s ?o WHERE {{ ?s <{EX}p> ?o }} ORDER BY ?s"
    assert await select(http, server, query) == [{"s": EX + "d", "o": "default"}]
    assert await select(http, server, query, **{"default-graph-uri": G1}) == SELECT_ROWS[:1]
    async with await call(http, server, sparql_request("form", "query", query, {"default-graph-uri": G2})) as r:
        assert json_rows(await r.read()) == SELECT_ROWS[1:]


async def test_query_named_graph_uri_restricts_named_graphs(server: Any, http: aiohttp.ClientSession,
                                                            seeded: list[str]) -> None:
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?g"
    assert await select(http, server, query) == [{"g": G1}, {"g": G2}, {"g": RICH_GRAPH}]
    assert await select(http, server, query, **{"named-graph-uri": G2}) == [{"g": G2}]


@pytest.mark.parametrize("how", ["form", "direct"])
async def test_update_using_graph_uri_applies_to_where(server: Any, http: aiohttp.ClientSession, seeded: list[str],
                                                       how: str) -> None:
    text = f"INSERT {{ GRAPH <{OUT}> {{ ?s a <{EX}Copied> }} }} WHERE {{ ?s <{EX}p> ?o }}"
    args = sparql_request(how, "update", text, {"using-graph-uri": G1})
    async with await call(http, server, args) as response:
        assert response.status == 204, await response.text()
    assert await select(http, server, f"SELECT ?s WHERE {{ GRAPH <{OUT}> {{ ?s ?p ?o }} }}") == [{"s": EX + "a"}]


async def test_update_with_and_using_graph_uri_is_400(server: Any, http: aiohttp.ClientSession,
                                                      seeded: list[str]) -> None:
    text = f"WITH <{G1}> INSERT {{ ?s a <{EX}Copied> }} WHERE {{ ?s <{EX}p> ?o }}"
    async with await call(http, server, sparql_request("direct", "update", text, {"using-graph-uri": G2})) as r:
        await assert_problem(r, 400, "WITH", "using-graph-uri")
    assert await dump_dataset(http, server) == seeded


async def test_query_syntax_error_reports_line_and_column(server: Any, http: aiohttp.ClientSession) -> None:
    query = "SELECT ?s WHERE {\n  ?s ?p ?o .\n  BIND(1 AS 2)\n}"
    async with await call(http, server, sparql_request("get", "query", query)) as response:
        problem = await assert_problem(response, 400, "line 3", "column 13")
    assert (problem["line"], problem["column"]) == (3, 13), problem


async def test_update_syntax_error_in_second_operation_changes_nothing(server: Any, http: aiohttp.ClientSession,
                                                                       seeded: list[str]) -> None:
    text = f'INSERT DATA {{ <{EX}x> <{EX}p> "x" }} ;\nDELETE {{ ?s ?p ?o }}\nWHERE {{\n  BIND(1 AS 2)\n}}'
    for how in ("form", "direct"):
        async with await call(http, server, sparql_request(how, "update", text)) as response:
            problem = await assert_problem(response, 400, "update", "line 4")
        assert (problem["line"], problem["column"]) == (4, 13), problem
    assert await dump_dataset(http, server) == seeded


BAD = f'INSERT DATA {{ <{EX}x> <{EX}p> "x" }}'
UTF16 = (400, 415)  # a 4xx either way: the protocol takes UTF-8 only
BAD_REQUESTS: dict[str, tuple[dict[str, Any], int | tuple[int, ...], list[str]]] = {
    "get_with_update": ({"method": "GET", "params": {"update": BAD}}, 400, ["POST"]),
    "two_queries": ({"method": "GET", "params": [("query", SELECT_P), ("query", SELECT_P)]}, 400, ["exactly one"]),
    "query_and_update": ({"method": "POST", "data": {"query": SELECT_P, "update": BAD}}, 400, ["exactly one"]),
    "nothing": ({"method": "POST", "data": {"other": "x"}}, 400, ["neither"]),
    "wrong_content_type": ({"method": "POST", "data": BAD.encode(), "headers": {"Content-Type": "text/plain"}},
                           415, ["text/plain"]),
    "utf16_update": ({"method": "POST", "data": BAD.encode("utf-16"),
                      "headers": {"Content-Type": "application/sparql-update; charset=UTF-16"}}, UTF16, ["utf-16"]),
    "utf16_query": ({"method": "POST", "data": SELECT_P.encode("utf-16"),
                     "headers": {"Content-Type": "application/sparql-query; charset=UTF-16"}}, UTF16, ["utf-16"]),
    "service_query": ({"method": "GET", "params": {"query": "SELECT * WHERE { SERVICE <http://127.0.0.1:9/> {} }"}},
                      400, ["SERVICE"]),
    "service_update": ({"method": "POST", "data": {"update": f"INSERT {{ <{EX}x> <{EX}p> ?o }} WHERE "
                                                             "{ SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }"}},
                       400, ["SERVICE"]),
    "update_syntax": ({"method": "POST", "data": {"update": "INSERT DATA { <x> }"}}, 400, ["update", "parse"]),
    "update_with_default_graph_uri": ({"method": "POST", "data": {"update": BAD, "default-graph-uri": G1}}, 400,
                                      ["using-graph-uri"]),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_sparql_bad_input_is_refused_and_changes_nothing(server: Any, http: aiohttp.ClientSession,
                                                               seeded: list[str], case: str) -> None:
    args, status, says = BAD_REQUESTS[case]
    async with await call(http, server, args) as response:
        await assert_problem(response, status, *says)
    assert await dump_dataset(http, server) == seeded


async def test_put_on_sparql_is_405_with_allow(server: Any, http: aiohttp.ClientSession, seeded: list[str]) -> None:
    async with http.put(server.repo_url("/sparql"), data=BAD.encode(),
                        headers={"Content-Type": "application/sparql-update"}) as response:
        await assert_problem(response, 405, "PUT")
        allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "PUT" not in allowed, allowed
    assert await dump_dataset(http, server) == seeded


async def test_query_unknown_repository_is_404(server: Any, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url("/nobody/nothing/sparql"), params={"query": SELECT_P}) as response:
        await assert_problem(response, 404, "nobody/nothing")


async def test_update_that_fails_when_run_is_400_and_changes_nothing(server: Any, http: aiohttp.ClientSession,
                                                                    seeded: list[str]) -> None:
    update = ('INSERT DATA { <http://example.org/x> <http://example.org/p> "new" } ;\n'
              "CLEAR GRAPH <http://example.org/not-there>")
    async with http.post(server.repo_url("/sparql"), data=update.encode(),
                         headers={"Content-Type": "application/sparql-update"}) as response:
        await assert_problem(response, 400, "not-there")
    assert await dump_dataset(http, server) == seeded


# -- how an answer is sent: a small one as one body, a large one streamed --------------------------------------


@pytest.mark.parametrize("query", [f"SELECT ?p ?o WHERE {{ <{EX}d> ?p ?o }}",  # answered on the event loop
                                   SELECT_P],  # on a store thread
                         ids=["single-pattern", "graph-pattern"])
async def test_small_select_is_one_body_with_its_length(server: Any, http: aiohttp.ClientSession,
                                                       seeded: list[str], query: str) -> None:
    headers = {"Accept": "application/sparql-results+json"}
    async with http.get(server.repo_url("/sparql"), params={"query": query},
                        headers={**headers, "Accept-Encoding": "identity"}) as response:
        body = await response.read()
        assert response.status == 200, body
        assert response.headers["Content-Length"] == str(len(body)) and "Transfer-Encoding" not in response.headers
        assert response.headers["Vary"] == "Accept, Accept-Encoding"
    async with http.get(server.repo_url("/sparql"), params={"query": query},
                        headers={**headers, "Accept-Encoding": "gzip"}) as response:
        assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
        assert await response.read() == body  # (aiohttp decompresses)
    assert json.loads(body)["results"]["bindings"]


async def test_large_select_streams_in_chunks(server: Any, http: aiohttp.ClientSession) -> None:
    lines = "".join(f'<{EX}many> <{EX}p> "value number {i} of a large answer" .\n' for i in range(3_000))
    async with http.put(server.repo_url("/service"), params={"default": ""}, data=lines.encode(),
                        headers={"Content-Type": "application/n-triples"}) as response:
        assert response.status in (201, 204), await response.text()
    async with http.get(server.repo_url("/sparql"), params={"query": f"SELECT ?o WHERE {{ <{EX}many> ?p ?o }}"},
                        headers={"Accept": "application/sparql-results+json"}) as response:
        body = await response.read()
        assert response.status == 200, body
        assert response.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in response.headers
    assert len(json.loads(body)["results"]["bindings"]) == 3_000
