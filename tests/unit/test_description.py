"""The Service Description builder (graphstore_async/description.py) without a server: what it states, in every
RDF format, named from the engine's own format tables; the features the settings make true; the format a
client's Accept gets. That what it lists is true of a running server is tests/web/test_service_description.py."""

from __future__ import annotations

import pytest
import rdflib
from helpers import RDFLIB_FORMATS, assert_isomorphic, parse_graph
from rdflib.namespace import RDF

from graphstore_async import description, formats
from graphstore_async.errors import NotAcceptable
from graphstore_async.settings import Settings
from graphstore_async.store.parsing import RDF as ENGINE_RDF
from graphstore_async.store.parsing import RESULTS as ENGINE_RESULTS
from graphstore_async.web.sparql import RESULT_FORMATS

SD = rdflib.Namespace(description.SD)
ENDPOINT = "http://127.0.0.1:8080/test/repo/sparql"
GRAPHS = ("http://example.org/g1", "http://example.org/g2")
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


def service(**changes: object) -> description.Service:
    values: dict[str, object] = {"endpoint": ENDPOINT, "result_formats": RESULT_FORMATS,
                                 "input_formats": formats.RDF_FORMATS,
                                 "features": description.features(Settings()), "named_graphs": GRAPHS}
    values.update(changes)
    return description.Service(**values)  # type: ignore[arg-type]


def described(svc: description.Service, fmt: formats.Format = formats.TURTLE) -> rdflib.Graph:
    return parse_graph(description.serialize(description.quads(svc), fmt), fmt.media_type)


def the_service(graph: rdflib.Graph) -> rdflib.term.Node:
    services = list(graph.subjects(RDF.type, SD.Service))
    assert len(services) == 1, services
    return services[0]


def test_the_description_names_the_endpoint_and_both_languages() -> None:
    graph = described(service())
    node = the_service(graph)
    assert set(graph.objects(node, SD.endpoint)) == {rdflib.URIRef(ENDPOINT)}
    assert set(graph.objects(node, SD.supportedLanguage)) == {SD.SPARQL11Query, SD.SPARQL11Update}
    assert set(graph.objects(node, SD.defaultEntailmentRegime)) == {
        rdflib.URIRef("http://www.w3.org/ns/entailment/Simple")}


def test_formats_are_named_by_the_engine_that_reads_and_writes_them() -> None:
    graph = described(service())
    node = the_service(graph)
    listed_results = {str(iri) for iri in graph.objects(node, SD.resultFormat)}
    listed_inputs = {str(iri) for iri in graph.objects(node, SD.inputFormat)}
    # every result format of the engine and every RDF format (CONSTRUCT, DESCRIBE), as the endpoint offers them
    engine_rdf = {f.iri.replace("https://www.w3.org/ns/formats/data/", description.FORMATS)
                  for f in ENGINE_RDF.values()}  # the engine's spelling of JSON-LD's IRI, as the W3C lists it
    assert listed_results == {f.iri for f in ENGINE_RESULTS.values()} | engine_rdf
    assert listed_inputs == engine_rdf
    assert description.format_iri(formats.JSON_LD) == "http://www.w3.org/ns/formats/JSON-LD"
    assert all(iri.startswith("http://www.w3.org/ns/formats/") for iri in listed_results | listed_inputs)
    assert description.format_iri(formats.TURTLE) == "http://www.w3.org/ns/formats/Turtle"
    assert description.format_iri(formats.SPARQL_JSON) == "http://www.w3.org/ns/formats/SPARQL_Results_JSON"


def test_only_the_formats_given_are_listed() -> None:
    graph = described(service(result_formats=(formats.CSV,), input_formats=(formats.N_TRIPLES,)))
    node = the_service(graph)
    assert set(graph.objects(node, SD.resultFormat)) == {rdflib.URIRef("http://www.w3.org/ns/formats/SPARQL_Results_CSV")}
    assert set(graph.objects(node, SD.inputFormat)) == {rdflib.URIRef("http://www.w3.org/ns/formats/N-Triples")}


def test_the_default_dataset_lists_its_named_graphs() -> None:
    graph = described(service())
    datasets = list(graph.objects(the_service(graph), SD.defaultDataset))
    assert len(datasets) == 1 and (datasets[0], RDF.type, SD.Dataset) in graph
    defaults = list(graph.objects(datasets[0], SD.defaultGraph))
    assert len(defaults) == 1 and (defaults[0], RDF.type, SD.Graph) in graph
    named = list(graph.objects(datasets[0], SD.namedGraph))
    assert all((n, RDF.type, SD.NamedGraph) in graph for n in named)
    assert sorted(str(name) for n in named for name in graph.objects(n, SD.name)) == list(GRAPHS)
    empty = described(service(named_graphs=()))
    assert not list(empty.objects(None, SD.namedGraph))


@pytest.mark.parametrize("media", sorted(RDFLIB_FORMATS))
def test_every_rdf_format_says_the_same(media: str) -> None:
    fmt = formats.negotiate(media, formats.RDF_FORMATS)
    assert fmt.media_type == media
    assert_isomorphic(described(service()), described(service(), fmt))


def test_features_are_those_the_settings_make_true() -> None:
    assert description.features(Settings()) == (description.EMPTY_GRAPHS,)
    assert description.features(Settings(allow_service=True)) == (description.EMPTY_GRAPHS,)  # no endpoint listed
    federated = Settings(allow_service=True, service_endpoints=("http://127.0.0.1:7878/query",))
    assert description.features(federated) == (description.EMPTY_GRAPHS, description.FEDERATED)
    graph = described(service(features=description.features(federated)))
    assert set(graph.objects(the_service(graph), SD.feature)) == {SD.EmptyGraphs, SD.BasicFederatedQuery}


@pytest.mark.parametrize(("accept", "media"), [
    (None, "text/turtle"),
    ("", "text/turtle"),
    ("*/*", "text/turtle"),
    (BROWSER, "text/turtle"),  # a browser's: Turtle, not the RDF/XML its application/xml;q=0.9 would get
    ("text/html", "text/turtle"),
    ("application/ld+json", "application/ld+json"),
    ("application/n-triples, text/turtle;q=0.5", "application/n-triples"),
    ("application/rdf+xml", "application/rdf+xml"),
    ("application/trig", "application/trig"),
])
def test_description_format_follows_accept(accept: str | None, media: str) -> None:
    assert description.description_format(accept).media_type == media


@pytest.mark.parametrize("accept", ["application/sparql-results+json", "text/csv", "text/html;q=0, image/png"])
def test_description_format_nobody_can_read_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        description.description_format(accept)
