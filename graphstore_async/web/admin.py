"""Repositories (metadata, create, drop) and the operational endpoints /health and /ready."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from graphstore_async.auth import Grant
from graphstore_async.errors import StoreUnavailable
from graphstore_async.web import context


async def repository_get(request: web.Request) -> web.Response:
    repo = await context.repository(request, Grant.READ)
    meta = repo.metadata()
    graphs = await repo.store.named_graphs()
    return web.json_response({
        **meta,
        "iri": context.repository_iri(request, repo),
        "size": await repo.store.size(),
        "graphs": graphs,
        "views": [name for name, _, _ in repo.views()],
        "endpoints": {
            "sparql": f"{context.repository_iri(request, repo)}/sparql",
            "service": f"{context.repository_iri(request, repo)}/service",
        },
    })


async def repository_put(request: web.Request) -> web.Response:
    repo_id = context.requested_repository_id(request)
    request.app[context.ACCESS].require(context.principal(request), repo_id, Grant.ADMIN)
    created = request.app[context.REPOSITORIES].create(repo_id)
    location = f"{context.base_url(request)}/{repo_id}"
    return web.Response(status=201 if created else 204, headers={"Location": location})


async def repository_delete(request: web.Request) -> web.Response:
    repo_id = context.requested_repository_id(request)
    request.app[context.ACCESS].require(context.principal(request), repo_id, Grant.ADMIN)
    await request.app[context.REPOSITORIES].drop(repo_id)
    return web.Response(status=204)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(request.app[context.REDIS].ping(), timeout=2)
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means "not ready", and says why
        checks["redis"] = f"unreachable: {exc.__class__.__name__}"
    data_dir = context.settings(request).repositories_dir
    checks["store"] = "ok" if os.access(data_dir, os.W_OK) else f"{data_dir} is not writable"
    if all(value == "ok" for value in checks.values()):
        return web.json_response({"status": "ready", "checks": checks})
    raise StoreUnavailable("not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"),
                           checks=checks, headers={"Retry-After": "5"})
