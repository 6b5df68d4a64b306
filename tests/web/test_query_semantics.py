"""Query semantics that real SPARQL clients (SPARQLWrapper, Jena, rdflib) meet, over real HTTP: extension functions
the engine does not know are expression errors (SPARQL 1.1 §17.3); ASK in CSV and TSV as Jena writes it; CONSTRUCT
and DESCRIBE answers are sets of triples."""

from __future__ import annotations

import csv
import io
import json

import aiohttp
import pyoxigraph as ox
import pytest
from conftest import Running
from helpers import assert_problem, get_ok, media_type, update

EX = "http://example.org/"
XSD = "http://www.w3.org/2001/XMLSchema#"
FN = "http://example.org/fn#"  # no engine knows these
SRJ = "application/sparql-results+json"
# What the clients send: SPARQLWrapper 2 (GET, its `format`/`output`/`results` parameters, its Accept for each
# return format) and Jena's QueryExecHTTP (its Accept for SELECT and ASK).
WRAPPER_JSON = "application/sparql-results+json,application/json,text/javascript,application/javascript"
WRAPPER_PARAMS = {"format": "json", "output": "json", "results": "json"}
JENA_RESULTS = ("application/sparql-results+json, application/sparql-results+xml;q=0.9, "
                "text/tab-separated-values;q=0.7, text/csv;q=0.5, application/json;q=0.2, application/xml;q=0.2, "
                "*/*;q=0.1")
SEED = f"""PREFIX ex: <{EX}>
INSERT DATA {{
  ex:a ex:n 1 ; ex:name "alice" ; ex:knows _:b .
  _:b ex:n 2 ; ex:name "bob" .
  ex:c ex:n 3 .
  GRAPH ex:g1 {{ ex:d ex:p "same" ; ex:q ex:e }}
  GRAPH ex:g2 {{ ex:d ex:p "same" ; ex:r ex:f }}
}}"""


@pytest.fixture
async def seeded(server: Running, http: aiohttp.ClientSession) -> Running:
    await update(http, server, SEED)
    return server


async def wrapper_select(http: aiohttp.ClientSession, server: Running, query: str) -> list[dict[str, str]]:
    """A SELECT as SPARQLWrapper sends it with setReturnFormat(JSON): each row's variables and values."""
    async with http.get(server.repo_url("/sparql"), params={"query": query, **WRAPPER_PARAMS},
                        headers={"Accept": WRAPPER_JSON}) as response:
        text = await response.text()
        assert response.status == 200, text
        assert media_type(response.headers["Content-Type"]) == SRJ
    return [{name: term["value"] for name, term in row.items()} for row in json.loads(text)["results"]["bindings"]]


# -- extension functions: an expression error, not a failed query ----------------------------------------------

PROLOGUE = f"PREFIX ex: <{EX}>\nPREFIX fn: <{FN}>\nPREFIX xsd: <{XSD}>\n"


@pytest.mark.parametrize("call", ["fn:f(?n)", f"<{FN}f>(?n)", "fn:f()", "fn:f(?n, 'x', 2)", "fn:f\\.x(?n)",
                                  "fn:f # a comment\n (?n)"])
async def test_unknown_function_in_filter_is_false(seeded: Running, http: aiohttp.ClientSession,
                                                   call: str) -> None:
    query = PROLOGUE + f"SELECT ?s WHERE {{ ?s ex:n ?n FILTER({call}) }}"
    assert await wrapper_select(http, seeded, query) == []
    # an error stays an error through ! and ||, and COALESCE takes the next value (SPARQL 1.1 §17.2, §17.4.1.4)
    negated = PROLOGUE + f"SELECT ?s WHERE {{ ?s ex:n ?n FILTER(!{call}) }}"
    assert await wrapper_select(http, seeded, negated) == []
    either = PROLOGUE + f"SELECT ?n WHERE {{ ?s ex:n ?n FILTER({call} || ?n = 3) }}"
    assert await wrapper_select(http, seeded, either) == [{"n": "3"}]
    fallback = PROLOGUE + f"SELECT ?n WHERE {{ ?s ex:n ?n FILTER(COALESCE({call}, ?n > 1)) }} ORDER BY ?n"
    assert await wrapper_select(http, seeded, fallback) == [{"n": "2"}, {"n": "3"}]


