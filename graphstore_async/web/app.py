"""The aiohttp application: routes, middlewares, and the resources made in cleanup_ctx (its connections
answer even what aiohttp's protocol refuses as problem+json: web/protocol.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import hdrs, web
from redis.asyncio import Redis

from graphstore_async.auth import AccessControl
from graphstore_async.egress import EgressPolicy
from graphstore_async.errors import MethodNotAllowed
from graphstore_async.fetching import Fetcher
from graphstore_async.metrics import Metrics
from graphstore_async.repositories import Repositories
from graphstore_async.settings import Settings
from graphstore_async.store.embedded import EmbeddedStore
from graphstore_async.store.limits import StorePools
from graphstore_async.tasks.delivery import Deliverer
from graphstore_async.tasks.liveness import Workers
from graphstore_async.tasks.queue import Queue
from graphstore_async.tasks.records import Tasks
from graphstore_async.tasks.service import running_worker, runtime_of
from graphstore_async.tasks.spool import Spool
from graphstore_async.tasks.submission import Submission
from graphstore_async.web import admin, graphstore, sparql, tasks, views
from graphstore_async.web.context import (
    ACCESS,
    EGRESS,
    FETCHER,
    METRICS,
    QUEUE,
    REDIS,
    REPOSITORIES,
    SETTINGS,
    SPOOL,
    SUBMISSION,
    TASKS,
    WORKERS,
)
from graphstore_async.web.cors import Cors
from graphstore_async.web.middlewares import observe
from graphstore_async.web.protocol import ProblemApplication

REPO = "/{account}/{repo}"
STORE_CLOSE_S = 3.0  # at shutdown, closing the stores waits at most this long


def create_app(settings: Settings, access: AccessControl | None = None) -> web.Application:
    app = ProblemApplication(
        middlewares=[observe],
        # Bodies are decoded by us (web/bodies.py), with a bound on gzip expansion; forms are small.
        handler_args={"auto_decompress": False, "max_field_size": settings.max_header_bytes},
        client_max_size=16 * 1024 * 1024,
    )
    app[SETTINGS] = settings
    app[ACCESS] = access if access is not None else AccessControl.from_toml(settings.config_file)
    app[EGRESS] = EgressPolicy.from_settings(settings)
    app[METRICS] = Metrics()  # this application's own registry: never prometheus_client's global one
    cors = Cors.from_settings(settings)
    if cors:  # off, not even a hook to call, unless cors_origins lists origins
        app.on_response_prepare.append(cors.on_response_prepare)
    app.cleanup_ctx.append(_repositories)
    app.cleanup_ctx.append(_metrics)
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_tasks)

    app.router.add_get("/health", admin.health)
    app.router.add_get("/ready", admin.ready)
    app.router.add_get("/metrics", admin.metrics)
    app.router.add_get("/tasks", tasks.listing)
    app.router.add_get("/tasks/{task_id}", tasks.monitor)
    app.router.add_delete("/tasks/{task_id}", tasks.cancel)
    app.router.add_get("/tasks/{task_id}/status", tasks.status)
    app.router.add_get("/tasks/{task_id}/events", tasks.events)
    app.router.add_get(REPO + "/sparql", sparql.handle)  # and HEAD, as every GET
    app.router.add_route("POST", REPO + "/sparql", sparql.handle)
    for path in (REPO + "/service", REPO + "/service/{path:.+}"):
        app.router.add_get(path, graphstore.handle)  # and HEAD (allow_head)
        for method in ("PUT", "POST", "DELETE", "PATCH"):
            app.router.add_route(method, path, graphstore.handle)
    app.router.add_get(REPO + "/views", views.listing)
    app.router.add_get(REPO + "/{view}", views.run)  # after sparql, service and views: those names are taken
    app.router.add_post(REPO + "/{view}", views.run)
    app.router.add_put(REPO + "/{view}", views.put)
    app.router.add_delete(REPO + "/{view}", views.delete)
    app.router.add_get(REPO, admin.repository_get)
    app.router.add_route("PUT", REPO, admin.repository_put)
    app.router.add_route("DELETE", REPO, admin.repository_delete)
    _answer_every_method(app.router)  # last: after it, a resource takes no route
    return app


def _answer_every_method(router: web.UrlDispatcher) -> None:
    """End every resource with a route for any other method, so that the first resource whose path matches a
    request answers it, whatever its method: its own handler, OPTIONS (204 and Allow), or 405 with the same Allow.
    Without it aiohttp went on to the next resource whose path matched (`/{account}/{repo}/{view}` matches
    …/sparql: a PUT there reached the views' handler), and its 405 listed the methods of every resource matching
    the path (on /sparql: DELETE, GET, HEAD, POST, PUT, of which HEAD, PUT and DELETE failed)."""
    for resource in router.resources():
        if isinstance(resource, web.Resource):
            resource.add_route(hdrs.METH_ANY, _other_method)


def allowed_methods(resource: web.AbstractResource | None) -> list[str]:
    """The methods a resource answers, as its routes say: every route a handler was added for, and OPTIONS."""
    methods = {route.method for route in resource or () if route.method != hdrs.METH_ANY}
    return sorted(methods | {hdrs.METH_OPTIONS})


async def _other_method(request: web.Request) -> web.Response:
    """A method the resource has no handler for: OPTIONS is 204 with its Allow (web/cors.py adds what a
    preflight needs), any other 405 with the same Allow."""
    allow = ", ".join(allowed_methods(request.match_info.route.resource))
    if request.method == hdrs.METH_OPTIONS:
        return web.Response(status=204, headers={hdrs.ALLOW: allow})
    raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}; allowed: {allow}",
                           headers={hdrs.ALLOW: allow})


async def _repositories(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.repositories_dir.mkdir(parents=True, exist_ok=True)
    pools = StorePools.create(settings)  # reads, writes and syntax checks: none waits for another
    app[REPOSITORIES] = Repositories(settings.repositories_dir, EmbeddedStore.opener(pools, settings))
    yield
    # Bounded: a store thread may still run a query that nobody waits for and the engine cannot interrupt (and
    # closing a store waits for its writes, and for a free thread). Store threads are not joined here, as they
    # may never end: `serve` exits without the busy ones (supervisor.exit_unless_threads_busy).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(app[REPOSITORIES].close(), STORE_CLOSE_S)
    pools.shutdown(wait=False)


async def _metrics(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[METRICS].close()  # statement counts still running stop before the stores close


async def _redis(app: web.Application) -> AsyncIterator[None]:
    redis = Redis.from_url(app[SETTINGS].redis_url)
    app[REDIS] = redis
    yield
    await redis.aclose()


async def _tasks(app: web.Application) -> AsyncIterator[None]:
    """Task state and queue; and, unless turned off, a worker in this process (the embedded store admits one
    writing process, so the server runs its own worker)."""
    settings = app[SETTINGS]
    app[TASKS] = Tasks(app[REDIS], settings)
    app[QUEUE] = Queue(app[REDIS], settings)
    app[SPOOL] = Spool(settings)
    await asyncio.to_thread(app[SPOOL].sweep_sync)  # before any request: what is there was left by a crash
    app[SUBMISSION] = Submission(app[REDIS], settings, app[QUEUE], app[SPOOL])
    app[FETCHER] = Fetcher.from_settings(settings)
    app[WORKERS] = Workers(app[REDIS], settings)
    try:
        if not settings.worker:
            yield
            return
        deliverer = Deliverer(settings)
        runtime = runtime_of(settings, app[REDIS], app[REPOSITORIES], app[ACCESS], deliverer, app[FETCHER])
        runtime.metrics = runtime.dispatcher.metrics = app[METRICS]  # /metrics shows this worker's tasks
        try:
            async with running_worker(runtime, app[WORKERS]):
                yield
        finally:
            await deliverer.close()
    finally:
        await app[FETCHER].close()
