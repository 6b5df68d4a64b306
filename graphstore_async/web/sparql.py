"""SPARQL 1.1 Protocol at /{account}/{repo}/sparql: query by GET, POST form and POST direct; update by POST; with
no query, GET answers the endpoint's Service Description (description.py). HEAD answers what GET would, without
its body (and never as a task)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict

from graphstore_async import bounds, description, formats, params, sparqltext
from graphstore_async.auth import Grant
from graphstore_async.errors import BadRequest, EgressRefused, FetchRefused, UnsupportedMediaType
from graphstore_async.operations import FetchSource, Kind, Operation
from graphstore_async.params import absolute_iri
from graphstore_async.repositories import Repository
from graphstore_async.sparqltext import QueryForm
from graphstore_async.store import Dataset, Source, Store
from graphstore_async.targets import Target
from graphstore_async.web import asynchronous, context
from graphstore_async.web.bodies import read_utf8

MAX_OPERATION_BYTES = 16 * 1024 * 1024
QUERY_DATASET = ("default-graph-uri", "named-graph-uri")
UPDATE_DATASET = ("using-graph-uri", "using-named-graph-uri")
PROTOCOL_PARAMETERS = ("query", "update", *QUERY_DATASET, *UPDATE_DATASET, "timeout")  # none: a description
DESCRIBED_GRAPHS_ON_LOOP = 100  # a description naming more graphs is written on a thread (1,000: 12 ms)
OFF_LOOP_CHARS = 64 * 1024  # texts longer than this are scanned on a thread


@dataclass(frozen=True)
class ProtocolRequest:
    """One protocol request, read and checked: exactly one query or one update, and its dataset."""

    query: str | None
    update: str | None
    params: MultiDict[str]

    @property
    def digest(self) -> str:
        return hashlib.sha256((self.query or self.update or "").encode()).hexdigest()

    def dataset(self, names: Sequence[str]) -> Dataset:
        return Dataset(tuple(self.params.getall(names[0], [])), tuple(self.params.getall(names[1], [])))


async def read_operation(request: web.Request) -> ProtocolRequest:
    params: MultiDict[str] = MultiDict(request.query)
    if request.method in ("GET", "HEAD"):
        if "update" in params:
            raise BadRequest(f"an update must be sent with POST, not {request.method}")
        return _checked(params.getall("query", []), [], params)
    content_type = request.headers.get("Content-Type")
    media = formats.media_type_of(content_type)
    if media not in (formats.FORM, formats.SPARQL_QUERY, formats.SPARQL_UPDATE):
        raise UnsupportedMediaType(
            f"a SPARQL POST needs Content-Type {formats.FORM}, {formats.SPARQL_QUERY} or {formats.SPARQL_UPDATE}"
            + (f", not {media}" if media else "; the request has none"),
        )
    text = await read_utf8(request, context.limits(request), MAX_OPERATION_BYTES)
    if media == formats.FORM:
        fields = form_fields(text) if len(text) < OFF_LOOP_CHARS else await asyncio.to_thread(form_fields, text)
        params.extend(fields)
        return _checked(params.getall("query", []), params.getall("update", []), params)
    if "query" in params or "update" in params:
        raise BadRequest("a direct POST carries its query or update in the body, not in the URL")
    if media == formats.SPARQL_QUERY:
        return _checked([text], [], params)
    return _checked([], [text], params)


def form_fields(text: str) -> list[tuple[str, str]]:
    """An HTML form's fields (application/x-www-form-urlencoded), strictly UTF-8."""
    try:  # a percent-encoded byte sequence that is not UTF-8 (query=ASK%FF) is the client's error
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the form's percent-encoded text is not UTF-8: {exc}") from exc


