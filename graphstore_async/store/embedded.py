"""The embedded store: pyoxigraph (RocksDB) on disk, one per repository.

Blocking calls run on the store pools (limits.py: reads, writes, syntax checks), never on the event loop. Writes
to one store are serialized by an asyncio lock: a load in batches must not race another writer. A query runs
within its QueryLimits: a slot of its account's, and a deadline past which its stream is abandoned (streams.py
says what then stops and what runs on).

A store counts the calls running on its threads. A dropped repository's store is retired: it takes no new work,
ends its streams, and closes when its last call has returned (a query past its limit may still run in the engine).

Loads are all-or-nothing: every source is parsed once to validate it (and count its statements) before anything
is written. Then a small load is one transaction (`load`, `extend`, or for a small replace one SPARQL update), and
any other is stored in batches with `bulk_extend`, which keeps memory flat whatever the size of the import, while
readers see a checkpoint of the store as it was, to which a crash rolls it back (`_isolated`, checkpoints.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, TypeVar, cast

import pyoxigraph as ox

from graphstore_async import bounds, formats
from graphstore_async.errors import (
    BadGateway,
    BadRequest,
    Cancelled,
    GraphNotFound,
    QueryTimeout,
    RepositoryNotFound,
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
    QueryLimits,
    Source,
    WholeDataset,
)
from graphstore_async.store.checkpoints import Checkpoint
from graphstore_async.store.limits import AccountSlots, Release, StorePools
from graphstore_async.store.streams import ThreadStream
from graphstore_async.store.writes import empty, put_back, replace_in_one_update

T = TypeVar("T")
log = logging.getLogger(__name__)

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
# A replace of at most this many statements, removed and added, is one SPARQL update (one transaction, ~2 KiB a
# statement in memory, ~75 us a statement); a larger one is written in batches under a checkpoint (_isolated),
# which costs a fixed ~150 ms (mostly RocksDB flushing its memtables) and is the faster way past this size.
REPLACE_IN_ONE_UPDATE = 2_000
READERS_SETTLE_S = 0.05  # see _isolated
COPY_REST_RATIO = 4  # removing a statement costs ~4 times what copying one does (bulk_extend)
_PARSER_PREFIX = re.compile(r"^Parser error at line \d+ (?:between columns \d+ and \d+|column \d+): ")
_SPARQL_POSITION = re.compile(r"error at (\d+):(\d+): ?(.*)", re.DOTALL)


class EmbeddedStore:
    def __init__(self, path: Path, pools: StorePools | Executor, *, transactional_load_bytes: int = 8 * 1024**2,
                 max_json_depth: int = DEFAULT_JSON_DEPTH, slots: AccountSlots | None = None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        Checkpoint.recover(path)  # a write that a crash cut short is rolled back
        self._path = path
        try:
            self._ox = ox.Store(str(path))
        except (OSError, RuntimeError) as exc:  # RocksDB's messages name files: logged, never sent
            log.error("cannot open the store at %s: %s", path, exc)
            raise StoreUnavailable("the repository's store cannot be opened; the failure is logged") from exc
        self._pools = pools if isinstance(pools, StorePools) else StorePools.single(pools)
        self._slots = slots
        self._write_lock = asyncio.Lock()
        self._transactional_load_bytes = transactional_load_bytes
        self._max_json_depth = max_json_depth
        self._calls = 0  # running on a store thread, or waiting for one
        self._calls_lock = threading.Lock()
        self._streams: set[ThreadStream] = set()
        self._dropped = False
        self._when_closed: Callable[[], None] | None = None  # after a drop, until the last call has returned
        self._closed = False

    @classmethod
    def opener(cls, pools: StorePools | Executor, settings: Settings) -> Callable[[Path], EmbeddedStore]:
        """How a server, a worker or the CLI opens a repository's store: with the settings' bounds, and one share
        of query slots per account for all the stores it opens."""
        slots = AccountSlots(settings.max_queries_per_account)

        def open_store(path: Path) -> EmbeddedStore:
            return cls(path, pools, transactional_load_bytes=settings.transactional_load_bytes,
                       max_json_depth=settings.max_json_depth, slots=slots)

        return open_store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Work that writes to the store (or must not run beside a write: it holds the write lock), on the write
        pool."""
        return await asyncio.wrap_future(self._submit(self._pools.writes, fn, *args))

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._submit(self._pools.reads, fn, *args))

    def _submit(self, pool: Executor, fn: Callable[..., T], *args: Any) -> Future[T]:
        self._enter()
        try:
            future = pool.submit(fn, *args)
        except BaseException:
            self._leave()
            raise
        future.add_done_callback(lambda _: self._leave())  # also when it is cancelled before it started
        return future

    def _enter(self) -> None:
        with self._calls_lock:
            if self._dropped:
                raise RepositoryNotFound("the repository has been dropped")
            if self._closed:
                raise StoreUnavailable("the store is closed: the server is stopping")
            self._calls += 1

    def _leave(self) -> None:
        with self._calls_lock:
            self._calls -= 1
            closed = self._last_call_ended()
        if closed is not None:
            self._close_dropped(closed)

    def _last_call_ended(self) -> Callable[[], None] | None:
        """With the calls' lock held: what to call now that a dropped store has no call left (once)."""
        closed, self._when_closed = (self._when_closed, None) if self._calls == 0 else (None, self._when_closed)
        return closed

    async def retire(self, closed: Callable[[], None]) -> None:
        with self._calls_lock:
            self._dropped, self._when_closed = True, closed
            streams = list(self._streams)
        for stream in streams:  # their readers stop now; their threads at their next write
            stream.abandon(RepositoryNotFound("the repository was dropped while this query ran"))
        with self._calls_lock:
            closed_now = self._last_call_ended()
        if closed_now is not None:  # nothing runs on it: closed (and its files removed) before the drop returns
            await asyncio.to_thread(self._closing(closed_now))

    def _close_dropped(self, closed: Callable[[], None]) -> None:
        """On a thread of its own: removing a store's files takes a while, and this may be called on the loop."""
        threading.Thread(target=self._closing(closed), name="store-close", daemon=True).start()

    def _closing(self, closed: Callable[[], None]) -> Callable[[], None]:
        """Close the engine (the last reference to it goes, so RocksDB releases its lock), then `closed`."""
        def close() -> None:
            try:
                del self._ox
                closed()
            except Exception:
                log.exception("closing a dropped store failed")

        return close

    # -- queries -----------------------------------------------------------------------------------------------

    async def query(
        self, query: str, *, format: Format, dataset: Dataset | None = None, base_iri: str | None = None,
        limits: QueryLimits | None = None,
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

        return await self._limited_stream(write, limits or QueryLimits())

    async def _limited_stream(self, write: Callable[[Any], None], limits: QueryLimits) -> ThreadStream:
        """A query's stream on the read pool: in a slot of its account's, abandoned at its deadline. The slot and
        the store's count of calls are given back when the thread ends, which for a query past its limit is when
        the engine returns (it cannot be interrupted)."""
        timeout_s = limits.timeout_s or None
        deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        release = None
        if self._slots is not None and limits.account is not None:
            release = await self._slots.take(limits.account, wait_s=limits.slot_wait_s, deadline=deadline,
                                             limit_s=timeout_s)

        def expired() -> QueryTimeout:
            return QueryTimeout(f"the query did not finish within its time limit of {timeout_s:g} s; its answer is "
                                "abandoned", timeout_s=timeout_s)

        return await self._stream(write, deadline=deadline, expired=expired, release=release)

    async def _stream(self, write: Callable[[Any], None], *, deadline: float | None = None,
                      expired: Callable[[], Exception] | None = None, release: Release | None = None) -> ThreadStream:
        """A ThreadStream on the read pool, counted as one of the store's calls (and `release`d) until its thread
        ends."""
        try:
            self._enter()
        except BaseException:
            if release is not None:
                release()
            raise

        def ended() -> None:
            with self._calls_lock:
                self._streams.discard(stream)
            if release is not None:
                release()
            self._leave()

        stream = ThreadStream(self._pools.reads, write, deadline=deadline, expired=expired, on_end=ended)
        with self._calls_lock:
            self._streams.add(stream)
        return await stream.start()

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

        await asyncio.wrap_future(self._pools.checks.submit(parse))  # a scratch store: not one of this store's calls

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
        live, target = self._ox, _node(graph)  # `live` is written; readers may be given a checkpoint of it
        created = graph is not None and not live.contains_named_graph(target)
        removed = (len(live) if dataset else 0 if created else self._count(graph)) if replace else 0
        result = LoadResult(created=created, statements=statements, removed=removed)
        small = sum(source.path.stat().st_size for source in sources) <= self._transactional_load_bytes
        if replace and small and removed + statements <= REPLACE_IN_ONE_UPDATE:
            quads = itertools.chain.from_iterable(ox.parse(**_options(s), rename_blank_nodes=True) for s in sources)
            if replace_in_one_update(live, quads, None if dataset else target):
                return result
        elif not replace and small and (len(sources) <= 1 if blank_node_scope is None else statements <= EXTEND_BATCH):
            _add(live, sources, target, dataset, True, blank_node_scope)  # one transaction
            return result
        # Anything else commits more than once: readers see a checkpoint meanwhile, and a crash rolls back to it.
        # A named graph's statements are removed one by one, unless the rest of the store is much smaller: then
        # clearing it all and copying the rest back from the checkpoint is the faster way (writes.py).
        copy_rest = (replace and graph is not None
                     and _outside(live, target, removed // COPY_REST_RATIO + 1) * COPY_REST_RATIO <= removed)
        everything = dataset or copy_rest

        def write(store: Any, before: Any) -> None:
            if replace:
                empty(store, target, dataset=dataset, copy_rest_from=before if copy_rest else None)
            _add(store, sources, target, dataset, small, blank_node_scope)

        self._isolated(write, None if everything else target)
        return result

    def _isolated(self, write: Callable[[Any, Any], None], scope: Any) -> None:
        """Run `write(store, checkpoint)`, which commits more than once, on the live store while readers are given
        a checkpoint of it as it was (checkpoints.py): they see all of the write or none of it, and so does the
        store after a crash. If the write fails, `scope` (a graph, or None: everything) is put back as it was."""
        self._sweep_checkpoints()
        live = self._ox
        checkpoint = Checkpoint.take(self._path, live)
        self._ox = checkpoint.store
        # A reader that took the live store just before has taken its engine snapshot (repeatable read) within
        # microseconds of that; the write waits a little longer before it changes anything.
        time.sleep(READERS_SETTLE_S)
        try:
            write(live, checkpoint.store)
        except Exception as exc:
            try:
                put_back(live, checkpoint.store, scope)
                checkpoint.commit()
            except Exception:
                # Left armed: readers keep the state before the write (and writers find a read-only store) until
                # the next start rolls the store back to it.
                log.exception("a write into %s failed, and putting back what it changed failed too", self._path)
                raise StoreUnavailable("the write failed and the repository could not be put back as it was; it "
                                       "is read-only until the server restarts") from exc
            self._ox = live
            self._sweep_checkpoints()
            raise
        checkpoint.commit()
        self._ox = live
        self._sweep_checkpoints()

    def _sweep_checkpoints(self) -> None:
        """Remove committed checkpoints once no other call on the store could be reading one."""
        with self._calls_lock:
            alone = self._calls <= 1  # this one
        if alone:
            Checkpoint.sweep(self._path)

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

        return await self._stream(write)

    async def graph_exists(self, graph: GraphName) -> bool:
        if graph is None:
            return True
        node = ox.NamedNode(graph)
        return await self._read(lambda: self._ox.contains_named_graph(node))  # no bound method: see _close_dropped

    async def named_graphs(self) -> list[str]:
        def names() -> list[str]:
            return sorted(g.value for g in self._ox.named_graphs() if isinstance(g, ox.NamedNode))

        return await self._read(names)

    async def clear_graph(self, graph: GraphName) -> None:
        async with self._write_lock:
            await self._run(lambda: self._ox.clear_graph(_node(graph)))

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
            return await self._read(lambda: len(self._ox))
        return await self._read(self._count, graph)

    def _count(self, graph: GraphName) -> int:
        if graph is None:
            solutions = self._ox.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        else:
            iri = ox.NamedNode(graph)  # a valid IRI, so safe to write between < and >
            solutions = self._ox.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {iri} {{ ?s ?p ?o }} }}")
        return int(next(iter(cast(ox.QuerySolutions, solutions)))["n"].value)

    async def close(self) -> None:
        """The server is stopping: flush, refuse new work, end the streams (a query inside the engine keeps its
        thread, and the engine, until it returns), and let the engine go."""
        async with self._write_lock:
            await self._run(lambda: self._ox.flush())
            with self._calls_lock:
                self._closed = True
        with self._calls_lock:
            streams = list(self._streams)
        for stream in streams:
            stream.abandon(StoreUnavailable("the server is stopping"))
        del self._ox


def _query_os_error(exc: OSError, query: str) -> Exception:
    """pyoxigraph raises OSError both for its store and for a SERVICE call that failed: the second is the
    remote endpoint's fault (502), not ours. A query without SERVICE cannot have failed that way."""
    if "SERVICE" in query.upper():
        return BadGateway(f"the query failed, probably at a SERVICE endpoint: {exc}")
    log.error("reading the store failed: %s", exc)  # it may name files: logged, never sent
    return StoreUnavailable("the store could not be read; the failure is logged")


def _node(graph: GraphName) -> Any:
    return ox.DefaultGraph() if graph is None else ox.NamedNode(graph)


def _outside(store: Any, graph: Any, limit: int) -> int:
    """How many statements the store holds outside a named graph, counting up to `limit` (reading, at most, the
    graph's statements and `limit` others)."""
    query = (f"SELECT (COUNT(*) AS ?n) WHERE {{ SELECT * WHERE {{ {{ ?s ?p ?o }} UNION "
             f"{{ GRAPH ?g {{ ?s ?p ?o }} FILTER (?g != {graph}) }} }} LIMIT {limit} }}")
    return int(next(iter(store.query(query)))["n"].value)


def _add(store: Any, sources: Sequence[Source], target: Any, dataset: bool, small: bool,
         blank_node_scope: str | None) -> None:
    """Store the sources: when `small`, each in one transaction (or one `extend` per batch of scoped quads), else in
    batches with `bulk_extend`."""
    if blank_node_scope is not None:
        add = store.extend if small else store.bulk_extend
        # In batches: pyoxigraph holds the GIL while it stores what it is given, and the event loop of
        # this process must not stall for the whole import.
        scoped = _scoped_quads(sources, target, blank_node_scope)
        while batch := list(itertools.islice(scoped, EXTEND_BATCH)):
            add(batch)
    else:
        for source in sources:
            _write(store, source, None if dataset else target, small)
    if not dataset and isinstance(target, ox.NamedNode):
        store.add_graph(target)  # after its statements: an empty body makes an empty graph


def _write(store: Any, source: Source, target: Any, small: bool) -> None:
    options = _options(source)
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
    while batch := list(itertools.islice(quads, EXTEND_BATCH)):
        store.bulk_extend(batch)


def _options(source: Source) -> dict[str, Any]:
    """How pyoxigraph reads a source: its file, format and base IRI."""
    options: dict[str, Any] = {"path": str(source.path), "format": _RDF[source.format]}
    if source.base_iri:
        options["base_iri"] = source.base_iri
    return options



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
        names.clear()  # blank node labels are local to a document
        for q in ox.parse(**_options(source), rename_blank_nodes=False):
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
    options = _options(source)
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

