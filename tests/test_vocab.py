"""Our vocabulary: the Turtle in vocab/ and the namespace the code uses say the same terms, each documented."""

from __future__ import annotations

import json

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import RDFS

from graphstore_async.vocab import CONTEXT_FILE, GSA, VOCAB_DIR


def test_every_term_of_the_namespace_is_defined_with_label_and_comment_in_the_turtle() -> None:
    graph = Graph().parse(VOCAB_DIR / "graphstore.ttl")
    defined = {s for s in graph.subjects() if isinstance(s, URIRef) and str(s).startswith(str(GSA._NS))}
    defined.discard(URIRef(str(GSA._NS)))
    in_code = {GSA[name] for name in GSA.__annotations__}
    assert defined == in_code
    for term in in_code:
        assert graph.value(term, RDFS.label) is not None, f"{term} has no rdfs:label"
        assert graph.value(term, RDFS.comment) is not None, f"{term} has no rdfs:comment"


def test_a_misspelt_term_is_an_error() -> None:
    with pytest.raises(AttributeError):
        GSA.statementAdded  # noqa: B018


def test_the_json_ld_context_maps_only_to_known_terms() -> None:
    context = json.loads(CONTEXT_FILE.read_text())["@context"]
    for key, value in context.items():
        iri = value["@id"] if isinstance(value, dict) else value
        if isinstance(iri, str) and iri.startswith("gsa:"):
            assert GSA[iri.removeprefix("gsa:")], key
