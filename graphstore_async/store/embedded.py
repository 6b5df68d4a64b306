"""The embedded store: pyoxigraph (RocksDB) on disk, one per repository.

Blocking calls run on a shared thread pool, never on the event loop. Writes to one store are serialized by an
asyncio lock: a replacing load is clear-then-load, and bulk loading must not race another writer.

Loads are all-or-nothing for what can fail: every source is parsed once to validate it (and count its
statements) before anything is written, then small bodies load in one transaction and large ones are stored in
batches with `bulk_extend`, which keeps memory flat whatever the size of the import.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar, cast

import pyoxigraph as ox

from graphstore_async import bounds, formats
from graphstore_async.errors import (
    BadGateway,
    BadRequest,
    Cancelled,
    GraphNotFound,
    StoreUnavailable,
    SyntaxProblem,
    UpdateFailed,
)
from graphstore_async.formats import Format
from graphstore_async.settings import Settings
from graphstore_async.store import (
    ALL,
    BeforeWrite,
    ByteStream,
    Dataset,
    GraphName,
    LoadResult,
    Progress,
    Source,
    WholeDataset,
)
from graphstore_async.store.streams import ThreadStream

T = TypeVar("T")

_RDF = {
    formats.TURTLE: ox.RdfFormat.TURTLE,
    formats.N_TRIPLES: ox.RdfFormat.N_TRIPLES,
    formats.N_QUADS: ox.RdfFormat.N_QUADS,
    formats.TRIG: ox.RdfFormat.TRIG,
    formats.RDF_XML: ox.RdfFormat.RDF_XML,
    formats.JSON_LD: ox.RdfFormat.JSON_LD,
}
_RESULTS = {
    formats.SPARQL_JSON: ox.QueryResultsFormat.JSON,
    formats.SPARQL_XML: ox.QueryResultsFormat.XML,
    formats.CSV: ox.QueryResultsFormat.CSV,
    formats.TSV: ox.QueryResultsFormat.TSV,
}
PROGRESS_EVERY = 50_000
DEFAULT_JSON_DEPTH = 100
EXTEND_BATCH = 20_000
_PARSER_PREFIX = re.compile(r"^Parser error at line \d+ (?:between columns \d+ and \d+|column \d+): ")
_SPARQL_POSITION = re.compile(r"error at (\d+):(\d+): ?(.*)", re.DOTALL)


class EmbeddedStore:
    def __init__(self, path: Path, executor: Executor, *, transactional_load_bytes: int = 8 * 1024**2,
                 max_json_depth: int = DEFAULT_JSON_DEPTH) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._ox = ox.Store(str(path))
        except OSError as exc:
            raise StoreUnavailable(f"cannot open the store at {path}: {exc}") from exc
        self._executor = executor
        self._write_lock = asyncio.Lock()
        self._transactional_load_bytes = transactional_load_bytes
        self._max_json_depth = max_json_depth

    @classmethod
    def opener(cls, executor: Executor, settings: Settings) -> Callable[[Path], EmbeddedStore]:
        """How a server, a worker or the CLI opens a repository's store: with the settings' bounds."""
        def open_store(path: Path) -> EmbeddedStore:
            return cls(path, executor, transactional_load_bytes=settings.transactional_load_bytes,
                       max_json_depth=settings.max_json_depth)

        return open_store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- queries -----------------------------------------------------------------------------------------------

    async def query(
        self, query: str, *, format: Format, dataset: Dataset | None = None, base_iri: str | None = None
    ) -> ByteStream:
        kwargs: dict[str, Any] = {"base_iri": base_iri}
        if dataset:
            kwargs["default_graph"] = [ox.NamedNode(iri) for iri in dataset.default_graphs]
            kwargs["named_graphs"] = [ox.NamedNode(iri) for iri in dataset.named_graphs]

        def write(out: Any) -> None:
            try:
                result = self._ox.query(query, **kwargs)
            except SyntaxError as exc:
                raise sparql_syntax_problem(exc, "query") from exc
            except (RuntimeError, ValueError) as exc:
                raise BadRequest(f"the query failed: {exc}") from exc
            except OSError as exc:
                raise _query_os_error(exc, query) from exc
            if isinstance(result, ox.QueryTriples) and format not in _RDF:
                raise BadRequest(f"a graph result cannot be written as {format}")
            if not isinstance(result, ox.QueryTriples) and format not in _RESULTS:
                raise BadRequest(f"a SELECT or ASK result cannot be written as {format}")
            failure: Exception | None = None
            try:  # solutions are computed as they are written: a SERVICE call can fail here too
                if isinstance(result, ox.QueryTriples):
                    result.serialize(out, _RDF[format])
                else:
                    result.serialize(out, _RESULTS[format])
            except (RuntimeError, ValueError) as exc:
                failure = BadRequest(f"the query failed: {exc}")
            except OSError as exc:
                failure = _query_os_error(exc, query)
            # The result must be dropped on this thread (pyoxigraph's results may not cross threads), so the
            # error that goes to the reader is made without a traceback that would keep it alive.
            del result
            if failure is not None:
                raise failure

        return await ThreadStream(self._executor, write).start()

    async def check(self, text: str, *, update: bool) -> None:
        def parse() -> None:
            scratch = ox.Store()  # in memory and empty: parsing is all the work there is
            try:
                if update:
                    scratch.update(text)
                else:
                    scratch.query(text)
            except SyntaxError as exc:
                raise sparql_syntax_problem(exc, "update" if update else "query") from exc
            except (RuntimeError, ValueError):  # it parsed; evaluating it on an empty store is not the point
                pass

        await self._run(parse)

    async def update(self, update: str, *, base_iri: str | None = None) -> None:
        def run() -> None:
            try:
                self._ox.update(update, base_iri=base_iri)
            except SyntaxError as exc:
                raise sparql_syntax_problem(exc, "update") from exc
            except (RuntimeError, ValueError) as exc:  # e.g. CLEAR GRAPH (not SILENT) of a graph that is not there
                raise UpdateFailed(f"the update failed, and changed nothing: {exc}") from exc

        async with self._write_lock:
            await self._run(run)

    # -- loading -----------------------------------------------------------------------------------------------

    async def load(self, sources: Sequence[Source], *, graph: GraphName, replace: bool,
                   progress: Progress | None = None, blank_node_scope: str | None = None,
                   before_write: BeforeWrite | None = None) -> LoadResult:
        async with self._write_lock:
            return await self._run(self._load, sources, graph, replace, False, progress, blank_node_scope,
                                   before_write)

    async def load_dataset(self, sources: Sequence[Source], *, replace: bool,
                           progress: Progress | None = None, before_write: BeforeWrite | None = None) -> LoadResult:
        async with self._write_lock:
            return await self._run(self._load, sources, None, replace, True, progress, None, before_write)

    def _load(self, sources: Sequence[Source], graph: GraphName, replace: bool, dataset: bool,
              progress: Progress | None, blank_node_scope: str | None, before_write: BeforeWrite | None,
              ) -> LoadResult:
        statements = 0
        for source in sources:
            statements += _validate(source, triples_only=not dataset, progress=progress, before=statements,
                                    max_json_depth=self._max_json_depth)
        if before_write is not None and not before_write():
            raise Cancelled("the import was cancelled before it wrote anything")
        target = _node(graph)
        created = graph is not None and not self._ox.contains_named_graph(target)
        removed = self._empty(graph, dataset, created) if replace else 0
        if graph is not None:
            self._ox.add_graph(target)
        small = sum(source.path.stat().st_size for source in sources) <= self._transactional_load_bytes
        if blank_node_scope is not None:
            add = self._ox.extend if small else self._ox.bulk_extend
            # In batches: pyoxigraph holds the GIL while it stores what it is given, and the event loop of
            # this process must not stall for the whole import.
            scoped = _scoped_quads(sources, target, blank_node_scope)
            while batch := list(itertools.islice(scoped, EXTEND_BATCH)):
                add(batch)
        else:
            for source in sources:
                self._write(source, None if dataset else target, small)
        return LoadResult(created=created, statements=statements, removed=removed)

    def _empty(self, graph: GraphName, dataset: bool, created: bool) -> int:
        """Clear what a replacing load replaces; how many statements that removed."""
        if dataset:
            removed = len(self._ox)
            self._ox.clear()
            return removed
        if created:
            return 0
        removed = self._count(graph)
        self._ox.clear_graph(_node(graph))
        return removed

    def _write(self, source: Source, target: Any, small: bool) -> None:
        options: dict[str, Any] = {"path": str(source.path), "format": _RDF[source.format]}
        if source.base_iri:
            options["base_iri"] = source.base_iri
        if small:
            if target is not None:
                options["to_graph"] = target
            self._ox.load(**options)  # one transaction
            return
        # Large: in batches, so that memory stays flat (pyoxigraph's bulk_load holds ~800 MiB for 1M
        # statements) and the GIL, which bulk_extend holds while it stores a batch, comes back often.
        parsed = ox.parse(**options, rename_blank_nodes=True)  # fresh blank nodes, as every load must have
        # Triples parse into the default graph already; into a named graph each quad is made again in Python,
        # which halves the speed (memory stays flat either way).
        in_place = target is None or isinstance(target, ox.DefaultGraph)
        quads: Iterator[Any] = (parsed if in_place else
                                (ox.Quad(q.subject, q.predicate, q.object, target) for q in parsed))
        while batch := list(itertools.islice(quads, EXTEND_BATCH)):
            self._ox.bulk_extend(batch)

    # -- graphs ------------------------------------------------------------------------------------------------

    async def dump(self, *, format: Format, graph: GraphName | WholeDataset = ALL) -> ByteStream:
        if isinstance(graph, WholeDataset):
            options: dict[str, Any] = {}
        else:
            if not await self.graph_exists(graph):
                raise GraphNotFound(f"there is no graph <{graph}> in this repository", graph=graph)
            options = {"from_graph": _node(graph)}

        def write(out: Any) -> None:
            self._ox.dump(out, _RDF[format], **options)

        return await ThreadStream(self._executor, write).start()

    async def graph_exists(self, graph: GraphName) -> bool:
        if graph is None:
            return True
        return await self._run(self._ox.contains_named_graph, ox.NamedNode(graph))

    async def named_graphs(self) -> list[str]:
        def names() -> list[str]:
            return sorted(g.value for g in self._ox.named_graphs() if isinstance(g, ox.NamedNode))

        return await self._run(names)

    async def clear_graph(self, graph: GraphName) -> None:
        async with self._write_lock:
            await self._run(self._ox.clear_graph, _node(graph))

    async def remove_graph(self, graph: GraphName) -> int | None:
        def remove() -> int | None:
            node = _node(graph)
            if graph is not None and not self._ox.contains_named_graph(node):
                return None
            removed = self._count(graph)
            self._ox.remove_graph(node)
            return removed

        async with self._write_lock:
            return await self._run(remove)

    async def size(self, graph: GraphName | WholeDataset = ALL) -> int:
        if isinstance(graph, WholeDataset):
            return await self._run(len, self._ox)
        return await self._run(self._count, graph)

    def _count(self, graph: GraphName) -> int:
        if graph is None:
            solutions = self._ox.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        else:
            iri = ox.NamedNode(graph)  # a valid IRI, so safe to write between < and >
            solutions = self._ox.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {iri} {{ ?s ?p ?o }} }}")
        return int(next(iter(cast(ox.QuerySolutions, solutions)))["n"].value)

    async def close(self) -> None:
        async with self._write_lock:
            await self._run(self._ox.flush)
        del self._ox


def _query_os_error(exc: OSError, query: str) -> Exception:
    """pyoxigraph raises OSError both for its store and for a SERVICE call that failed: the second is the
    remote endpoint's fault (502), not ours. A query without SERVICE cannot have failed that way."""
    if "SERVICE" in query.upper():
        return BadGateway(f"the query failed, probably at a SERVICE endpoint: {exc}")
    return StoreUnavailable("the store could not be read; the failure is logged")


