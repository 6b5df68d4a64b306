"""Operations: what a protocol request asks of a store, as data, and the one function that carries it out.

The synchronous handlers and the asynchronous worker both build an `Operation` and call `execute`, so a request
behaves the same whether it runs now or later. An Operation is plain JSON (`to_json` / `from_json`): request
bodies are referred to by the path of their spool file, never carried inline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from graphstore_async import formats
from graphstore_async.errors import (
    BadGateway,
    Cancelled,
    FetchRefused,
    GraphNotFound,
    PayloadTooLarge,
    SyntaxProblem,
    TooComplex,
)
from graphstore_async.formats import Format
from graphstore_async.store import (
    BeforeWrite,
    ByteStream,
    Dataset,
    Progress,
    QueryLimits,
    Source,
    Store,
)
from graphstore_async.targets import DEFAULT_GRAPH, GraphName, Target

FetchSource = Callable[[str], AbstractAsyncContextManager[Source]]  # a LOAD's URL, fetched into a spool file
MayWrite = Callable[[], Coroutine[Any, Any, bool]]  # the commit point: asked just before the first change; False: stop
MAY_WRITE_TIMEOUT_S = 600.0  # a store thread waits this long for the commit point (Redis may be away)
# The whole dataset as one graph, for a GET of it in a triples format: every graph's triples, streamed by the engine
# as it evaluates them. The engine drops a repeat of a triple it has written while the set of those it remembers is
# under 2**20 (then it starts the set again; a triple with a blank node is never remembered): a triple in several
# graphs is written once in a smaller dataset, perhaps more than once in a larger one; parsers read one either way.
UNION_OF_GRAPHS = "CONSTRUCT { ?s ?p ?o } WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"


class Kind(Enum):
    QUERY = "query"
    UPDATE = "update"
    GRAPH_GET = "graph-get"
    GRAPH_PUT = "graph-put"
    GRAPH_POST = "graph-post"
    GRAPH_DELETE = "graph-delete"
    GRAPH_PATCH = "graph-patch"  # a SPARQL update confined to the target graph (patches.py) in `text`

    @property
    def reads_only(self) -> bool:
        return self in (Kind.QUERY, Kind.GRAPH_GET)


@dataclass(frozen=True)
class Body:
    path: str
    media_type: str

    @property
    def format(self) -> Format:
        return formats.rdf_format_for(self.media_type)


@dataclass(frozen=True)
class Operation:
    kind: Kind
    repository: str
    target: Target = DEFAULT_GRAPH  # a graph store request's target; a LOAD's INTO GRAPH
    text: str | None = None  # query or update (USING clauses from the protocol, or a PATCH's graph, applied)
    default_graphs: tuple[str, ...] = ()
    named_graphs: tuple[str, ...] = ()
    base_iri: str | None = None
    bodies: tuple[Body, ...] = ()
    result_type: str | None = None  # media type of the result, for queries and graph exports
    created_graph: bool = False  # a POST without a graph: the graph IRI was made at acceptance
    source: str | None = None  # an update that is a LOAD: the URL we fetch (never the engine: fetching.py)
    silent: bool = False  # LOAD SILENT: a source that cannot be fetched or parsed loads nothing, successfully
    # A query's limits (store.QueryLimits), fixed at acceptance: the request's `timeout` capped by the setting for
    # how it runs (now, or as a task), whose share of query threads it takes, and how long it waits for a slot.
    timeout_s: float | None = None
    account: str | None = None
    slot_wait_s: float | None = None

    @property
    def result_format(self) -> Format | None:
        if self.result_type is None:
            return None
        return next(f for f in formats.ALL_FORMATS if f.media_type == self.result_type)

    @property
    def graph(self) -> GraphName:
        """The target's graph (None: the default graph, or every graph for the whole dataset)."""
        return self.target.graph

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["target"] = self.target.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        values = dict(data)
        values["kind"] = Kind(values["kind"])
        values["target"] = Target.from_json(values.get("target") or {})
        values["bodies"] = tuple(Body(**b) for b in values.get("bodies", ()))
        values["default_graphs"] = tuple(values.get("default_graphs", ()))
        values["named_graphs"] = tuple(values.get("named_graphs", ()))
        return cls(**values)


@dataclass
class Outcome:
    """What the operation did, as the synchronous response would say it."""

    status: int
    graph: GraphName = None
    location: str | None = None
    statements_added: int | None = None  # None: not known (a SPARQL update does not report its counts)
    statements_removed: int | None = None
    body: ByteStream | None = None
    format: Format | None = None
    skipped: str | None = None  # LOAD SILENT: why nothing was loaded


