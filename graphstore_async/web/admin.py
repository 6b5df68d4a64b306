"""Repositories (metadata, create, drop) and the operational endpoints /health, /ready and /metrics."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from graphstore_async.auth import Grant
from graphstore_async.errors import Forbidden, StoreUnavailable, Unauthorized
from graphstore_async.metrics import live_workers
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
        alive = await asyncio.wait_for(request.app[context.WORKERS].alive(), timeout=2)
        checks["workers"] = "ok" if alive else "no live worker is taking tasks"
    except Exception as exc:  # any failure means "not ready", and says why
        checks["redis"] = f"unreachable: {exc.__class__.__name__}"
        checks["workers"] = "unknown: Redis is unreachable"
    data_dir = context.settings(request).repositories_dir
    checks["store"] = "ok" if os.access(data_dir, os.W_OK) else "the data directory is not writable"  # no path
    if all(value == "ok" for value in checks.values()):
        return web.json_response({"status": "ready", "checks": checks})
    raise StoreUnavailable("not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"),
                           checks=checks, headers={"Retry-After": "5"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (graphstore_async/metrics.py), for administrators (everybody, with no accounts
    configured). The gauges are read now: the queue's depth, the live workers, and the statements of the
    repositories open in this process."""
    principal = context.principal(request)
    if not principal.admin:
        if principal.anonymous:
            raise Unauthorized("metrics are for administrators; they need credentials",
                               headers={"WWW-Authenticate": request.app[context.ACCESS].challenge})
        raise Forbidden(f"{principal.account} is not an administrator; metrics are for administrators")
    app, settings = request.app, context.settings(request)
    workers = app.get(context.WORKERS)

    async def queue_depth() -> int:
        return int(await app[context.REDIS].zcard(app[context.QUEUE].name))

    async def workers_alive() -> int:
        return await live_workers(workers.alive if workers is not None else None, runs_worker=settings.worker)

    registry = app[context.METRICS]
    await registry.sample(queue_depth=queue_depth, workers_alive=workers_alive,
                          stores={repo.id: repo.store.size for repo in app[context.REPOSITORIES].opened()})
    body, content_type = registry.exposition(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})
