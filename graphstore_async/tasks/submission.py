"""Submitting a task: claim its Request-ID (idempotency), write its record, queue its job — one call, one Lua
script, so all of it happens or none of it does.

The task's spooled bodies are its submitter's to remove up to the moment the task is durable, and never after:
a failure before the script ran (a full queue, a conflict, Redis away) removes them; once the record and the job
are written, the bodies belong to the task, whatever happens to the request that submitted it (a `Prefer:
wait=N` that fails while waiting leaves a queued task that will find its bodies). When Redis fails while the
script's answer is on its way, whether the task was written is asked again; if that cannot be known, the bodies
are left for the spool's sweep rather than taken from a task that may exist.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from graphstore_async.auth import Principal
from graphstore_async.errors import Conflict, QueueFull
from graphstore_async.settings import Settings
from graphstore_async.tasks.idempotency import scope
from graphstore_async.tasks.keys import Keys, Lifetimes
from graphstore_async.tasks.queue import Queue
from graphstore_async.tasks.records import NewTask, new_fields
from graphstore_async.tasks.spool import Spool

log = logging.getLogger(__name__)

# KEYS: queue, job, task, idempotency key (the task's own key again when there is none), index, ...
# ARGV: queue bound, task id, job payload, job ttl ms, score, record ttl s, idempotency value, its ttl s,
#       field, value, ...
_SUBMIT = """
local keyed = KEYS[4] ~= KEYS[3]
if keyed then
  local held = redis.call('GET', KEYS[4])
  if held then return {'held', held} end
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return {'full'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[3], unpack(ARGV, 9))
redis.call('EXPIRE', KEYS[3], ARGV[6])
for i = 5, #KEYS do redis.call('ZADD', KEYS[i], ARGV[5], ARGV[2]) end
redis.call('PSETEX', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[2])
if keyed then redis.call('SET', KEYS[4], ARGV[7], 'EX', ARGV[8]) end
return {'queued'}
"""


@dataclass(frozen=True)
class RequestKey:
    """A client's Request-ID, as an idempotency key: whose, and the fingerprint of the request it was sent with."""

    principal: Principal
    request_id: str
    fingerprint: str


class Submission:
    def __init__(self, redis: Redis, settings: Settings, queue: Queue, spool: Spool) -> None:
        self._redis = redis
        self._keys = Keys(settings.redis_prefix)
        self._lifetimes = Lifetimes.from_settings(settings)
        self._limit = settings.queue_limit
        self._queue = queue
        self._spool = spool
        self._script = redis.register_script(_SUBMIT)

    async def submit(self, task: NewTask, key: RequestKey | None) -> str:
        """Queue `task`; the id of the task that carries the request: this one's — or, for the same request again
        under the same Request-ID, the task it has already (nothing new is queued). QueueFull past the queue's
        bound, Conflict when the Request-ID was used for another request."""
        try:
            answer = await self._run(task, key)
        except (RedisError, OSError):
            if not await self._written(task.id):
                raise
            return task.id  # the task was written; only its answer was lost
        except BaseException:
            self._spool.remove(task.id)
            raise
        if answer[0] == b"queued":
            return task.id
        self._spool.remove(task.id)
        if answer[0] == b"full":
            raise QueueFull("the task queue is full; try again later")
        if answer[0] == b"exists":
            raise ValueError(f"task {task.id} exists already")
        held = json.loads(answer[1])
        assert key is not None
        if held["fingerprint"] != key.fingerprint:
            raise Conflict(f"Request-ID {key.request_id!r} was used for a different request (task {held['task']})",
                           task=held["task"])
        return str(held["task"])

    async def _run(self, task: NewTask, key: RequestKey | None) -> list[bytes]:
        keys = self._keys
        job = self._queue.task_job(task.id)
        record = keys.task(task.id)
        claim = record if key is None else keys.idempotency(scope(key.principal, key.fingerprint), key.request_id)
        indexes = [keys.account_index(task.account), keys.all_tasks]
        fields = [item for pair in new_fields(task).items() for item in pair]
        held = json.dumps({"task": task.id, "fingerprint": key.fingerprint if key else ""})
        lifetimes = self._lifetimes
        answer: list[bytes] = await self._script(
            keys=[keys.queue, job.key, record, claim, *indexes],
            args=[self._limit, task.id, job.payload, lifetimes.job_ms, job.due_ms, lifetimes.record_s, held,
                  lifetimes.record_s, *fields])
        return answer

    async def _written(self, task_id: str) -> bool:
        """After a fault during the script: whether the task was written. When that cannot be known either, its
        bodies stay (the spool's sweep removes them once they are past retention) and the fault is raised."""
        try:
            written = bool(await self._redis.exists(self._keys.task(task_id)))
        except (RedisError, OSError):
            log.warning("task %s: Redis failed while it was submitted; its spool is left for the sweep", task_id)
            return False
        if not written:
            self._spool.remove(task_id)
        return written