def _checked(queries: Sequence[str], updates: Sequence[str], params: MultiDict[str]) -> ProtocolRequest:
    if len(queries) + len(updates) != 1:
        if not queries and not updates:
            raise BadRequest("the request has neither a query nor an update")
        raise BadRequest("the request must carry exactly one query or one update")
    if queries and any(name in params for name in UPDATE_DATASET):
        raise BadRequest("using-graph-uri and using-named-graph-uri apply to updates, not queries")
    if updates and any(name in params for name in QUERY_DATASET):
        raise BadRequest("default-graph-uri and named-graph-uri apply to queries; use using-graph-uri for updates")
    for name in QUERY_DATASET + UPDATE_DATASET:
        for value in params.getall(name, []):
            absolute_iri(value, what=name)
    return ProtocolRequest(queries[0] if queries else None, updates[0] if updates else None, params)


def result_formats(form: QueryForm | None) -> tuple[Sequence[formats.Format], formats.Format]:
    """The formats a query's result can take, and the default among them."""
    if form is not None and form.is_graph:
        return formats.RDF_FORMATS, formats.TURTLE
    if form is QueryForm.ASK:
        return formats.ASK_FORMATS, formats.SPARQL_JSON
    return formats.SELECT_FORMATS, formats.SPARQL_JSON


# Every format some query's result can take, as result_formats offers them: what the description lists.
RESULT_FORMATS: tuple[formats.Format, ...] = tuple(dict.fromkeys(
    fmt for form in (None, *QueryForm) for fmt in result_formats(form)[0]))


async def describe(request: web.Request, repo: Repository) -> web.Response:
    """The endpoint's Service Description, in Turtle or the RDF format Accept asks for."""
    fmt = description.description_format(request.headers.get("Accept"))
    graphs = await repo.store.named_graphs()
    service = description.Service(f"{context.base_url(request)}{request.path}", RESULT_FORMATS, formats.RDF_FORMATS,
                                  description.features(context.settings(request)), graphs)
    if len(graphs) < DESCRIBED_GRAPHS_ON_LOOP:
        body = description.serialize(description.quads(service), fmt)
    else:
        body = await asyncio.to_thread(lambda: description.serialize(description.quads(service), fmt))
    return web.Response(body=body, headers={"Content-Type": fmt.content_type, "Vary": "Accept"})


async def bounded(request: web.Request, text: str, what: str) -> sparqltext.Shape:
    """The text's shape once it is within what the engine is trusted with (bounds.sparql): on the event loop
    for a short text, on a thread for a long one (the scan is proportional to its length)."""
    settings = context.settings(request)
    if len(text) < OFF_LOOP_CHARS:
        shape = bounds.sparql(text, settings, what=what)
    else:
        shape = await asyncio.to_thread(bounds.sparql, text, settings, what=what)
    for endpoint in shape.service:  # listed by the operator (bounds.sparql); and within the one egress policy
        try:
            request.app[context.EGRESS].check_url(endpoint or "", context.own_origin(request))
        except EgressRefused as exc:
            raise FetchRefused(f"SERVICE <{endpoint}> is refused: {exc.detail}", endpoint=endpoint) from exc
    return shape


def operation_of(request: web.Request, read: ProtocolRequest, repo_id: str, shape: sparqltext.Shape,
                 asked: asynchronous.Asked | None = None) -> Operation:
    """A bounded protocol request as an Operation: the query's result format negotiated, or the protocol's
    USING dataset written into the update."""
    endpoint = f"{context.base_url(request)}{request.path}"
    if read.update is not None:
        using = read.dataset(UPDATE_DATASET)
        text = sparqltext.with_using(read.update, using.default_graphs, using.named_graphs)
        return Operation(Kind.UPDATE, repo_id, text=text, base_iri=endpoint)
    assert read.query is not None
    offers, default = result_formats(shape.form)
    if asked is None:
        fmt = formats.negotiate(request.headers.get("Accept"), offers, default)
    else:
        fmt = asynchronous.result_format(request, asked, offers, default)
    dataset = read.dataset(QUERY_DATASET)
    return Operation(Kind.QUERY, repo_id, text=read.query, base_iri=endpoint, result_type=fmt.media_type,
                     default_graphs=dataset.default_graphs, named_graphs=dataset.named_graphs)


