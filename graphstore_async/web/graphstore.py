"""SPARQL 1.1 Graph Store HTTP Protocol at /{account}/{repo}/service (indirect) and …/service/{path} (direct).

Targets: `?default`, `?graph=IRI`, or the request URL itself (direct identification). A request with no target
addresses the repository's whole dataset: GET exports it, PUT replaces it, POST creates a new graph (201 with
its IRI as an absolute Location).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from aiohttp import web

from graphstore_async import formats
from graphstore_async.auth import Grant
from graphstore_async.errors import BadRequest, GraphNotFound
from graphstore_async.formats import Format
from graphstore_async.operations import Body, Kind, Operation
from graphstore_async.params import absolute_iri
from graphstore_async.repositories import Repository
from graphstore_async.targets import DATASET, DEFAULT_GRAPH, Target
from graphstore_async.tasks.terms import Terms
from graphstore_async.web import asynchronous, context
from graphstore_async.web.bodies import SpooledBody, spool_multipart, spool_request

KINDS = {"GET": Kind.GRAPH_GET, "HEAD": Kind.GRAPH_GET, "PUT": Kind.GRAPH_PUT, "POST": Kind.GRAPH_POST,
         "DELETE": Kind.GRAPH_DELETE}


def target_of(request: web.Request) -> Target:
    params = request.query
    if "path" in request.match_info:
        if "graph" in params or "default" in params:
            raise BadRequest("a directly identified graph takes neither ?graph= nor ?default")
        return Target.named(absolute_iri(f"{context.base_url(request)}{request.rel_url.raw_path}", what="graph"))
    if "graph" in params and "default" in params:
        raise BadRequest("give either ?default or ?graph=IRI, not both")
    if "default" in params:
        return DEFAULT_GRAPH
    if "graph" in params:
        graphs = params.getall("graph")
        if len(graphs) != 1:
            raise BadRequest("give one ?graph= parameter")
        return Target.named(absolute_iri(graphs[0], what="graph"))
    return DATASET


def result_format(request: web.Request, target: Target, asked: asynchronous.Asked | None) -> Format | None:
    """A GET's result format: negotiated from Accept now, or as its task will write it; None for other methods."""
    if KINDS[request.method] is not Kind.GRAPH_GET:
        return None
    offers, default = ((formats.DATASET_FORMATS, formats.N_QUADS) if target.dataset
                       else (formats.RDF_FORMATS, formats.TURTLE))
    if asked is None:
        return formats.negotiate(request.headers.get("Accept"), offers, default)
    return asynchronous.result_format(request, asked, offers, default)


def operation_of(request: web.Request, repo: Repository, target: Target, bodies: list[SpooledBody],
                 result: Format | None) -> Operation:
    """The request as an Operation (its bodies already spooled)."""
    kind = KINDS[request.method]
    created_graph = False
    if target.dataset and kind is Kind.GRAPH_POST:
        target, created_graph = Target.named(f"{context.base_url(request)}/{repo.id}/service/{uuid.uuid4()}"), True
    if target.dataset and kind is Kind.GRAPH_DELETE:
        raise BadRequest("name the graph to delete (?default or ?graph=IRI); to empty a repository use DROP ALL")
    return Operation(
        kind, repo.id, target,
        result_type=None if result is None else result.media_type,
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
    target = target_of(request)  # a bad target is refused before the body is read
    if (target.dataset and request.method == "PUT"
            and formats.media_type_of(request.headers.get("Content-Type")) == formats.SPARQL_QUERY):
        raise BadRequest("'service' is reserved and cannot name a view", view="service")
    asked = asynchronous.asked_of(request, request.app[context.EGRESS]) if request.method != "HEAD" else None
    result = result_format(request, target, asked)
    if asked is not None:  # its terms decided (and refused, when they must be) before a large body is read
        return await _submit(request, repo, target, result, asked, asynchronous.terms_of(request, asked, result))
    bodies = await spool_bodies(request, context.settings(request).spool_dir / "sync", durable=False)
    try:
        op = operation_of(request, repo, target, bodies, result)
        if request.method == "HEAD":
            return await _head(repo, op)
        return await asynchronous.run_or_submit(request, repo.store, op, None, None, ())
    finally:
        for body in bodies:
            body.path.unlink(missing_ok=True)


async def _submit(request: web.Request, repo: Repository, target: Target, result: Format | None,
                  asked: asynchronous.Asked, terms: Terms) -> web.StreamResponse:
    spool = request.app[context.SPOOL]
    try:  # until the task is submitted its spooled bodies are ours to remove; from then on tasks/submission.py's
        bodies = await spool_bodies(request, spool.directory(asked.task_id),
                                    durable=context.settings(request).spool_fsync)
        op = operation_of(request, repo, target, bodies, result)
    except BaseException:
        spool.remove(asked.task_id)
        raise
    return await asynchronous.run_or_submit(request, repo.store, op, asked, terms, [body.digest for body in bodies])


async def _head(repo: Repository, op: Operation) -> web.StreamResponse:
    if not op.target.dataset and not await repo.store.graph_exists(op.graph):
        raise GraphNotFound(f"there is no {op.target.describe()} in {repo.id}", graph=op.graph)
    assert op.result_format is not None
    return web.StreamResponse(headers={"Content-Type": op.result_format.content_type,
                                       "Vary": "Accept, Accept-Encoding"})
