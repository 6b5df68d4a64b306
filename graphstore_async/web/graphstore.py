"""SPARQL 1.1 Graph Store HTTP Protocol at /{account}/{repo}/service (indirect) and …/service/{path} (direct).

Targets: `?default`, `?graph=IRI`, or the request URL itself (direct identification). A request with no target
addresses the repository's whole dataset: GET exports it, PUT replaces it, POST creates a new graph (201 with
its IRI as an absolute Location).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from graphstore_async import formats
from graphstore_async.auth import Grant
from graphstore_async.errors import BadRequest, GraphNotFound
from graphstore_async.repositories import Repository
from graphstore_async.store import ALL, GraphName, LoadResult, Source
from graphstore_async.web import context
from graphstore_async.web.bodies import SpooledBody, spool_multipart, spool_request
from graphstore_async.web.responses import stream


@dataclass(frozen=True)
class Target:
    graph: GraphName
    whole_dataset: bool = False

    def describe(self) -> str:
        return "the whole dataset" if self.whole_dataset else ("the default graph" if self.graph is None
                                                               else f"graph <{self.graph}>")


def target_of(request: web.Request) -> Target:
    params = request.query
    if "path" in request.match_info:
        if "graph" in params or "default" in params:
            raise BadRequest("a directly identified graph takes neither ?graph= nor ?default")
        return Target(f"{context.base_url(request)}{request.rel_url.raw_path}")
    if "graph" in params and "default" in params:
        raise BadRequest("give either ?default or ?graph=IRI, not both")
    if "default" in params:
        return Target(None)
    if "graph" in params:
        graphs = params.getall("graph")
        if len(graphs) != 1:
            raise BadRequest("give one ?graph= parameter")
        return Target(_absolute_iri(graphs[0]))
    return Target(None, whole_dataset=True)


def _absolute_iri(text: str) -> str:
    parts = urlsplit(text)
    if not parts.scheme or any(c in text for c in '<>" {}|\\^`') or any(ord(c) < 0x21 for c in text):
        raise BadRequest(f"graph {text!r} is not an absolute IRI")
    return text


async def get(request: web.Request) -> web.StreamResponse:
    repo = await context.repository(request, Grant.READ)
    target = target_of(request)
    if target.whole_dataset:
        fmt = formats.negotiate(request.headers.get("Accept"), formats.DATASET_FORMATS, formats.N_QUADS)
        return await stream(request, await repo.store.dump(format=fmt, graph=ALL), fmt)
    fmt = formats.negotiate(request.headers.get("Accept"), formats.RDF_FORMATS, formats.TURTLE)
    if request.method == "HEAD":
        if not await repo.store.graph_exists(target.graph):
            raise GraphNotFound(f"there is no {target.describe()} in {repo.id}", graph=target.graph)
        response = web.StreamResponse(headers={"Content-Type": fmt.content_type, "Vary": "Accept, Accept-Encoding"})
        return response
    return await stream(request, await repo.store.dump(format=fmt, graph=target.graph), fmt)


async def put(request: web.Request) -> web.Response:
    repo = await context.repository(request, Grant.WRITE)
    target = target_of(request)
    result = await _load(request, repo, target, replace=True)
    return web.Response(status=201 if result.created else 204)


async def post(request: web.Request) -> web.Response:
    repo = await context.repository(request, Grant.WRITE)
    target = target_of(request)
    if target.whole_dataset:
        target = Target(f"{context.base_url(request)}/{repo.id}/service/{uuid.uuid4()}")
        await _load(request, repo, target, replace=False)
        assert target.graph is not None
        return web.Response(status=201, headers={"Location": target.graph})
    result = await _load(request, repo, target, replace=False)
    return web.Response(status=201 if result.created else 204)


async def delete(request: web.Request) -> web.Response:
    repo = await context.repository(request, Grant.WRITE)
    target = target_of(request)
    if target.whole_dataset:
        raise BadRequest("name the graph to delete (?default or ?graph=IRI); to empty a repository use DROP ALL")
    if not await repo.store.remove_graph(target.graph):
        raise GraphNotFound(f"there is no {target.describe()} in {repo.id}", graph=target.graph)
    return web.Response(status=204)


async def _load(request: web.Request, repo: Repository, target: Target, *, replace: bool) -> LoadResult:
    spool_dir = context.settings(request).spool_dir / "sync"
    content_type = request.headers.get("Content-Type")
    if formats.media_type_of(content_type) == formats.MULTIPART and not replace:
        bodies = await spool_multipart(request, spool_dir, context.limits(request))
    else:
        fmt = formats.rdf_format_for(content_type)
        bodies = [await spool_request(request, spool_dir, context.limits(request), fmt)]
    base_iri = target.graph or f"{context.base_url(request)}{request.path}"
    try:
        sources = [Source(body.path, body.format, base_iri) for body in bodies]
        if target.whole_dataset:
            return await repo.store.load_dataset(sources, replace=replace)
        return await repo.store.load(sources, graph=target.graph, replace=replace)
    finally:
        _remove(bodies)


def _remove(bodies: list[SpooledBody]) -> None:
    for body in bodies:
        body.path.unlink(missing_ok=True)
