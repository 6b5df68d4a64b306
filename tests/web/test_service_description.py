"""GET …/sparql with no query: the endpoint's SPARQL 1.1 Service Description, over real HTTP. It parses (rdflib),
in Turtle and every RDF format; what it lists is true of the server (each result format is served when asked
for, each input format is read, each feature holds), and what the server serves is listed; it is refused to
whoever may not query the repository, as a query is."""

from __future__ import annotations

import aiohttp
import pytest
import rdflib
from conftest import Running, StartServer
from helpers import (
    RDFLIB_FORMATS,
    assert_isomorphic,
    assert_problem,
    media_type,
    parse_graph,
    serialize_graph,
    update,
)
from rdflib.namespace import RDF

from graphstore_async.auth import new_token, token_entry

SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
EX = "http://example.org/"
W3C = "http://www.w3.org/ns/formats/"
# The W3C's names of formats (https://www.w3.org/ns/formats/) and their media types: the test's own table, so that
# what the description lists is checked against the server, not against the server's table.
FORMAT_MEDIA = {
    W3C + "SPARQL_Results_JSON": "application/sparql-results+json",
    W3C + "SPARQL_Results_XML": "application/sparql-results+xml",
    W3C + "SPARQL_Results_CSV": "text/csv",
    W3C + "SPARQL_Results_TSV": "text/tab-separated-values",
    W3C + "Turtle": "text/turtle",
    W3C + "N-Triples": "application/n-triples",
    W3C + "N-Quads": "application/n-quads",
    W3C + "TriG": "application/trig",
    W3C + "RDF_XML": "application/rdf+xml",
    W3C + "JSON-LD": "application/ld+json",
    W3C + "N3": "text/n3",  # not ours: never listed, never served
    W3C + "RDFa": "text/html",
}
SMALL = rdflib.Graph().parse(data=f'<{EX}a> <{EX}p> "one", 2 ; <{EX}q> [ <{EX}r> <{EX}b> ] .', format="turtle")
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


async def description(http: aiohttp.ClientSession, running: Running, repo: str = "test/repo",
                      accept: str | None = None) -> rdflib.Graph:
    async with http.get(running.repo_url("/sparql", repo), headers={"Accept": accept} if accept else {}) as response:
        body = await response.read()
        assert response.status == 200, body
        assert "accept" in response.headers["Vary"].lower()
        return parse_graph(body, response.headers["Content-Type"])


def the_service(graph: rdflib.Graph) -> rdflib.term.Node:
    services = list(graph.subjects(RDF.type, SD.Service))
    assert len(services) == 1, graph.serialize(format="turtle")
    return services[0]


def listed(graph: rdflib.Graph, predicate: rdflib.URIRef) -> set[str]:
    return {str(value) for value in graph.objects(the_service(graph), predicate)}


def named_graphs(graph: rdflib.Graph) -> list[str]:
    dataset = graph.value(the_service(graph), SD.defaultDataset)
    return sorted(str(graph.value(named, SD.name)) for named in graph.objects(dataset, SD.namedGraph))