async def test_unknown_function_in_bind_select_order_and_group_leaves_unbound(seeded: Running,
                                                                             http: aiohttp.ClientSession) -> None:
    bind = PROLOGUE + "SELECT ?n ?v WHERE { ?s ex:n ?n BIND(fn:f(?n) AS ?v) } ORDER BY ?n"
    assert await wrapper_select(http, seeded, bind) == [{"n": "1"}, {"n": "2"}, {"n": "3"}]
    projected = PROLOGUE + "SELECT ?n (fn:f(?n) AS ?v) (?n + 1 AS ?m) WHERE { ?s ex:n ?n } ORDER BY ?n"
    assert await wrapper_select(http, seeded, projected) == [{"n": "1", "m": "2"}, {"n": "2", "m": "3"},
                                                            {"n": "3", "m": "4"}]
    ordered = PROLOGUE + "SELECT ?n WHERE { ?s ex:n ?n } ORDER BY fn:f(?n) DESC(?n)"
    assert await wrapper_select(http, seeded, ordered) == [{"n": "3"}, {"n": "2"}, {"n": "1"}]
    grouped = PROLOGUE + ("SELECT ?k (COUNT(*) AS ?c) WHERE { ?s ex:n ?n } GROUP BY (fn:f(?n) AS ?k)")
    assert await wrapper_select(http, seeded, grouped) == [{"c": "3"}]
    having = PROLOGUE + "SELECT (COUNT(*) AS ?c) WHERE { ?s ex:n ?n } GROUP BY ?s HAVING (fn:f(COUNT(*)))"
    assert await wrapper_select(http, seeded, having) == []


async def test_relative_and_based_function_iris_are_resolved(seeded: Running, http: aiohttp.ClientSession) -> None:
    based = f"BASE <{FN}>\nPREFIX ex: <{EX}>\nPREFIX rel: <sub/>\n" \
            "SELECT ?n WHERE { ?s ex:n ?n FILTER(<f>(?n) || rel:g(?n) || ?n = 1) }"
    assert await wrapper_select(http, seeded, based) == [{"n": "1"}]
    # no BASE: relative to the endpoint, as the protocol's base IRI
    endpoint = f"PREFIX ex: <{EX}>\nSELECT ?n WHERE {{ ?s ex:n ?n FILTER(<f>(?n) || ?n = 1) }}"
    assert await wrapper_select(http, seeded, endpoint) == [{"n": "1"}]


async def test_functions_the_engine_knows_keep_their_meaning(seeded: Running, http: aiohttp.ClientSession) -> None:
    query = PROLOGUE + """SELECT ?i ?d ?b ?s ?t WHERE {
      BIND(xsd:integer("07") AS ?i) BIND(xsd:decimal(?i) AS ?d) BIND(xsd:boolean("1") AS ?b)
      BIND(xsd:string(?i) AS ?s) BIND(<http://www.w3.org/2001/XMLSchema#dateTime>("2020-01-02T03:04:05Z") AS ?t)
      FILTER(xsd:integer("2") > 1 && fn:f() = fn:f() || true)
    }"""
    assert await wrapper_select(http, seeded, query) == [
        {"i": "7", "d": "7", "b": "true", "s": "7", "t": "2020-01-02T03:04:05Z"}]
    # a known function called wrongly is still the engine's error, not an unbound value
    async with http.get(seeded.repo_url("/sparql"), params={"query": PROLOGUE + "SELECT (xsd:integer() AS ?x) {}"},
                        headers={"Accept": WRAPPER_JSON}) as response:
        await assert_problem(response, 400)


async def test_unknown_function_in_a_construct_and_an_ask(seeded: Running, http: aiohttp.ClientSession) -> None:
    construct = PROLOGUE + "CONSTRUCT { ?s ex:v ?v } WHERE { ?s ex:n ?n BIND(fn:f(?n) AS ?v) }"
    async with http.get(seeded.repo_url("/sparql"), params={"query": construct},
                        headers={"Accept": "application/n-triples"}) as response:
        assert response.status == 200, await response.text()
        assert await response.text() == ""  # ?v unbound: no triple
    ask = PROLOGUE + "ASK { ?s ex:n ?n FILTER(fn:f(?n)) }"
    _, body = await get_ok(http, seeded, "/sparql", WRAPPER_JSON, query=ask)
    assert json.loads(body)["boolean"] is False


