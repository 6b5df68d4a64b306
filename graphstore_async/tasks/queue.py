"""The job queue: the only module that imports arq, so that it could be replaced.

Jobs are JSON (never pickles) and carry only a task id (a delivery job: the task id, the delivery and the
attempt's number); everything else is in the task record. Jobs are written by the scripts that change a task's
state (tasks/submission.py, tasks/records.py), so a job and the state that needs it are written at once: this
module makes them (`task_job`, `delivery_job`) and runs arq's workers over them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.jobs import serialize_job
from arq.worker import Retry, Worker, func
from redis.asyncio import Redis
from redis.exceptions import RedisError

from graphstore_async.settings import Settings
from graphstore_async.tasks.keys import Keys, Lifetimes, delivery_timeout_s

JOB_FUNCTION = "run_task"
DELIVERY_FUNCTION = "deliver"
JobFunction = Callable[[dict[Any, Any], str], Awaitable[None]]
DeliveryFunction = Callable[[dict[Any, Any], str, str, int], Awaitable[None]]

# KEYS: in-progress mark. ARGV: the mark's full time to live (ms), the age (ms) below which it is a live pick.
_RELEASE = """
local left = redis.call('PTTL', KEYS[1])
if left > 0 and tonumber(ARGV[1]) - left > tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)


@dataclass(frozen=True)
class Job:
    """An arq job as it is written beside a change of state: its key, id, payload and due time (ms)."""

    key: str
    id: str
    payload: bytes
    due_ms: int