def _node(graph: GraphName) -> Any:
    return ox.DefaultGraph() if graph is None else ox.NamedNode(graph)


def _scoped_quads(sources: Sequence[Source], target: Any, scope: str) -> Iterator[Any]:
    """The sources' triples in `target`, each blank node named `{scope}{n:x}` by order of first appearance
    (parsing is deterministic, so a second pass over the same sources names them the same)."""
    names: dict[str, Any] = {}
    blank, quad = ox.BlankNode, ox.Quad

    def named(term: Any) -> Any:
        if type(term) is not blank:
            return term
        found = names.get(term.value)
        if found is None:
            found = names[term.value] = blank(f"{scope}{len(names):x}")
        return found

    for source in sources:
        options: dict[str, Any] = {"path": str(source.path), "format": _RDF[source.format],
                                   "rename_blank_nodes": False}
        if source.base_iri:
            options["base_iri"] = source.base_iri
        names.clear()  # blank node labels are local to a document
        for q in ox.parse(**options):
            yield quad(named(q.subject), q.predicate, named(q.object), target)


def _bounded(source: Source, max_json_depth: int) -> None:
    """The checks a body passes before the parser sees it (bounds.py): JSON-LD nesting, RDF/XML entities."""
    if source.format not in (formats.JSON_LD, formats.RDF_XML):
        return
    with source.path.open("rb") as fh:
        chunks = iter(lambda: fh.read(1 << 20), b"")
        if source.format is formats.JSON_LD:
            bounds.check_json(chunks, max_json_depth)
        else:
            bounds.check_xml(chunks)


