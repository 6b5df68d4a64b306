"""A PATCH's update confined to its graph (graphstore_async/patches.py): the text written for each operation form,
checked against what the engine does with it — the confined update on a store changes the target graph exactly as
the original update changes a store that holds that graph as its default graph — and the refusals."""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
import pytest

from graphstore_async.errors import UnprocessablePatch
from graphstore_async.patches import confine

G = "http://example.org/g"
EX = "http://example.org/"
PREFIX = f"PREFIX ex: <{EX}> "


def squeezed(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("update", "confined"), [
    ('INSERT DATA { ex:s ex:p "o" }', f'INSERT DATA {{ GRAPH <{G}> {{ ex:s ex:p "o" }} }}'),
    ('delete data{ex:s ex:p "o"}', f'delete data{{ GRAPH <{G}> {{ex:s ex:p "o"}} }}'),
    ("DELETE WHERE { ?s ex:p ?o }", f"DELETE WHERE {{ GRAPH <{G}> {{ ?s ex:p ?o }} }}"),
    ("DELETE { ?s ?p ?o } INSERT { ?s ex:q ?o } WHERE { ?s ?p ?o }",
     f"WITH <{G}> DELETE {{ ?s ?p ?o }} INSERT {{ ?s ex:q ?o }} WHERE {{ ?s ?p ?o }}"),
    ("INSERT { ?s ex:q ?o } WHERE { { ?s ?p ?o } UNION { ?o ?p ?s } }",
     f"WITH <{G}> INSERT {{ ?s ex:q ?o }} WHERE {{ {{ ?s ?p ?o }} UNION {{ ?o ?p ?s }} }}"),
    ('INSERT DATA { ex:s ex:p "}" } ; DELETE WHERE { ?s ?p "{" } ;',
     f'INSERT DATA {{ GRAPH <{G}> {{ ex:s ex:p "}}" }} }} ; DELETE WHERE {{ GRAPH <{G}> {{ ?s ?p "{{" }} }} ;'),
])
def test_each_operation_form_is_confined_to_the_graph(update: str, confined: str) -> None:
    assert squeezed(confine(PREFIX + update, G)) == squeezed(PREFIX + confined)
    assert confine(PREFIX + update, None) == PREFIX + update  # the default graph is every operation's already


SEED = f'<{EX}s> <{EX}p> "one" .\n<{EX}s> <{EX}p> "two" .\n<{EX}t> <{EX}p> _:b .\n_:b <{EX}p> "blank" .\n'
UPDATES = [
    'INSERT DATA { ex:s ex:p "new" . _:x ex:p ex:s }',
    'DELETE DATA { ex:s ex:p "one" }',
    "DELETE WHERE { ?s ex:p ?o . ?o ex:p ?v }",
    'DELETE { ?s ex:p ?o } INSERT { ?s ex:q ?o } WHERE { ?s ex:p ?o FILTER (?o != "two") }',
    "INSERT { ?o ex:inverse ?s } WHERE { ?s ex:p ?o OPTIONAL { ?o ex:p ?v } }",
    f"BASE <{EX}> PREFIX x: <{EX}> DELETE WHERE {{ <s> ?p ?o }} ; INSERT {{ ?s x:seen true }} WHERE {{ ?s ?p ?o }}",
]


@pytest.mark.parametrize("update", UPDATES)
def test_the_confined_update_does_to_the_graph_what_the_update_does_to_a_default_graph(update: str) -> None:
    alone = ox.Store()
    alone.load(SEED.encode(), ox.RdfFormat.N_TRIPLES)
    alone.update(PREFIX + update)
    shared = ox.Store()  # the same graph as a named graph, beside a default graph and another graph that match too
    shared.load(SEED.encode(), ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(G))
    for graph in (ox.DefaultGraph(), ox.NamedNode(EX + "other")):
        shared.load(SEED.encode(), ox.RdfFormat.N_TRIPLES, to_graph=graph)
    shared.update(confine(PREFIX + update, G))

    def canonical(quads: Any) -> set[str]:
        dataset = ox.Dataset(ox.Quad(q.subject, q.predicate, q.object) for q in quads)
        dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
        return {str(quad) for quad in dataset}

    assert canonical(shared.quads_for_pattern(None, None, None, ox.NamedNode(G))) == canonical(alone)
    for graph in (ox.DefaultGraph(), ox.NamedNode(EX + "other")):  # the rest is as it was
        untouched = ox.Store()
        untouched.load(SEED.encode(), ox.RdfFormat.N_TRIPLES)
        assert canonical(shared.quads_for_pattern(None, None, None, graph)) == canonical(untouched)


@pytest.mark.parametrize("update", [
    "INSERT { GRAPH ex:o { ?s ?p ?o } } WHERE { ?s ?p ?o }",
    "INSERT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }",
    'INSERT DATA { GRAPH ex:o { ex:s ex:p "x" } }',
    "WITH ex:o DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    "DELETE { ?s ?p ?o } USING ex:o WHERE { ?s ?p ?o }",
    "INSERT { ?s ?p ?o } USING NAMED ex:o WHERE { ?s ?p ?o }",
    "CLEAR ALL", "DROP DEFAULT", "CREATE GRAPH ex:o", "ADD DEFAULT TO ex:o", "MOVE ex:o TO DEFAULT",
    "COPY ex:o TO ex:p", f"LOAD <{EX}x>",
    'INSERT DATA { ex:s ex:p "x" } ; CLEAR DEFAULT',
    'INSERTDATA { ex:s ex:p "x" }', 'INSERT DATA { ex:s ex:p "x" };DROPALL',  # glued keywords the engine reads
    "PREFIX graph: <http://example.org/> INSERT DATA { graph:s graph:p graph:o }",  # a prefix the engine may read so:
    "PREFIX : <http://example.org/> PREFIX graph: <http://example.org/> INSERT DATA { graph:g { :s :p :o } }",
])
def test_an_update_that_names_a_graph_or_manages_graphs_is_refused(update: str) -> None:
    for graph in (G, None):
        with pytest.raises(UnprocessablePatch):
            confine(PREFIX + update, graph)


def test_words_in_strings_iris_and_comments_are_not_keywords() -> None:
    update = ('INSERT DATA { ex:s ex:p "GRAPH { WITH" . ex:s ex:p """USING\n}""" . ex:s ex:p <http://x/GRAPH> } '
              "# CLEAR GRAPH { \n; DELETE WHERE { ?graph ?with ?using }")
    confined = confine(PREFIX + update, G)
    assert confined.count(f"GRAPH <{G}>") == 2
    store = ox.Store()
    store.update(confined)
    assert len(store) == 0  # inserted into G, then deleted from it
