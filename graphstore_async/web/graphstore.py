"""SPARQL 1.1 Graph Store HTTP Protocol at /{account}/{repo}/service (indirect) and …/service/{path} (direct).

Targets: `?default`, `?graph=IRI`, or the request URL itself (direct identification). A request with no target
addresses the repository's whole dataset: GET exports it, PUT replaces it, POST creates a new graph (201 with
its IRI as an absolute Location).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from graphstore_async import formats
from graphstore_async.auth import Grant
from graphstore_async.errors import BadRequest, GraphNotFound
from graphstore_async.operations import Body, Kind, Operation, execute
from graphstore_async.params import absolute_iri
from graphstore_async.repositories import Repository
from graphstore_async.store import GraphName
from graphstore_async.web import asynchronous, context
from graphstore_async.web.bodies import SpooledBody, spool_multipart, spool_request
from graphstore_async.web.responses import respond

KINDS = {"GET": Kind.GRAPH_GET, "HEAD": Kind.GRAPH_GET, "PUT": Kind.GRAPH_PUT, "POST": Kind.GRAPH_POST,
         "DELETE": Kind.GRAPH_DELETE}


@dataclass(frozen=True)
class Target:
    graph: GraphName
    whole_dataset: bool = False


def target_of(request: web.Request) -> Target:
    params = request.query
    if "path" in request.match_info:
        if "graph" in params or "default" in params:
            raise BadRequest("a directly identified graph takes neither ?graph= nor ?default")
        return Target(absolute_iri(f"{context.base_url(request)}{request.rel_url.raw_path}", what="graph"))
    if "graph" in params and "default" in params:
        raise BadRequest("give either ?default or ?graph=IRI, not both")
    if "default" in params:
        return Target(None)
    if "graph" in params:
        graphs = params.getall("graph")
        if len(graphs) != 1:
            raise BadRequest("give one ?graph= parameter")
        return Target(absolute_iri(graphs[0], what="graph"))
    return Target(None, whole_dataset=True)


def operation_of(request: web.Request, repo: Repository, bodies: list[SpooledBody],
                 terms: asynchronous.Terms | None = None) -> Operation:
    """The request as an Operation (its bodies already spooled)."""
    target = target_of(request)
    kind = KINDS[request.method]
    created_graph = False
    if target.whole_dataset and kind is Kind.GRAPH_POST:
        target, created_graph = Target(f"{context.base_url(request)}/{repo.id}/service/{uuid.uuid4()}"), True
    if target.whole_dataset and kind is Kind.GRAPH_DELETE:
        raise BadRequest("name the graph to delete (?default or ?graph=IRI); to empty a repository use DROP ALL")
    result_type = None
    if kind is Kind.GRAPH_GET:
        offers, default = ((formats.DATASET_FORMATS, formats.N_QUADS) if target.whole_dataset
                           else (formats.RDF_FORMATS, formats.TURTLE))
        if terms is None:
            result_type = formats.negotiate(request.headers.get("Accept"), offers, default).media_type
        else:
            result_type = asynchronous.result_format(request, terms, offers, default).media_type
    return Operation(
        kind, repo.id, graph=target.graph, whole_dataset=target.whole_dataset, result_type=result_type,
        base_iri=target.graph or f"{context.base_url(request)}{request.path}",
        bodies=tuple(Body(str(b.path), b.format.media_type) for b in bodies), created_graph=created_graph,
    )


async def spool_bodies(request: web.Request, directory: Path, durable: bool) -> list[SpooledBody]:
    """PUT and POST bodies in spool files under `directory`; none for other methods."""
    if request.method not in ("PUT", "POST"):
        return []
    content_type = request.headers.get("Content-Type")
    if formats.media_type_of(content_type) == formats.MULTIPART and request.method == "POST":
        return await spool_multipart(request, directory, context.limits(request), durable)
    fmt = formats.rdf_format_for(content_type)
    return [await spool_request(request, directory, context.limits(request), fmt, durable)]


async def handle(request: web.Request) -> web.StreamResponse:
    repo = await context.repository(request, Grant.READ if request.method in ("GET", "HEAD") else Grant.WRITE)
    if (target_of(request).whole_dataset and request.method == "PUT"  # a bad target is refused before the body
            and formats.media_type_of(request.headers.get("Content-Type")) == formats.SPARQL_QUERY):
        raise BadRequest("'service' is reserved and cannot name a view", view="service")
    terms = asynchronous.async_terms(request, request.app[context.EGRESS]) if request.method != "HEAD" else None
    if terms is not None:
        return await _submit(request, repo, terms)
    bodies = await spool_bodies(request, context.settings(request).spool_dir / "sync", durable=False)
    try:
        op = operation_of(request, repo, bodies)
        if request.method == "HEAD":
            return await _head(repo, op)
        return await respond(request, await execute(op, repo.store))
    finally:
        for body in bodies:
            body.path.unlink(missing_ok=True)


async def _submit(request: web.Request, repo: Repository, terms: asynchronous.Terms) -> web.StreamResponse:
    spool = request.app[context.SPOOL]
    asynchronous.check_notification_type(terms, KINDS[request.method])  # before a large body is read
    try:  # on any failure before the task is queued, its spooled bodies go
        bodies = await spool_bodies(request, spool.directory(terms.task_id),
                                    durable=context.settings(request).spool_fsync)
        op = operation_of(request, repo, bodies, terms)
        return await asynchronous.submit(request, op, terms, [body.digest for body in bodies])
    except BaseException:
        spool.remove(terms.task_id)
        raise


async def _head(repo: Repository, op: Operation) -> web.StreamResponse:
    if not op.whole_dataset and not await repo.store.graph_exists(op.graph):
        raise GraphNotFound(f"there is no {op.describe_target()} in {repo.id}", graph=op.graph)
    assert op.result_format is not None
    return web.StreamResponse(headers={"Content-Type": op.result_format.content_type,
                                       "Vary": "Accept, Accept-Encoding"})
