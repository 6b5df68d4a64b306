"""The acceptance reference, run in its own process: `python -m bench.refserver --port P --redis-url U`.

A bare aiohttp handler that reads the body, does one Redis LPUSH of it and answers 202 — the least an
asynchronous submission can do, against which our acceptance path (checks, spool, record + job) is measured.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable
from typing import cast

from aiohttp import web
from redis.asyncio import Redis

REDIS = web.AppKey("redis", Redis)
KEY = web.AppKey("key", str)


async def submit(request: web.Request) -> web.Response:
    body = await request.read()
    await cast(Awaitable[int], request.app[REDIS].lpush(request.app[KEY], body))
    return web.Response(status=202)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def app(redis_url: str, key: str) -> web.Application:
    application = web.Application()
    application[KEY] = key

    async def redis(app: web.Application) -> AsyncIterator[None]:
        app[REDIS] = Redis.from_url(redis_url)
        yield
        await app[REDIS].aclose()

    application.cleanup_ctx.append(redis)
    application.router.add_get("/health", health)
    application.router.add_route("*", "/{tail:.*}", submit)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key", default="bench:reference")
    args = parser.parse_args()
    web.run_app(app(args.redis_url, args.key), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
