"""The job queue: the only module that imports arq, so that it could be replaced.

Jobs are JSON (never pickles) and carry only a task id; everything else is in the task record. A submission
writes the record and the arq job in one Lua script — one round trip, and atomic with the check of the queue's
bound, so a full queue refuses a task without leaving half of it behind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.jobs import serialize_job
from arq.worker import Worker, func
from redis.asyncio import Redis

from graphstore_async.settings import Settings

JOB_FUNCTION = "run_task"
JobFunction = Callable[[dict[Any, Any], str], Awaitable[None]]

_SUBMIT = """
-- KEYS: queue, job, record, index... ARGV: limit, job id, payload, job ttl ms, score, record ttl s, field, value, ...
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('HSET', KEYS[3], unpack(ARGV, 7))
redis.call('EXPIRE', KEYS[3], ARGV[6])
for i = 4, #KEYS do redis.call('ZADD', KEYS[i], ARGV[5], ARGV[2]) end
redis.call('PSETEX', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[2])
return 1
"""


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)


class QueueFullError(Exception):
    pass


class Queue:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self.name = f"{settings.redis_prefix}:queue"
        self._limit = settings.queue_limit
        self._job_ttl_ms = int((settings.task_retention_s + settings.job_timeout_s) * 1000)
        self._submit = redis.register_script(_SUBMIT)

    async def submit(self, task_id: str, record_key: str, record: Mapping[str, str], record_ttl_s: int,
                     indexes: Sequence[str] = ()) -> None:
        """Write the task record (and add the task to sorted-set indexes, scored by time) and enqueue its job,
        at once. QueueFullError past the bound."""
        now_ms = int(time.time() * 1000)
        payload = serialize_job(JOB_FUNCTION, (task_id,), {}, None, now_ms, serializer=dumps)
        flat = [item for pair in record.items() for item in pair]
        keys = [self.name, job_key_prefix + task_id, record_key, *indexes]
        done = await self._submit(keys=keys, args=[self._limit, task_id, payload, self._job_ttl_ms, now_ms,
                                                   record_ttl_s, *flat])
        if done == 0:
            raise QueueFullError()
        if done == -1:
            raise ValueError(f"job {task_id} exists already")

    async def position(self, task_id: str) -> int | None:
        """0-based position of a waiting task, None when it is not waiting."""
        rank = await self._redis.zrank(self.name, task_id)
        return None if rank is None else int(rank)

    async def release(self, task_id: str) -> None:
        """Let any worker take the job up again now (its worker is gone: the in-progress mark is stale)."""
        await self._redis.delete(in_progress_key_prefix + task_id)


def create_worker(settings: Settings, run_task: JobFunction, ctx: dict[str, Any], redis_url: str) -> Worker:
    return Worker(
        functions=[func(cast(Any, run_task), name=JOB_FUNCTION, max_tries=1000, timeout=settings.job_timeout_s)],
        queue_name=f"{settings.redis_prefix}:queue",
        redis_settings=RedisSettings.from_dsn(redis_url),
        ctx=ctx,
        handle_signals=False,
        max_jobs=settings.worker_jobs,
        job_timeout=settings.job_timeout_s,
        keep_result=0,
        poll_delay=settings.poll_delay_s,
        job_serializer=dumps,
        job_deserializer=loads,
        health_check_interval=60,
        log_results=False,
    )


async def stop_worker(worker: Worker, grace_s: float) -> None:
    """Stop taking jobs; let running ones finish for `grace_s`; the rest are cancelled, which arq requeues."""
    worker.allow_pick_jobs = False
    running = [t for t in worker.tasks.values() if not t.done()]
    if running:
        await asyncio.wait(running, timeout=grace_s)
    await worker.close()