def load_operation(request: web.Request, text: str, repo_id: str) -> Operation:
    """With allow_load: an update that loads, as an Operation we carry out by fetching the source ourselves
    (fetching.py) — the engine never sees a LOAD. Its source is checked against the egress policy now (a 400
    before anything is queued) and again, where the connection is made, when it runs."""
    load = sparqltext.single_load(text)
    if load is None:
        raise FetchRefused("an update that loads must be exactly one LOAD [SILENT] <IRI> [INTO GRAPH <IRI>], "
                           "with plain IRIs; send other operations in a request of their own")
    source = absolute_iri(load.source, what="LOAD source")
    graph = None if load.graph is None else absolute_iri(load.graph, what="LOAD graph")
    try:
        request.app[context.EGRESS].check_url(source, context.own_origin(request))
    except EgressRefused as exc:
        raise FetchRefused(f"LOAD <{source}> is refused: {exc.detail}", source=source) from exc
    return Operation(Kind.UPDATE, repo_id, Target(graph), text=text, source=source, silent=load.silent)


def time_limited(request: web.Request, op: Operation, asked: Sequence[str], *, task: bool) -> Operation:
    """A query with its limits: the `timeout` asked (seconds), capped by query_timeout_s, or by
    task_query_timeout_s for a task; the caller's account, whose share of query threads it takes; and, run now,
    how long it may wait for a slot (a task waits within its time limit)."""
    if len(asked) > 1:
        raise BadRequest("timeout is given more than once", parameter="timeout")
    settings = context.settings(request)
    cap = (settings.task_query_timeout_s if task else settings.query_timeout_s) or None
    timeout = params.seconds(asked[0], what="timeout") if asked else None
    if cap is not None:
        timeout = cap if timeout is None else min(timeout, cap)
    return dataclasses.replace(op, timeout_s=timeout, account=context.principal(request).account,
                               slot_wait_s=None if task else settings.query_slot_wait_s)


def fetcher_for(request: web.Request) -> FetchSource:
    def fetch(url: str) -> AbstractAsyncContextManager[Source]:  # the own origin only for a LOAD: most never ask
        return request.app[context.FETCHER].fetched(url, own_origin=context.own_origin(request))

    return fetch


async def check_syntax(store: Store, text: str, shape: sparqltext.Shape, *, update: bool) -> None:
    """Parse the text before it is queued, without fetching anything (SERVICE and LOAD operands replaced)."""
    await store.check(sparqltext.without_fetching(text, shape) if shape.fetches else text, update=update)


async def handle(request: web.Request) -> web.StreamResponse:
    repo = await context.repository(request, Grant.READ)  # before reading a body from a stranger
    if request.method in ("GET", "HEAD") and not any(name in request.query for name in PROTOCOL_PARAMETERS):
        return await describe(request, repo)
    asked = asynchronous.asked_of(request, request.app[context.EGRESS])
    read = await read_operation(request)
    if read.update is not None:
        request.app[context.ACCESS].require(context.principal(request), repo.id, Grant.WRITE)
    text = read.update if read.update is not None else read.query or ""
    shape = await bounded(request, text, "update" if read.update is not None else "query")
    if shape.load:  # only with allow_load (bounds.sparql refuses it otherwise)
        op = load_operation(request, text, repo.id)
    elif len(text) < OFF_LOOP_CHARS:
        op = operation_of(request, read, repo.id, shape, asked)
    else:
        op = await asyncio.to_thread(operation_of, request, read, repo.id, shape, asked)
    if op.kind is Kind.QUERY:
        op = time_limited(request, op, read.params.getall("timeout", []), task=asked is not None)
    elif "timeout" in read.params:
        raise BadRequest("timeout applies to queries; an update is not time-limited", parameter="timeout")
    if asked is not None and op.source is None:  # a task's text is parsed before it is queued (a LOAD by us)
        await check_syntax(repo.store, text, shape, update=read.update is not None)
    return await asynchronous.run_or_submit(request, repo.store, op, asked, None, [read.digest],
                                            fetch=None if asked else fetcher_for(request))