# -- ASK in CSV and TSV: Jena's form ----------------------------------------------------------------------------

ASKS = {  # one the event loop answers (one triple pattern: store/inline.py), one a store thread does
    True: [f"ASK {{ <{EX}a> ?p ?o }}", f"ASK {{ ?s <{EX}n> ?n FILTER(?n > 2) }}"],
    False: [f"ASK {{ <{EX}nobody> ?p ?o }}", f"ASK {{ ?s <{EX}n> ?n FILTER(?n > 3) }}"],
}
TABLES = {"text/csv": ("_askResult\r\n{}\r\n", ","), "text/tab-separated-values": ("?_askResult\n{}\n", "\t")}


def read_boolean(body: bytes, media: str) -> bool:
    """An ASK answer read back as Jena's readers read it: a one-column table whose header is _askResult."""
    rows = list(csv.reader(io.StringIO(body.decode()), delimiter=TABLES[media][1]))
    assert rows[0] == ["_askResult" if media == "text/csv" else "?_askResult"] and len(rows) == 2, rows
    assert rows[1][0] in ("true", "false"), rows
    return rows[1][0] == "true"


@pytest.mark.parametrize("media", list(TABLES))
@pytest.mark.parametrize("value", [True, False])
async def test_ask_in_csv_and_tsv_as_jena_writes_it(seeded: Running, http: aiohttp.ClientSession, media: str,
                                                    value: bool) -> None:
    for query in ASKS[value]:
        for args in ({"params": {"query": query, "format": "csv", "output": "csv", "results": "csv"}},
                     {"method": "POST", "data": query.encode(),
                      "headers": {"Content-Type": "application/sparql-query"}}):
            method = args.pop("method", "GET")
            headers = {**args.pop("headers", {}), "Accept": media}
            async with http.request(method, seeded.repo_url("/sparql"), headers=headers, **args) as response:
                body = await response.read()
                assert response.status == 200, body
                assert response.headers["Content-Type"] == media  # sent without parameters, as for SELECT
            assert body.decode() == TABLES[media][0].format("true" if value else "false")
            assert read_boolean(body, media) is value


async def test_ask_with_jenas_accept_still_gets_json(seeded: Running, http: aiohttp.ClientSession) -> None:
    content_type, body = await get_ok(http, seeded, "/sparql", JENA_RESULTS, query=ASKS[True][1])
    assert content_type == SRJ and json.loads(body)["boolean"] is True


@pytest.mark.parametrize(("extension", "media"), [("csv", "text/csv"), ("tsv", "text/tab-separated-values")])
async def test_ask_view_by_csv_and_tsv_extension(seeded: Running, http: aiohttp.ClientSession, extension: str,
                                                 media: str) -> None:
    text = f"ASK {{ ?s <{EX}n> ?n }}"
    async with http.put(seeded.repo_url("/has-n"), data=text.encode(),
                        headers={"Content-Type": "application/sparql-query"}) as response:
        assert response.status == 201, await response.text()
    content_type, body = await get_ok(http, seeded, f"/has-n.{extension}", **{"$n": "2"})
    assert content_type == media and read_boolean(body, media) is True
    content_type, body = await get_ok(http, seeded, "/has-n", media, **{"$n": "9"})
    assert content_type == media and read_boolean(body, media) is False


