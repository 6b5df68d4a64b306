"""SPARQL 1.1 Protocol at /{account}/{repo}/sparql: query by GET, POST form and POST direct; update by POST."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict

from graphstore_async import formats, sparqltext
from graphstore_async.auth import Grant
from graphstore_async.errors import BadRequest, UnsupportedMediaType
from graphstore_async.operations import Kind, Operation, execute
from graphstore_async.sparqltext import QueryForm
from graphstore_async.store import Dataset
from graphstore_async.web import asynchronous, context
from graphstore_async.web.bodies import read_small
from graphstore_async.web.responses import respond

MAX_OPERATION_BYTES = 16 * 1024 * 1024
QUERY_DATASET = ("default-graph-uri", "named-graph-uri")
UPDATE_DATASET = ("using-graph-uri", "using-named-graph-uri")


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
    if request.method == "GET":
        if "update" in params:
            raise BadRequest("an update must be sent with POST, not GET")
        return _checked(params.getall("query", []), [], params)
    content_type = request.headers.get("Content-Type")
    media = formats.media_type_of(content_type)
    if media not in (formats.FORM, formats.SPARQL_QUERY, formats.SPARQL_UPDATE):
        raise UnsupportedMediaType(
            f"a SPARQL POST needs Content-Type {formats.FORM}, {formats.SPARQL_QUERY} or {formats.SPARQL_UPDATE}"
            + (f", not {media}" if media else "; the request has none"),
        )
    charset = formats.charset_of(content_type)
    if charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaType(f"SPARQL text must be UTF-8, not {charset}")
    raw = await read_small(request, context.limits(request), MAX_OPERATION_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8: {exc}") from exc
    if media == formats.FORM:
        params.extend(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))
        return _checked(params.getall("query", []), params.getall("update", []), params)
    if "query" in params or "update" in params:
        raise BadRequest("a direct POST carries its query or update in the body, not in the URL")
    if media == formats.SPARQL_QUERY:
        return _checked([text], [], params)
    return _checked([], [text], params)


def _checked(queries: Sequence[str], updates: Sequence[str], params: MultiDict[str]) -> ProtocolRequest:
    if len(queries) + len(updates) != 1:
        if not queries and not updates:
            raise BadRequest("the request has neither a query nor an update")
        raise BadRequest("the request must carry exactly one query or one update")
    if queries and any(name in params for name in UPDATE_DATASET):
        raise BadRequest("using-graph-uri and using-named-graph-uri apply to updates, not queries")
    if updates and any(name in params for name in QUERY_DATASET):
        raise BadRequest("default-graph-uri and named-graph-uri apply to queries; use using-graph-uri for updates")
    return ProtocolRequest(queries[0] if queries else None, updates[0] if updates else None, params)


def result_formats(form: QueryForm | None) -> tuple[Sequence[formats.Format], formats.Format]:
    """The formats a query's result can take, and the default among them."""
    if form is not None and form.is_graph:
        return formats.RDF_FORMATS, formats.TURTLE
    if form is QueryForm.ASK:
        return formats.ASK_FORMATS, formats.SPARQL_JSON
    return formats.SELECT_FORMATS, formats.SPARQL_JSON


def check_federation(request: web.Request, text: str) -> None:
    if not context.settings(request).allow_service and sparqltext.uses_service(text):
        raise BadRequest("federated queries (SERVICE) are disabled on this server")


def operation_of(request: web.Request, read: ProtocolRequest, repo_id: str,
                 terms: asynchronous.Terms | None = None) -> Operation:
    """A checked protocol request as an Operation: query form known and result format negotiated, or the
    protocol's USING dataset written into the update."""
    endpoint = f"{context.base_url(request)}{request.path}"
    if read.update is not None:
        check_federation(request, read.update)
        using = read.dataset(UPDATE_DATASET)
        text = sparqltext.with_using(read.update, using.default_graphs, using.named_graphs)
        return Operation(Kind.UPDATE, repo_id, text=text, base_iri=endpoint)
    assert read.query is not None
    check_federation(request, read.query)
    offers, default = result_formats(sparqltext.query_form(read.query))
    if terms is None:
        fmt = formats.negotiate(request.headers.get("Accept"), offers, default)
    else:
        fmt = asynchronous.result_format(request, terms, offers, default)
    dataset = read.dataset(QUERY_DATASET)
    return Operation(Kind.QUERY, repo_id, text=read.query, base_iri=endpoint, result_type=fmt.media_type,
                     default_graphs=dataset.default_graphs, named_graphs=dataset.named_graphs)


async def handle(request: web.Request) -> web.StreamResponse:
    repo = await context.repository(request, Grant.READ)  # before reading a body from a stranger
    terms = asynchronous.async_terms(request, request.app[context.EGRESS])
    read = await read_operation(request)
    if read.update is not None:
        request.app[context.ACCESS].require(context.principal(request), repo.id, Grant.WRITE)
    op = operation_of(request, read, repo.id, terms)
    if terms is not None:
        await repo.store.check(op.text or "", update=read.update is not None)
        return await asynchronous.submit(request, op, terms, [read.digest])
    return await respond(request, await execute(op, repo.store))
