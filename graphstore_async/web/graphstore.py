"""SPARQL 1.1 Graph Store HTTP Protocol at /{account}/{repo}/service (indirect) and …/service/{path} (direct).

Targets: `?default`, `?graph=IRI`, or the request URL itself (direct identification). A request with no target
addresses the repository's whole dataset: GET exports it (in a triples format: the union of its graphs, as one
graph), PUT replaces it, POST of quads (TriG, N-Quads) merges them into their graphs and POST of triples creates
a new graph (201 with its IRI as an absolute Location). Quads sent to one graph all go into that graph.

PATCH (RFC 5789) takes a SPARQL update, confined to the target graph (patches.py) and then run like any update.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path

from aiohttp import web

from graphstore_async import formats, patches
from graphstore_async.auth import Grant
from graphstore_async.errors import BadRequest, GraphNotFound, UnsupportedMediaType
from graphstore_async.formats import Format
from graphstore_async.operations import Body, Kind, Operation
from graphstore_async.params import absolute_iri
from graphstore_async.repositories import Repository
from graphstore_async.targets import DATASET, DEFAULT_GRAPH, Target
from graphstore_async.tasks.terms import Terms
from graphstore_async.web import asynchronous, context, responses, sparql
from graphstore_async.web.bodies import SpooledBody, read_utf8, spool_multipart, spool_request

KINDS = {"GET": Kind.GRAPH_GET, "HEAD": Kind.GRAPH_GET, "PUT": Kind.GRAPH_PUT, "POST": Kind.GRAPH_POST,
         "DELETE": Kind.GRAPH_DELETE, "PATCH": Kind.GRAPH_PATCH}
# The whole dataset: as quads (lossless, so first), or in a triples format as the union of its graphs.
DATASET_OFFERS = formats.DATASET_FORMATS + tuple(f for f in formats.RDF_FORMATS if not f.is_dataset)


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
    offers, default = (DATASET_OFFERS, formats.N_QUADS) if target.dataset else (formats.RDF_FORMATS, formats.TURTLE)
    if asked is None:
        return formats.negotiate(request.headers.get("Accept"), offers, default)
    return asynchronous.result_format(request, asked, offers, default)


def operation_of(request: web.Request, repo: Repository, target: Target, bodies: list[SpooledBody],
                 result: Format | None) -> Operation:
    """The request as an Operation (its bodies already spooled)."""
    kind = KINDS[request.method]
    created_graph = False
    if target.dataset and kind is Kind.GRAPH_POST and not _quads(bodies):  # triples: into a graph made for them
        target, created_graph = Target.named(f"{context.base_url(request)}/{repo.id}/service/{uuid.uuid4()}"), True
    if target.dataset and kind is Kind.GRAPH_DELETE:
        raise BadRequest("name the graph to delete (?default or ?graph=IRI); to empty a repository use DROP ALL")
    return Operation(
        kind, repo.id, target,
        result_type=None if result is None else result.media_type,
        base_iri=target.graph or f"{context.base_url(request)}{request.path}",
        bodies=tuple(Body(str(b.path), b.format.media_type) for b in bodies), created_graph=created_graph,
    )


def _quads(bodies: list[SpooledBody]) -> bool:
    """Whether a POST to the dataset merges quads (every body TriG or N-Quads) or makes a graph (every body
    triples); 400 for a multipart body that mixes the two."""
    quads = [body.format.is_dataset for body in bodies]
    if any(quads) and not all(quads):
        raise BadRequest("a POST to the whole dataset merges quads (TriG, N-Quads) into their own graphs, or makes "
                         "a new graph of triples; this multipart body has parts of both kinds: send them apart")
    return all(quads)


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
    if request.method == "PATCH":
        return await _patch(request, repo, target)
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
            return await _head(request, repo, op)
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


async def _patch(request: web.Request, repo: Repository, target: Target) -> web.StreamResponse:
    """PATCH: its SPARQL update checked as the SPARQL endpoint checks one (bounds, SERVICE against the egress
    policy, syntax at the client's own line and column), confined to the target graph, then run now or queued —
    one update, one transaction, either way."""
    if target.dataset:
        raise BadRequest("name the graph to patch (?default or ?graph=IRI); an update of the whole dataset is "
                         f"POSTed to {context.base_url(request)}/{repo.id}/sparql")
    media = formats.media_type_of(request.headers.get("Content-Type"))
    if media != formats.SPARQL_UPDATE:  # RFC 5789 §2.2: 415, saying which patch documents are taken
        raise UnsupportedMediaType(f"a PATCH body is a SPARQL update ({formats.SPARQL_UPDATE}), not "
                                   + (media or "a body without Content-Type"),
                                   headers={"Accept-Patch": formats.SPARQL_UPDATE}, media_type=media or None)
    asked = asynchronous.asked_of(request, request.app[context.EGRESS])  # refused before the body is read
    text = await read_utf8(request, context.limits(request), sparql.MAX_OPERATION_BYTES)
    shape = await sparql.bounded(request, text, "update")
    if shape.load:
        raise patches.management("LOAD")
    await sparql.check_syntax(repo.store, text, shape, update=True)
    if len(text) < sparql.OFF_LOOP_CHARS:
        confined = patches.confine(text, target.graph)
    else:
        confined = await asyncio.to_thread(patches.confine, text, target.graph)
    op = Operation(Kind.GRAPH_PATCH, repo.id, target, text=confined,
                   base_iri=target.graph or f"{context.base_url(request)}{request.path}")
    return await asynchronous.run_or_submit(request, repo.store, op, asked, None,
                                            [hashlib.sha256(text.encode()).hexdigest()])


async def _head(request: web.Request, repo: Repository, op: Operation) -> web.StreamResponse:
    if not op.target.dataset and not await repo.store.graph_exists(op.graph):
        raise GraphNotFound(f"there is no {op.target.describe()} in {repo.id}", graph=op.graph)
    assert op.result_format is not None
    return responses.headers_only(request, op.result_format)  # as the GET's (gzip included)
