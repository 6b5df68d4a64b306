"""The second query reference, run in its own process: `python -m bench.queryref --port P --store DIR`.

A minimal aiohttp handler over its own on-disk pyoxigraph Store (the benchmark bulk-loads the data into DIR
first): GET /query?query=… runs `store.query(…)` on the event loop and answers its SPARQL JSON serialization —
what any Python server over the same engine cannot do without, against which our query path (negotiation,
checks, a store thread, streaming) is measured.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import pyoxigraph as ox
from aiohttp import web

STORE = web.AppKey("store", ox.Store)
JSON = "application/sparql-results+json"


async def query(request: web.Request) -> web.Response:
    results = request.app[STORE].query(request.query["query"])
    if not isinstance(results, ox.QuerySolutions):
        raise web.HTTPBadRequest(text="only SELECT is answered here")
    return web.Response(body=results.serialize(format=ox.QueryResultsFormat.JSON), content_type=JSON)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def app(store_dir: str) -> web.Application:
    application = web.Application()

    async def store(app: web.Application) -> AsyncIterator[None]:
        app[STORE] = ox.Store(store_dir)
        yield

    application.cleanup_ctx.append(store)
    application.router.add_get("/health", health)
    application.router.add_get("/query", query)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True, help="an on-disk pyoxigraph store holding the data")
    args = parser.parse_args()
    web.run_app(app(args.store), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
