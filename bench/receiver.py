"""The notification receiver, run in its own process: `python -m bench.receiver --port P`.

Any request to a path other than /health and /_bench/* is a notification: its arrival time (time.monotonic(),
which on Linux is CLOCK_MONOTONIC, one clock for every process of the machine, so comparable with the times
the benchmark takes) is recorded under its path, and it is answered 204 at once.

    GET /_bench/stats?path=/n/x   {"count": k, "first": t, "last": t, "body": "the last body (start of it)"}
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

from aiohttp import web

BODY_KEPT = 4000


@dataclass
class Arrivals:
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    body: bytes = b""


@dataclass
class Receiver:
    paths: dict[str, Arrivals] = field(default_factory=dict)

    async def notification(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.monotonic()
        arrivals = self.paths.get(request.path)
        if arrivals is None:
            arrivals = self.paths[request.path] = Arrivals(first=now)
        arrivals.count += 1
        arrivals.last = now
        arrivals.body = body[:BODY_KEPT]
        return web.Response(status=204)

    async def stats(self, request: web.Request) -> web.Response:
        arrivals = self.paths.get(request.query.get("path", ""), Arrivals())
        return web.json_response({"count": arrivals.count, "first": arrivals.first, "last": arrivals.last,
                                  "body": arrivals.body.decode("utf-8", "replace")})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def app() -> web.Application:
    receiver = Receiver()
    application = web.Application(client_max_size=64 * 1024 * 1024)
    application.router.add_get("/health", health)
    application.router.add_get("/_bench/stats", receiver.stats)
    application.router.add_route("*", "/{tail:.*}", receiver.notification)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