def _validate(source: Source, *, triples_only: bool, progress: Progress | None = None, before: int = 0,
              max_json_depth: int = DEFAULT_JSON_DEPTH) -> int:
    """Parse a source once without storing it (after its bounds are checked); the number of statements, or
    SyntaxProblem / TooComplex."""
    _bounded(source, max_json_depth)
    options: dict[str, Any] = {"path": str(source.path), "format": _RDF[source.format]}
    if source.base_iri:
        options["base_iri"] = source.base_iri
    if triples_only:
        options["without_named_graphs"] = True
    try:
        if progress is None:
            return sum(1 for _ in ox.parse(**options))
        count = 0
        for count, _ in enumerate(ox.parse(**options), start=1):
            if count % PROGRESS_EVERY == 0:
                progress(before + count)
        progress(before + count)
        return count
    except SyntaxError as exc:
        if "named graphs are not allowed" in str(exc).lower():
            # Quads in named graphs cannot go into one graph; say so rather than silently move them.
            raise BadRequest(
                f"the {source.format} body has quads in named graphs; a graph target takes triples only"
            ) from exc
        raise rdf_syntax_problem(exc, source) from exc


def rdf_syntax_problem(exc: SyntaxError, source: Source) -> SyntaxProblem:
    line, column = exc.lineno, exc.offset
    message = _PARSER_PREFIX.sub("", str(exc.msg or exc))
    where = f" at line {line}, column {column}" if line else ""
    return SyntaxProblem(f"the {source.format} body does not parse{where}: {message}", line=line, column=column)


def sparql_syntax_problem(exc: SyntaxError, what: str) -> SyntaxProblem:
    match = _SPARQL_POSITION.match(str(exc))
    if match is None:
        return SyntaxProblem(f"the {what} does not parse: {exc}")
    line, column, message = int(match[1]), int(match[2]), match[3]
    return SyntaxProblem(f"the {what} does not parse at line {line}, column {column}: {message}", line=line,
                         column=column)

