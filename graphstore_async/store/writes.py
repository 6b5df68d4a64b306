"""Writes into a pyoxigraph store that keep memory bounded, or that are one transaction when they are small.

pyoxigraph removes a named graph's statements one by one (its quads are keyed by graph last in three of their six
indexes, so there is no range to delete) and holds a transaction's changes in memory until it commits: its own
`clear_graph` and `remove_graph` of a named graph of 1M statements peaked at 1.4 GiB and took 99 s here. Removing
in batches that each commit, with a flush now and then, keeps memory flat. The whole dataset and the default
graph are cleared by range deletions, at no cost. None of this is atomic: embedded.py runs it under a checkpoint
(checkpoints.py) unless it is small enough for one SPARQL update (`replace_in_one_update`).

A large N-Triples or N-Quads body is stored in blocks of whole lines, each by `bulk_load` alone: the engine parses
and indexes it in Rust without the GIL, so two blocks are stored at once on two cores, and no statement becomes a
Python object. Other formats are parsed into Python quads and stored in batches with `bulk_extend`, which holds the
GIL throughout. Both keep memory flat: pyoxigraph's bulk_load of a whole file holds ~800 MiB for 1M statements.
A body of quads (TriG, N-Quads) sent to one graph is parsed into Python quads too, each made again in that graph
(the engine's loaders keep a quad's own graph): in one `extend` when small, else in batches.
"""

from __future__ import annotations

import ctypes
import io
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyoxigraph as ox

from graphstore_async import formats
from graphstore_async.store import Source
from graphstore_async.store.parsing import (
    LINE_FORMATS,
    RDF,
    kept_back,
    line_blocks,
    parse_options,
    scoped_quads,
    shared_labels,
)

BATCH = 20_000  # statements a call gives pyoxigraph at once (it holds the GIL while it takes them)
REMOVE_BATCH = 10_000  # statements removed by one update: it holds them in memory, ~1.4 KiB each, until it commits
FLUSH_EVERY = 20_000  # statements removed between flushes: deletions fill RocksDB's memtables, ~0.6 KiB each
# A bulk_load holds ~750 B a statement while it parses (measured), and each one's files are compacted into the
# store's by RocksDB (the more loads, the more compaction). make bench, 2026-12-02, the same quiet machine: 3 MiB
# blocks (~30,000 statements) gave 1.48x bulk_load at 1M and 0.77x at 10M but a peak of 114 MiB over idle; 2 MiB
# blocks gave 1.33x, 0.82x and 75 MiB.
BLOCK_BYTES = 2 * 1024**2
LOADERS = 2  # blocks stored at once, each on a core
TRIM_EVERY = 4  # blocks stored between two trims of the heap (_release_memory)
# Parsed by oxttl, whose lenient mode only skips checks (IRIs, language tags, datatypes): the same quads from a body
# that parsed strictly already (parsing.validate), for less work.
_LENIENT = frozenset({formats.N_TRIPLES, formats.N_QUADS, formats.TURTLE, formats.TRIG})


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
        scoped = scoped_quads(sources, None if dataset else target, blank_node_scope)
        while batch := list(itertools.islice(scoped, BATCH)):
            add(batch)
    else:
        for source in sources:
            _write(store, source, None if dataset else target, small)
    if not dataset and isinstance(target, ox.NamedNode):
        store.add_graph(target)  # after its statements: an empty body makes an empty graph


def _write(store: Any, source: Source, target: Any, small: bool) -> None:
    options = parse_options(source)
    # Quads (TriG, N-Quads) into one graph: the engine's loaders keep each quad's own graph, whatever `to_graph`
    # says, so every quad is made again in the target, from the parser.
    into_one = target is not None and source.format.is_dataset
    if small and not into_one:
        if target is not None:
            options["to_graph"] = target
        store.load(**options)  # one transaction
        return
    if source.format in LINE_FORMATS and not small and not into_one:
        _write_lines(store, source, target)
        return
    # Large: in batches, so that memory stays flat and the GIL, which bulk_extend holds while it stores a batch,
    # comes back often. Each batch is taken from the parser as the engine stores it: no list of Python quads.
    parsed = ox.parse(**options, rename_blank_nodes=True,  # fresh blank nodes, as every load must have
                      lenient=source.format in _LENIENT)
    quads = _in_graph(parsed, target, remake=into_one)
    if small:
        store.extend(quads)  # one transaction
        return
    for batch in _batches(quads, BATCH):
        store.bulk_extend(batch)


