"""The aiohttp application: routes, middlewares, and the resources made in cleanup_ctx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

from graphstore_async.auth import AccessControl
from graphstore_async.repositories import Repositories
from graphstore_async.settings import Settings
from graphstore_async.store import Store
from graphstore_async.store.embedded import EmbeddedStore
from graphstore_async.web import admin, graphstore, sparql
from graphstore_async.web.context import ACCESS, REDIS, REPOSITORIES, SETTINGS
from graphstore_async.web.middlewares import authenticate, problems

REPO = "/{account}/{repo}"


def create_app(settings: Settings, access: AccessControl | None = None) -> web.Application:
    app = web.Application(
        middlewares=[problems, authenticate],
        # Bodies are decoded by us (web/bodies.py), with a bound on gzip expansion; forms are small.
        handler_args={"auto_decompress": False, "max_field_size": settings.max_header_bytes},
        client_max_size=16 * 1024 * 1024,
    )
    app[SETTINGS] = settings
    app[ACCESS] = access if access is not None else AccessControl.from_toml(settings.config_file)
    app.cleanup_ctx.append(_repositories)
    app.cleanup_ctx.append(_redis)

    app.router.add_get("/health", admin.health)
    app.router.add_get("/ready", admin.ready)
    app.router.add_get(REPO + "/sparql", sparql.handle, allow_head=False)
    app.router.add_route("POST", REPO + "/sparql", sparql.handle)
    for path in (REPO + "/service", REPO + "/service/{path:.+}"):
        app.router.add_get(path, graphstore.handle)  # and HEAD (allow_head)
        for method in ("PUT", "POST", "DELETE"):
            app.router.add_route(method, path, graphstore.handle)
    app.router.add_get(REPO, admin.repository_get)
    app.router.add_route("PUT", REPO, admin.repository_put)
    app.router.add_route("DELETE", REPO, admin.repository_delete)
    return app


async def _repositories(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.repositories_dir.mkdir(parents=True, exist_ok=True)
    executor = ThreadPoolExecutor(max_workers=settings.store_threads, thread_name_prefix="store")

    def open_store(path: Path) -> Store:
        return EmbeddedStore(path, executor, transactional_load_bytes=settings.transactional_load_bytes)

    app[REPOSITORIES] = Repositories(settings.repositories_dir, open_store)
    yield
    await app[REPOSITORIES].close()
    executor.shutdown(wait=True, cancel_futures=True)


async def _redis(app: web.Application) -> AsyncIterator[None]:
    redis = Redis.from_url(app[SETTINGS].redis_url)
    app[REDIS] = redis
    yield
    await redis.aclose()