async def test_description_is_turtle_and_names_the_endpoint(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(server.repo_url("/sparql")) as response:
        assert response.status == 200
        assert media_type(response.headers["Content-Type"]) == "text/turtle"
        graph = parse_graph(await response.read(), "text/turtle")
    node = the_service(graph)
    assert listed(graph, SD.endpoint) == {server.repo_url("/sparql")}
    assert listed(graph, SD.supportedLanguage) == {str(SD.SPARQL11Query), str(SD.SPARQL11Update)}
    dataset = graph.value(node, SD.defaultDataset)
    assert (dataset, RDF.type, SD.Dataset) in graph
    assert (graph.value(dataset, SD.defaultGraph), RDF.type, SD.Graph) in graph


@pytest.mark.parametrize("media", sorted(RDFLIB_FORMATS))
async def test_description_in_every_rdf_format(server: Running, http: aiohttp.ClientSession, media: str) -> None:
    async with http.get(server.repo_url("/sparql"), headers={"Accept": media}) as response:
        assert response.status == 200
        assert media_type(response.headers["Content-Type"]) == media
        graph = parse_graph(await response.read(), media)
    assert_isomorphic(await description(http, server), graph)


async def test_a_browser_gets_turtle(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(server.repo_url("/sparql"), headers={"Accept": BROWSER}) as response:
        assert response.status == 200
        assert media_type(response.headers["Content-Type"]) == "text/turtle"


async def test_description_nobody_can_read_is_406(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(server.repo_url("/sparql"), headers={"Accept": "application/sparql-results+json"}) as r:
        await assert_problem(r, 406, "text/turtle")


async def test_protocol_parameters_without_a_query_are_still_400(server: Running, http: aiohttp.ClientSession) -> None:
    for params in ({"default-graph-uri": EX + "g"}, {"timeout": "1"}):
        async with http.get(server.repo_url("/sparql"), params=params) as response:
            await assert_problem(response, 400, "neither a query nor an update")


async def test_every_result_format_listed_is_served_and_every_one_served_is_listed(
        server: Running, http: aiohttp.ClientSession) -> None:
    await update(http, server, f"INSERT DATA {{ <{EX}a> <{EX}p> 1 }}")
    served = set()
    for iri, media in FORMAT_MEDIA.items():
        for query in ("SELECT * WHERE { ?s ?p ?o }", "CONSTRUCT WHERE { ?s ?p ?o }"):
            async with http.get(server.repo_url("/sparql"), params={"query": query},
                                headers={"Accept": media}) as response:
                body = await response.read()
                if response.status == 200 and media_type(response.headers["Content-Type"]) == media:
                    served.add(iri)
                    if media in RDFLIB_FORMATS:
                        assert len(parse_graph(body, media)) == 1
    graph = await description(http, server)
    assert listed(graph, SD.resultFormat) == served
    assert len(served) == 10, served


async def test_every_input_format_listed_is_read_and_every_one_read_is_listed(
        server: Running, http: aiohttp.ClientSession) -> None:
    read = set()
    for number, (iri, media) in enumerate(FORMAT_MEDIA.items()):
        if media in RDFLIB_FORMATS:
            body = serialize_graph(SMALL, media)
        else:
            body = b"<http://example.org/a> <http://example.org/p> 1 ."
        graph = f"{EX}in{number}"
        async with http.put(server.repo_url("/service"), params={"graph": graph}, data=body,
                            headers={"Content-Type": media}) as response:
            if response.status != 201:
                await assert_problem(response, (400, 415))
                continue
        async with http.get(server.repo_url("/service"), params={"graph": graph},
                            headers={"Accept": "text/turtle"}) as response:
            assert_isomorphic(SMALL, parse_graph(await response.read(), "text/turtle"))
        read.add(iri)
    assert listed(await description(http, server), SD.inputFormat) == read
    assert len(read) == 6, read


async def test_empty_graphs_stay_as_the_feature_says(server: Running, http: aiohttp.ClientSession) -> None:
    assert listed(await description(http, server), SD.feature) == {str(SD.EmptyGraphs)}
    await update(http, server, f"CREATE GRAPH <{EX}made>")
    await update(http, server, f"INSERT DATA {{ GRAPH <{EX}emptied> {{ <{EX}a> <{EX}p> 1 }} }}")
    await update(http, server, f"DELETE DATA {{ GRAPH <{EX}emptied> {{ <{EX}a> <{EX}p> 1 }} }}")
    for graph in ("made", "emptied"):
        async with http.head(server.repo_url("/service"), params={"graph": EX + graph}) as response:
            assert response.status == 200, graph  # the graph is there, empty
    assert named_graphs(await description(http, server)) == [EX + "emptied", EX + "made"]


async def test_federated_query_is_listed_only_when_the_server_allows_it(
        start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(allow_service=True, service_endpoints=("http://127.0.0.1:9/sparql",))
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    features = listed(await description(http, running), SD.feature)
    assert features == {str(SD.EmptyGraphs), str(SD.BasicFederatedQuery)}


async def test_the_default_dataset_lists_the_named_graphs(server: Running, http: aiohttp.ClientSession) -> None:
    assert named_graphs(await description(http, server)) == []
    await update(http, server, f"INSERT DATA {{ <{EX}d> <{EX}p> 0 . GRAPH <{EX}g1> {{ <{EX}a> <{EX}p> 1 }} "
                               f"GRAPH <{EX}g2> {{ <{EX}b> <{EX}p> 2 }} }}")
    async with http.get(server.repo_url()) as response:
        graphs = (await response.json())["graphs"]
    assert named_graphs(await description(http, server)) == sorted(graphs) == [EX + "g1", EX + "g2"]


ALICE, BOB = new_token(), new_token()
ACCOUNTS = ("[accounts.alice]\n[accounts.bob]\n[repositories.\"alice/public\"]\npublic_read = true\n"
            + token_entry("alice", ALICE) + token_entry("bob", BOB))


async def test_description_is_refused_as_a_query_is(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(config=ACCOUNTS)
    for repo in ("alice/private", "alice/public"):
        async with http.put(running.repo_url("", repo), headers={"Authorization": f"Bearer {ALICE}"}) as response:
            assert response.status == 201, await response.text()
    cases = [("alice/private", None, 401), ("alice/private", BOB, 403), ("alice/private", ALICE, 200),
             ("alice/public", None, 200), ("alice/public", BOB, 200), ("alice/nothing", ALICE, 404)]
    for repo, token, status in cases:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answers = []
        for params in ({}, {"query": "ASK {}"}):
            async with http.get(running.repo_url("/sparql", repo), params=params, headers=headers) as response:
                answers.append((response.status, response.headers.get("WWW-Authenticate")))
                if status != 200:
                    await assert_problem(response, status)
        assert answers[0] == answers[1], (repo, token, answers)
        assert answers[0][0] == status, (repo, token, answers)