class Queue:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        keys = Keys(settings.redis_prefix)
        self.name = keys.queue
        self.deliveries = keys.delivery_queue
        self.claims = keys.claims
        lifetimes = Lifetimes.from_settings(settings)
        self._in_progress_ms = lifetimes.task_in_progress_ms
        self._delivery_in_progress_ms = lifetimes.delivery_in_progress_ms
        self._job_ttl_ms = lifetimes.job_ms
        self._release = redis.register_script(_RELEASE)
        self._fresh_ms = int(settings.heartbeat_s * 1000)

    @staticmethod
    def task_job(task_id: str) -> Job:
        """The job that runs a task, due now."""
        now_ms = int(time.time() * 1000)
        payload = serialize_job(JOB_FUNCTION, (task_id,), {}, None, now_ms, serializer=dumps)
        return Job(job_key_prefix + task_id, task_id, payload, now_ms)

    @staticmethod
    def delivery_job(task_id: str, kind: str, number: int, at_s: float) -> Job:
        """The job of one delivery attempt — `kind` notification or callback, attempt `number` — due at `at_s`."""
        job_id = delivery_job_id(task_id, kind, number)
        due_ms = int(at_s * 1000)
        payload = serialize_job(DELIVERY_FUNCTION, (task_id, kind, number), {}, None, due_ms, serializer=dumps)
        return Job(job_key_prefix + job_id, job_id, payload, due_ms)

    async def schedule(self, jobs: Sequence[Job]) -> None:
        """Write delivery jobs; one already there is left as it is (so writing it twice schedules it once)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for job in jobs:
                pipe.set(job.key, job.payload, px=self._job_ttl_ms, nx=True)
                pipe.zadd(self.deliveries, {job.id: job.due_ms}, nx=True)
            await pipe.execute()

    async def release(self, task_id: str) -> None:
        """Let any worker take the job up again now: its worker is gone, so its in-progress mark is stale. Only a
        mark older than `_fresh_ms` is removed — a younger one is a live worker's, which picked the job up again
        (it was due) while the reaper looked: removing that would run the job twice at once."""
        await self._release(keys=[in_progress_key_prefix + task_id], args=[self._in_progress_ms, self._fresh_ms])

    async def stale_claims(self, lapse_s: float, limit: int = 200) -> list[str]:
        """Jobs at the head of the task queue marked in progress for longer than `lapse_s` — by arq, before our
        job function could mark its task running. A live worker marks the task running within milliseconds,
        so such a mark is a dead worker's (kill -9 between arq's pick and our start)."""
        ids = [raw.decode() for raw in await self._redis.zrange(self.name, 0, limit - 1)]
        return await self._marked_longer_than(ids, self._in_progress_ms, lapse_s)

    async def _marked_longer_than(self, ids: list[str], held_ms: int, lapse_s: float) -> list[str]:
        """Of these jobs, those whose in-progress mark (set for `held_ms`) was set more than `lapse_s` ago."""
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.pttl(in_progress_key_prefix + job_id)
            remaining = await pipe.execute()
        return [job_id for job_id, left in zip(ids, remaining, strict=True)
                if left is not None and left > 0 and held_ms - left > lapse_s * 1000]

    async def claim(self, job_id: str, worker_id: str) -> None:
        """A delivery attempt is about to be sent by `worker_id` (so that, if that worker dies, the reaper can
        tell its in-progress mark is stale: an attempt may take notify_timeout_s, so age alone cannot)."""
        await self._redis.hset(self.claims, job_id, worker_id)  # type: ignore[misc]

    async def stale_deliveries(self, alive: set[str], lapse_s: float, limit: int = 200) -> list[str]:
        """Delivery jobs marked in progress by a dead worker: claimed by a worker no longer alive, or picked
        (arq's mark, older than `lapse_s`) and never claimed."""
        raw: dict[bytes, bytes] = await self._redis.hgetall(self.claims)  # type: ignore[misc]
        claimed = {job.decode(): worker.decode() for job, worker in raw.items()}
        stale = [job for job, worker in claimed.items() if worker not in alive]
        head = [job.decode() for job in await self._redis.zrange(self.deliveries, 0, limit - 1)]
        unclaimed = [job for job in head if job not in claimed]
        return stale + await self._marked_longer_than(unclaimed, self._delivery_in_progress_ms, lapse_s)

    async def release_delivery(self, job_id: str) -> None:
        await self._release(keys=[in_progress_key_prefix + job_id],
                            args=[self._delivery_in_progress_ms, self._fresh_ms])
        await self._redis.hdel(self.claims, job_id)  # type: ignore[misc]


def delivery_job_id(task_id: str, kind: str, number: int) -> str:
    return f"{task_id}:{kind}:{number}"


def later(seconds: float) -> NoReturn:
    """From a job function: run this job again in `seconds` (arq's Retry; the job keeps its id)."""
    raise Retry(defer=seconds)


def create_delivery_worker(settings: Settings, deliver: DeliveryFunction, ctx: dict[str, Any],
                           redis_url: str) -> Worker:
    """The worker of the deliveries queue: short jobs, one attempt each, apart from execution's slots."""
    return _worker(settings, deliver, DELIVERY_FUNCTION, "deliveries", ctx, redis_url, max_jobs=settings.delivery_jobs,
                   max_tries=1_000_000, timeout_s=delivery_timeout_s(settings))


def create_worker(settings: Settings, run_task: JobFunction, ctx: dict[str, Any], redis_url: str) -> Worker:
    """The worker of the task queue: one job per task execution."""
    return _worker(settings, run_task, JOB_FUNCTION, "queue", ctx, redis_url, max_jobs=settings.worker_jobs,
                   max_tries=1000, timeout_s=settings.job_timeout_s)


def _worker(settings: Settings, function: Callable[..., Awaitable[None]], name: str, queue: str,
            ctx: dict[str, Any], redis_url: str, *, max_jobs: int, max_tries: int, timeout_s: float) -> Worker:
    return Worker(
        functions=[func(cast(Any, function), name=name, max_tries=max_tries, timeout=timeout_s)],
        queue_name=f"{settings.redis_prefix}:{queue}",
        redis_settings=RedisSettings.from_dsn(redis_url),
        ctx=ctx,
        handle_signals=False,
        max_jobs=max_jobs,
        job_timeout=timeout_s,
        keep_result=0,
        poll_delay=settings.poll_delay_s,
        job_serializer=dumps,
        job_deserializer=loads,
        health_check_interval=60,
        log_results=False,
    )


async def stop_worker(worker: Worker, grace_s: float) -> None:
    """Stop taking jobs; let running ones finish for `grace_s`; the rest are cancelled, which arq requeues; then
    close the worker's Redis pool — whatever the jobs ended with. (arq's own Worker.close gathers its jobs
    without return_exceptions, so a cancelled job's CancelledError escaped from it and left the pool open.)"""
    worker.allow_pick_jobs = False
    running = [t for t in worker.tasks.values() if not t.done()]
    if running:
        await asyncio.wait(running, timeout=grace_s)
    for task in worker.tasks.values():
        task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    if worker.main_task is not None:
        worker.main_task.cancel()
        await asyncio.gather(worker.main_task, return_exceptions=True)
    if worker._pool is not None:  # arq keeps the pool it made to itself
        pool, worker._pool = worker._pool, None
        with contextlib.suppress(RedisError, OSError):
            await pool.close(close_connection_pool=True)

