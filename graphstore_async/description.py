"""The SPARQL 1.1 Service Description of an endpoint (https://www.w3.org/TR/sparql11-service-description/): what
GET …/sparql answers when it carries no query.

What it lists is read off the server's own tables, never a list of its own: the caller passes the result formats
the endpoint negotiates (web/sparql.py) and the formats a body may take (formats.RDF_FORMATS); each is named by
the IRI of the pyoxigraph format that reads or writes it (store/parsing.py's RDF and RESULTS:
http://www.w3.org/ns/formats/…). It is written by the same serializers as every RDF answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyoxigraph as ox

from graphstore_async import formats
from graphstore_async.formats import Format
from graphstore_async.settings import Settings
from graphstore_async.store.parsing import RDF, RESULTS

SD = "http://www.w3.org/ns/sparql-service-description#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
SIMPLE_ENTAILMENT = "http://www.w3.org/ns/entailment/Simple"  # no inference: what is stored is what matches
FORMATS = "http://www.w3.org/ns/formats/"
_ENGINE_FORMATS = "https://www.w3.org/ns/formats/data/"
PREFIXES = {"sd": SD, "formats": FORMATS, "entailment": "http://www.w3.org/ns/entailment/"}
LANGUAGES = ("SPARQL11Query", "SPARQL11Update")
# A graph left empty stays, until it is dropped: the engine keeps the names of graphs apart from their triples.
EMPTY_GRAPHS = "EmptyGraphs"
FEDERATED = "BasicFederatedQuery"  # SERVICE, when the operator lets queries reach endpoints


@dataclass(frozen=True)
class Service:
    """What the description says of one endpoint."""

    endpoint: str
    result_formats: Sequence[Format]
    input_formats: Sequence[Format]
    features: Sequence[str]  # local names of sd: features
    named_graphs: Sequence[str]  # of the default dataset (the repository's)


def features(settings: Settings) -> tuple[str, ...]:
    """The sd:feature terms that are true of this server (the others, e.g. UnionDefaultGraph and
    DereferencesURIs, are not: FROM names a graph in the store and fetches nothing)."""
    if settings.allow_service and settings.service_endpoints:
        return EMPTY_GRAPHS, FEDERATED
    return (EMPTY_GRAPHS,)


def format_iri(fmt: Format) -> str:
    """The W3C IRI of a format (http://www.w3.org/ns/formats/…), as the engine that reads or writes it names it.
    pyoxigraph alone names JSON-LD https://www.w3.org/ns/formats/data/JSON-LD; the W3C's list of format IRIs, and
    the clients that read descriptions, have http://www.w3.org/ns/formats/JSON-LD."""
    engine = RDF.get(fmt) or RESULTS.get(fmt)
    if engine is None:
        raise KeyError(f"{fmt} is neither an RDF format nor a result format of the engine")
    return engine.iri.replace(_ENGINE_FORMATS, FORMATS, 1)


def quads(service: Service) -> list[ox.Quad]:
    """The description as quads, all in the default graph."""
    found: list[ox.Quad] = []

    def add(subject: ox.NamedNode | ox.BlankNode, predicate: str, value: ox.NamedNode | ox.BlankNode) -> None:
        found.append(ox.Quad(subject, sd(predicate), value, ox.DefaultGraph()))

    node, dataset, default = ox.BlankNode(), ox.BlankNode(), ox.BlankNode()
    found.append(ox.Quad(node, RDF_TYPE, sd("Service"), ox.DefaultGraph()))
    add(node, "endpoint", ox.NamedNode(service.endpoint))
    for language in LANGUAGES:
        add(node, "supportedLanguage", sd(language))
    for fmt in service.result_formats:
        add(node, "resultFormat", ox.NamedNode(format_iri(fmt)))
    for fmt in service.input_formats:
        add(node, "inputFormat", ox.NamedNode(format_iri(fmt)))
    for feature in service.features:
        add(node, "feature", sd(feature))
    add(node, "defaultEntailmentRegime", ox.NamedNode(SIMPLE_ENTAILMENT))
    add(node, "defaultDataset", dataset)
    found.append(ox.Quad(dataset, RDF_TYPE, sd("Dataset"), ox.DefaultGraph()))
    add(dataset, "defaultGraph", default)
    found.append(ox.Quad(default, RDF_TYPE, sd("Graph"), ox.DefaultGraph()))
    for name in service.named_graphs:
        graph = ox.BlankNode()
        add(dataset, "namedGraph", graph)
        found.append(ox.Quad(graph, RDF_TYPE, sd("NamedGraph"), ox.DefaultGraph()))
        add(graph, "name", ox.NamedNode(name))
    return found


def serialize(description: Sequence[ox.Quad], fmt: Format) -> bytes:
    """The description in an RDF format: quads for a dataset format, triples for the others."""
    statements = description if fmt.is_dataset else [q.triple for q in description]
    written = ox.serialize(statements, format=RDF[fmt], prefixes=PREFIXES)
    assert written is not None  # no output given: the bytes
    return written


def description_format(accept: str | None) -> Format:
    """Turtle, or the RDF format Accept asks for (406 if none). An Accept that names text/html is a browser's; it
    gets Turtle (until there is a console to show it) where negotiation would give it RDF/XML for its
    `application/xml;q=0.9`."""
    if any(r.type == "text" and r.subtype == "html" and r.q > 0 for r in formats.parse_accept(accept)):
        return formats.TURTLE
    return formats.negotiate(accept, formats.RDF_FORMATS, formats.TURTLE)


def sd(name: str) -> ox.NamedNode:
    return ox.NamedNode(SD + name)
