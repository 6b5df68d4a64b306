"""The notifications reference, run in its own process: `python -m bench.arqref --redis-url U --queue Q ...`.

A bare arq worker with the settings of our deliveries worker (max_jobs, poll_delay, job timeout, max_tries; no
result kept; jobs as JSON, never pickles) whose one job function POSTs a fixed 1 KB body to the URL it is given,
with one aiohttp ClientSession for the process: the least a queued notification can cost on arq, against which
our task + notification is measured. The benchmark enqueues the jobs (`enqueue`) and knows the worker is ready
when arq has recorded its health check (`Q:health-check`). SIGTERM stops it (arq's own handler).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import aiohttp
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker, func

FUNCTION = "post"
SESSION = "http"
BODY = b"# a notification of 1 KB\n".ljust(1023, b"x") + b"\n"


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)


async def post(ctx: dict[str, Any], url: str) -> None:
    session: aiohttp.ClientSession = ctx[SESSION]
    async with session.post(url, data=BODY, headers={"Content-Type": "text/turtle"}) as response:
        await response.read()
        if response.status >= 300:
            raise RuntimeError(f"POST {url}: {response.status}")  # arq tries again, as our delivery would


async def enqueue(pool: ArqRedis, queue: str, url: str, count: int, concurrency: int) -> None:
    """`count` jobs posting to `url`, enqueued by `concurrency` producers at once (as many as our submissions'
    concurrency)."""
    numbers = iter(range(count))

    async def producer() -> None:
        for _ in numbers:  # one shared iterator: `count` jobs in all
            await pool.enqueue_job(FUNCTION, url, _queue_name=queue)

    await asyncio.gather(*(producer() for _ in range(concurrency)))


async def _startup(ctx: dict[str, Any]) -> None:
    ctx[SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=float(ctx["timeout_s"])))


async def _shutdown(ctx: dict[str, Any]) -> None:
    await ctx[SESSION].close()


def worker(args: argparse.Namespace) -> Worker:
    return Worker(
        functions=[func(post, name=FUNCTION, max_tries=args.max_tries, timeout=args.job_timeout_s)],
        queue_name=args.queue,
        redis_settings=RedisSettings.from_dsn(args.redis_url),
        ctx={"timeout_s": args.request_timeout_s},
        on_startup=_startup,
        on_shutdown=_shutdown,
        max_jobs=args.max_jobs,
        job_timeout=args.job_timeout_s,
        keep_result=0,
        poll_delay=args.poll_delay_s,
        job_serializer=dumps,
        job_deserializer=loads,
        health_check_interval=60,
        log_results=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--max-jobs", type=int, default=32)
    parser.add_argument("--poll-delay-s", type=float, default=0.02)
    parser.add_argument("--job-timeout-s", type=float, default=60.0)
    parser.add_argument("--max-tries", type=int, default=1_000_000)
    parser.add_argument("--request-timeout-s", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.set_event_loop(asyncio.new_event_loop())  # arq's Worker takes the current loop
    worker(args).run()


if __name__ == "__main__":
    main()