async def execute(op: Operation, store: Store, progress: Progress | None = None,
                  blank_node_scope: str | None = None, may_write: MayWrite | None = None,
                  fetch: FetchSource | None = None) -> Outcome:
    """Carry out an operation. Errors are GraphStoreErrors; on error the store is unchanged. A
    `blank_node_scope` makes a merging load repeatable (see Store.load). `may_write` is awaited just before the
    store is first changed; when it answers False the operation stops (Cancelled) with nothing changed. `fetch`
    fetches a LOAD's source (through the egress policy)."""
    if op.kind is Kind.UPDATE and op.source is not None:
        before = None if may_write is None else _from_a_thread(may_write, asyncio.get_running_loop())
        return await _load_source(op, store, fetch, progress, blank_node_scope, before)
    if op.kind is Kind.QUERY:
        assert op.text is not None and op.result_format is not None
        dataset = Dataset(op.default_graphs, op.named_graphs)
        limits = QueryLimits(op.timeout_s, op.account, op.slot_wait_s)
        body = await store.query(op.text, format=op.result_format, dataset=dataset, base_iri=op.base_iri,
                                 limits=limits)
        return Outcome(200, body=body, format=op.result_format)
    if op.kind is Kind.UPDATE:
        assert op.text is not None
        await _commit_point(may_write)
        await store.update(op.text, base_iri=op.base_iri)
        return Outcome(204)
    if op.kind is Kind.GRAPH_GET:
        fmt = op.result_format
        assert fmt is not None
        if op.target.dataset and not fmt.is_dataset:  # the dataset in a triples format: all of it, as one graph
            body = await store.query(UNION_OF_GRAPHS, format=fmt)
        else:
            body = await store.dump(format=fmt, target=op.target)
        return Outcome(200, graph=op.graph, body=body, format=fmt)
    if op.kind is Kind.GRAPH_PATCH:
        return await _patch(op, store, may_write)
    if op.kind is Kind.GRAPH_DELETE:
        await _commit_point(may_write)
        removed = await store.remove_graph(op.graph)
        if removed is None:
            raise GraphNotFound(f"there is no {op.target.describe()} in {op.repository}", graph=op.graph)
        return Outcome(204, graph=op.graph, statements_added=0, statements_removed=removed)
    before_write = None if may_write is None else _from_a_thread(may_write, asyncio.get_running_loop())
    return await _load(op, store, progress, blank_node_scope, before_write)


async def _commit_point(may_write: MayWrite | None) -> None:
    if may_write is not None and not await may_write():
        raise Cancelled("the task was cancelled before it changed anything")


def _from_a_thread(may_write: MayWrite, loop: asyncio.AbstractEventLoop) -> BeforeWrite:
    """The commit point as a store's thread asks it: on the event loop, waited for from the thread."""
    def before_write() -> bool:
        answer: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def ask() -> None:  # on the loop: the coroutine is made there, so a closed loop leaves none unawaited
            task = loop.create_task(may_write())
            task.add_done_callback(lambda done: answer.set_result(
                not done.cancelled() and done.exception() is None and done.result()))

        try:
            loop.call_soon_threadsafe(ask)
            return answer.result(timeout=MAY_WRITE_TIMEOUT_S)
        except Exception:  # the loop is shutting down, or the answer is late: do not write
            return False

    return before_write


async def _load(op: Operation, store: Store, progress: Progress | None, blank_node_scope: str | None,
                before_write: BeforeWrite | None) -> Outcome:
    # A POST that made its graph at acceptance loads into a graph nobody else knows yet: replacing is the same
    # as merging there, and makes a second run (arq runs a job at least once) leave no duplicate.
    replace = op.kind is Kind.GRAPH_PUT or op.created_graph
    sources = _sources(op.bodies, op.base_iri)
    scope = None if replace else blank_node_scope
    if op.target.dataset:  # PUT replaces the dataset, POST merges into it: quads into their own graphs
        result = await store.load_dataset(sources, replace=replace, progress=progress, blank_node_scope=scope,
                                          before_write=before_write)
        return Outcome(204, statements_added=result.statements, statements_removed=result.removed)
    result = await store.load(sources, graph=op.graph, replace=replace, progress=progress, blank_node_scope=scope,
                              before_write=before_write)
    outcome = Outcome(201 if result.created else 204, graph=op.graph, statements_added=result.statements,
                      statements_removed=result.removed)
    if op.created_graph:
        outcome.status, outcome.location = 201, op.graph
    return outcome


async def _patch(op: Operation, store: Store, may_write: MayWrite | None) -> Outcome:
    """PATCH: the confined update, one transaction. 204 for a graph that existed; 201 for one the update made (it
    inserted into it); 404 for one that did not exist and still does not (the update can only have matched
    nothing of it, so it changed nothing)."""
    assert op.text is not None
    existed = await store.graph_exists(op.graph)
    await _commit_point(may_write)
    await store.update(op.text, base_iri=op.base_iri)
    if existed:
        return Outcome(204, graph=op.graph)
    if await store.graph_exists(op.graph):
        return Outcome(201, graph=op.graph)
    raise GraphNotFound(f"there is no {op.target.describe()} in {op.repository}, and the patch did not create it",
                        graph=op.graph)


async def _load_source(op: Operation, store: Store, fetch: FetchSource | None, progress: Progress | None,
                       blank_node_scope: str | None, before_write: BeforeWrite | None) -> Outcome:
    """LOAD: the source fetched by us, then merged into the graph like a POST (SILENT: failures load nothing)."""
    assert op.source is not None
    if fetch is None:
        raise FetchRefused("LOAD cannot be carried out here")
    try:
        async with fetch(op.source) as source:
            result = await store.load([source], graph=op.graph, replace=False, progress=progress,
                                      blank_node_scope=blank_node_scope, before_write=before_write)
    except (BadGateway, FetchRefused, PayloadTooLarge, SyntaxProblem, TooComplex) as exc:
        if not op.silent:
            raise
        return Outcome(204, graph=op.graph, statements_added=0, statements_removed=0, skipped=exc.detail)
    return Outcome(204, graph=op.graph, statements_added=result.statements, statements_removed=0)


def _sources(bodies: Sequence[Body], base_iri: str | None) -> list[Source]:
    return [Source(Path(body.path), body.format, base_iri) for body in bodies]