def _write_lines(store: Any, source: Source, target: Any) -> None:
    """A line-format source in blocks of whole lines, each stored by one `bulk_load`, LOADERS at a time. bulk_load
    names a block's blank nodes afresh, as a document's own: a label that two blocks hold must be parsed in
    neither. The lines with such labels are kept back (parsing.kept_back) and stored at the end by one parser: in
    one bulk_load more when they are few, else read again and stored in batches."""
    options: dict[str, Any] = {"format": RDF[source.format], "lenient": True}
    if source.base_iri:
        options["base_iri"] = source.base_iri
    if target is not None:
        options["to_graph"] = target
    # Rounds of LOADERS blocks of one size, at most BLOCK_BYTES: no small last block is stored alone, paying a
    # load's fixed cost (~0.1 s here, mostly syncing its files) with a core idle (100k statements: 0.9 s, not 1.2).
    size = source.path.stat().st_size
    rounds = max(1, -(-size // (LOADERS * BLOCK_BYTES)))
    block_bytes = max(1, -(-size // (LOADERS * rounds)))
    shared = shared_labels(line_blocks(source.path, block_bytes))
    back = _store_blocks(store, line_blocks(source.path, block_bytes), shared, options)
    if back:
        store.bulk_load(input=back, **options)
    elif back is None:
        kept = (kept_back(block, shared)[1] for block in line_blocks(source.path, block_bytes))
        parsed = ox.parse(input=io.BufferedReader(_Chunks(kept)), format=RDF[source.format],
                          base_iri=source.base_iri, rename_blank_nodes=True, lenient=True)
        for batch in _batches(_in_graph(parsed, target), BATCH):
            store.bulk_extend(batch)


def _store_blocks(store: Any, blocks: Iterable[bytes], shared: frozenset[bytes] | None,
                  options: dict[str, Any]) -> bytes | None:
    """Store each block's lines that may be parsed alone, LOADERS blocks at once (bulk_load lets go of the GIL
    while it parses and indexes); the lines kept back, or None when they are more than a block."""
    back: list[bytes] | None = []
    back_bytes = 0
    pool = ThreadPoolExecutor(LOADERS, thread_name_prefix="store-load")
    running: deque[Future[None]] = deque()
    try:
        for number, block in enumerate(blocks, start=1):
            alone, together = kept_back(block, shared)
            if together and back is not None:
                back.append(together)
                back_bytes += len(together)
                back = back if back_bytes <= BLOCK_BYTES else None
            running.append(pool.submit(store.bulk_load, input=alone, **options))
            if len(running) > LOADERS:  # the next block is read meanwhile: LOADERS + 1 blocks in memory
                running.popleft().result()
                if number % TRIM_EVERY == 0:
                    _release_memory()
        while running:
            running.popleft().result()
    finally:  # nothing writes into the store once this returns, after a failure too
        pool.shutdown(wait=True, cancel_futures=True)
        _release_memory()
    return None if back is None else b"".join(back)


def _in_graph(quads: Iterable[Any], target: Any, *, remake: bool = False) -> Iterable[Any]:
    """Triples parse into the default graph already; into a named graph (or, `remake`, quads into any graph) each
    quad is made again in Python."""
    if target is None or (isinstance(target, ox.DefaultGraph) and not remake):
        return quads
    return (ox.Quad(q.subject, q.predicate, q.object, target) for q in quads)


def _batches(items: Iterable[Any], size: int) -> Iterator[Iterator[Any]]:
    """`items` in runs of at most `size`, each to be consumed before the next is asked for."""
    it = iter(items)
    for first in it:
        yield itertools.chain((first,), itertools.islice(it, size - 1))


class _Chunks(io.RawIOBase):
    """A binary file over chunks of bytes, for a parser to read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        size = min(len(view), len(self._rest))
        view[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def _malloc_trim() -> Any:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc's; elsewhere there is nothing to trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return trim


_MALLOC_TRIM = _malloc_trim()


def _release_memory() -> None:
    """Give back to the system what a block's load freed: glibc keeps it in the arenas of the loader's threads,
    and the process would hold ~10 MiB more at 10M statements (measured: 119 MiB at the peak, not 127-131)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
