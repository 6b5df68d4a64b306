"""Writes into a pyoxigraph store that keep memory bounded, or that are one transaction when they are small.

pyoxigraph removes a named graph's statements one by one (its quads are keyed by graph last in three of their six
indexes, so there is no range to delete) and holds a transaction's changes in memory until it commits: its own
`clear_graph` and `remove_graph` of a named graph of 1M statements peaked at 1.4 GiB and took 99 s here. Removing
in batches that each commit, with a flush now and then, keeps memory flat. The whole dataset and the default
graph are cleared by range deletions, at no cost. None of this is atomic: embedded.py runs it under a checkpoint
(checkpoints.py) unless it is small enough for one SPARQL update (`replace_in_one_update`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyoxigraph as ox

from graphstore_async.store import Source
from graphstore_async.store.parsing import parse_options, scoped_quads

BATCH = 20_000  # statements a call gives pyoxigraph at once (it holds the GIL while it takes them)
REMOVE_BATCH = 10_000  # statements removed by one update: it holds them in memory, ~1.4 KiB each, until it commits
FLUSH_EVERY = 20_000  # statements removed between flushes: deletions fill RocksDB's memtables, ~0.6 KiB each


def empty(store: Any, target: Any, *, dataset: bool, copy_rest_from: Any = None) -> None:
    """Remove what a replacing load replaces: the dataset, or the default graph, by range deletions; a named
    graph's statements in batches, or with `copy_rest_from` (the store as it was, much smaller outside the graph)
    by clearing the store, a range deletion too, and copying back what is outside the graph."""
    if dataset:
        store.clear()
    elif isinstance(target, ox.DefaultGraph):
        store.clear_graph(target)
    elif copy_rest_from is not None:
        store.clear()
        for name in copy_rest_from.named_graphs():
            if name != target:
                _copy(copy_rest_from, store, name)
                store.add_graph(name)  # an empty graph stays too
        _copy(copy_rest_from, store, ox.DefaultGraph())
    else:
        remove_statements(store, target)


def remove_statements(store: Any, graph: Any) -> None:
    """Remove every statement of a named graph (the graph itself stays), in batches that each commit."""
    # One SPARQL update a batch: a call to pyoxigraph per statement would hand the GIL back and forth that often.
    delete = (f"DELETE {{ GRAPH {graph} {{ ?s ?p ?o }} }} "
              f"WHERE {{ SELECT ?s ?p ?o {{ GRAPH {graph} {{ ?s ?p ?o }} }} LIMIT {REMOVE_BATCH} }}")
    removed = 0
    while next(iter(store.quads_for_pattern(None, None, None, graph)), None) is not None:
        store.update(delete)
        removed += REMOVE_BATCH
        if removed % FLUSH_EVERY < REMOVE_BATCH:
            store.flush()


def put_back(store: Any, checkpoint: Any, scope: Any) -> None:
    """Make `scope` of `store` (a graph, or None: everything) what it is in `checkpoint` (the store as it was):
    after a write on `store` failed half-way, its readers given `checkpoint` meanwhile."""
    if scope is None:
        store.clear()
    elif isinstance(scope, ox.DefaultGraph):
        store.clear_graph(scope)
    else:
        remove_statements(store, scope)
    _copy(checkpoint, store, scope)
    if scope is None:
        for name in checkpoint.named_graphs():  # the empty ones too
            store.add_graph(name)
    elif not isinstance(scope, ox.DefaultGraph):
        if checkpoint.contains_named_graph(scope):
            store.add_graph(scope)
        else:
            store.remove_graph(scope)


def _copy(source: Any, store: Any, graph: Any) -> None:
    """Copy the statements of `graph` (None: all of them) from `source` into `store`, in batches."""
    quads = source.quads_for_pattern(None, None, None, graph)
    while batch := list(itertools.islice(quads, BATCH)):
        store.bulk_extend(batch)


def replace_in_one_update(store: Any, quads: Iterable[Any], target: Any) -> bool:
    """Replace `target` (a graph, or None: the whole dataset) by `quads` in one SPARQL update, which pyoxigraph
    runs as one transaction: DROP, then INSERT DATA. The quads' blank nodes become fresh ones, as in every load
    (labels must therefore be unique across sources: parse them renamed). False, with nothing done, when the
    quads cannot be written as SPARQL data (a blank node naming a graph, which TriG allows and SPARQL does not)."""
    lines = []
    if target is None:
        drop = "DROP SILENT ALL"
        for quad in quads:
            graph = quad.graph_name
            if isinstance(graph, ox.BlankNode):
                return False
            triple = f"{_term(quad.subject)} {quad.predicate} {_term(quad.object)} ."
            lines.append(triple if isinstance(graph, ox.DefaultGraph) else f"GRAPH {graph} {{ {triple} }}")
    elif isinstance(target, ox.DefaultGraph):
        drop = "DROP SILENT DEFAULT"
        lines = [f"{_term(q.subject)} {q.predicate} {_term(q.object)} ." for q in quads]
    else:  # CREATE: an empty body still makes the graph
        drop = f"DROP SILENT GRAPH {target} ; CREATE SILENT GRAPH {target}"
        lines = [f"GRAPH {target} {{"]
        lines.extend(f"{_term(q.subject)} {q.predicate} {_term(q.object)} ." for q in quads)
        lines.append("}")
    data = "\n".join(lines)
    store.update(f"{drop} ;\nINSERT DATA {{\n{data}\n}}")
    return True


def _term(term: Any) -> str:
    """A term in SPARQL: pyoxigraph writes every term as N-Triples does, except a triple term (RDF 1.2), which it
    writes without its brackets."""
    if isinstance(term, ox.Triple):
        return f"<<( {_term(term.subject)} {term.predicate} {_term(term.object)} )>>"
    return str(term)


def add(store: Any, sources: Sequence[Source], target: Any, dataset: bool, small: bool,
         blank_node_scope: str | None) -> None:
    """Store the sources: when `small`, each in one transaction (or one `extend` per batch of scoped quads), else in
    batches with `bulk_extend`."""
    if blank_node_scope is not None:
        add = store.extend if small else store.bulk_extend
        # In batches: pyoxigraph holds the GIL while it stores what it is given, and the event loop of
        # this process must not stall for the whole import.
        scoped = scoped_quads(sources, target, blank_node_scope)
        while batch := list(itertools.islice(scoped, BATCH)):
            add(batch)
    else:
        for source in sources:
            _write(store, source, None if dataset else target, small)
    if not dataset and isinstance(target, ox.NamedNode):
        store.add_graph(target)  # after its statements: an empty body makes an empty graph


def _write(store: Any, source: Source, target: Any, small: bool) -> None:
    options = parse_options(source)
    if small:
        if target is not None:
            options["to_graph"] = target
        store.load(**options)  # one transaction
        return
    # Large: in batches, so that memory stays flat (pyoxigraph's bulk_load holds ~800 MiB for 1M
    # statements) and the GIL, which bulk_extend holds while it stores a batch, comes back often.
    parsed = ox.parse(**options, rename_blank_nodes=True)  # fresh blank nodes, as every load must have
    # Triples parse into the default graph already; into a named graph each quad is made again in Python,
    # which halves the speed (memory stays flat either way).
    in_place = target is None or isinstance(target, ox.DefaultGraph)
    quads: Iterator[Any] = (parsed if in_place else
                            (ox.Quad(q.subject, q.predicate, q.object, target) for q in parsed))
    while batch := list(itertools.islice(quads, BATCH)):
        store.bulk_extend(batch)