async def test_ask_in_a_graph_format_is_still_406(seeded: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(seeded.repo_url("/sparql"), params={"query": ASKS[True][0]},
                        headers={"Accept": "text/turtle"}) as response:
        await assert_problem(response, 406, "text/turtle")


# -- CONSTRUCT and DESCRIBE answers are sets --------------------------------------------------------------------

GRAPH_FORMATS = {"application/n-triples": ox.RdfFormat.N_TRIPLES, "text/turtle": ox.RdfFormat.TURTLE,
                 "application/rdf+xml": ox.RdfFormat.RDF_XML, "application/ld+json": ox.RdfFormat.JSON_LD}
TWICE = "{{ {0} }} UNION {{ {0} }}"


async def graph_answer(http: aiohttp.ClientSession, server: Running, query: str, media: str,
                       **params: str) -> list[ox.Triple]:
    """Every triple of a graph answer, as written (a repeat stays a repeat: pyoxigraph's parser keeps them)."""
    async with http.get(server.repo_url("/sparql"), params={"query": query, **params},
                        headers={"Accept": media}) as response:
        body = await response.read()
        assert response.status == 200, body
        assert media_type(response.headers["Content-Type"]) == media
    return list(ox.parse(body, format=GRAPH_FORMATS[media], rename_blank_nodes=False))


def canonical(triples: list[ox.Triple]) -> list[str]:
    return sorted(str(t) for t in triples)


@pytest.mark.parametrize("media", list(GRAPH_FORMATS))
async def test_construct_over_a_union_writes_each_triple_once(seeded: Running, http: aiohttp.ClientSession,
                                                              media: str) -> None:
    with_blank = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ {TWICE.format(f'?s <{EX}n> ?x . ?s ?p ?o')} }}"
    triples = await graph_answer(http, seeded, with_blank, media)
    assert len(triples) == len(set(canonical(triples))) == 6, canonical(triples)  # a: n name knows; _:b: n name; c: n
    assert sum(isinstance(t.subject, ox.BlankNode) for t in triples) == 2
    plain = f"CONSTRUCT {{ ?s <{EX}n> ?n }} WHERE {{ {TWICE.format(f'?s <{EX}n> ?n FILTER(isIRI(?s))')} }}"
    triples = await graph_answer(http, seeded, plain, media)
    assert len(triples) == len(set(canonical(triples))) == 2, canonical(triples)
    # a blank node the template makes is a new one for each solution: two solutions, two different triples
    fresh = f"CONSTRUCT {{ [] <{EX}saw> ?n }} WHERE {{ {TWICE.format(f'<{EX}c> <{EX}n> ?n')} }}"
    triples = await graph_answer(http, seeded, fresh, media)
    assert len(triples) == len(set(canonical(triples))) == 2, canonical(triples)
    assert triples[0].subject != triples[1].subject


@pytest.mark.parametrize("media", ["application/n-triples", "text/turtle"])
async def test_construct_of_the_same_triple_twice_in_the_template(seeded: Running, http: aiohttp.ClientSession,
                                                                  media: str) -> None:
    query = f"CONSTRUCT {{ ?s <{EX}n> ?n . ?s <{EX}n> ?n }} WHERE {{ ?s <{EX}n> ?n }}"
    triples = await graph_answer(http, seeded, query, media)
    assert len(triples) == len(set(canonical(triples))) == 3, canonical(triples)


@pytest.mark.parametrize("media", ["application/n-triples", "text/turtle"])
async def test_describe_gives_a_set(seeded: Running, http: aiohttp.ClientSession, media: str) -> None:
    # the default graph merged from two graphs that both hold `ex:d ex:p "same"`
    merged = {"default-graph-uri": [f"{EX}g1", f"{EX}g2"]}
    async with http.get(seeded.repo_url("/sparql"), headers={"Accept": media},
                        params=[("query", f"DESCRIBE <{EX}d>"),
                                *(("default-graph-uri", g) for g in merged["default-graph-uri"])]) as response:
        body = await response.read()
        assert response.status == 200, body
    triples = list(ox.parse(body, format=GRAPH_FORMATS[media], rename_blank_nodes=False))
    assert canonical(triples) == sorted([f'<{EX}d> <{EX}p> "same"', f"<{EX}d> <{EX}q> <{EX}e>",
                                         f"<{EX}d> <{EX}r> <{EX}f>"]), canonical(triples)
    # a node found twice, with its blank node's description
    twice = f"DESCRIBE ?s WHERE {{ {TWICE.format(f'?s <{EX}knows> ?o')} }}"
    triples = await graph_answer(http, seeded, twice, media)
    assert len(triples) == len(set(canonical(triples))) == 5, canonical(triples)  # a: 3 statements, _:b: 2
