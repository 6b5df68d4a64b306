"""The request record and the task's state, kept in Redis beside arq's job.

One hash per task, `{prefix}:task:{id}`: the record (the terms of the original request as headers, SPEC §3),
the operation, and the state (status, times, progress, outcome, error). Delivery attempts are a list beside it,
the heartbeat a key with a time to live, and sorted sets index tasks by account and by status "running".

The record holds credentials (Authorization, Asynchronous-Authorization) because the notification needs them:
sealed (tasks/credentials.py), the caller's own Authorization only when it may be forwarded, and both removed
once the notification is over; `RequestRecord.public` (tasks/request.py) is the only view of them shown.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from graphstore_async.egress import exempt_origin
from graphstore_async.errors import WorkerCrashed
from graphstore_async.operations import Operation
from graphstore_async.settings import Settings
from graphstore_async.tasks.credentials import Sealer, may_forward
from graphstore_async.tasks.request import CREDENTIAL_HEADERS, MASK, RequestRecord
from graphstore_async.taskstatus import TaskStatus

TOMBSTONE_S = 30 * 24 * 3600  # how long after its retention an expired task still answers 410, not 404

# KEYS: task, running index, heartbeat. ARGV: task id, now, score, heartbeat ttl ms.
_START = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'started', ARGV[2])
redis.call('HDEL', KEYS[1], 'committing')
redis.call('HINCRBY', KEYS[1], 'tries', 1)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return 1
"""
# KEYS: task.
_COMMIT = """
if redis.call('HEXISTS', KEYS[1], 'cancel') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'committing', '1')
return 1
"""
# KEYS: task, running index, heartbeat, tombstone. ARGV: task id, max crashes, now, error json, retention s,
# tombstone ttl s. Checked and done at once: a task that finished, or whose worker beat again, since the reaper
# looked is left alone (0); a task whose workers died `max crashes` times while running it fails (2) instead of
# going back to pending (1): a body that crashes the engine must not crash it for ever.
_LOST = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('HINCRBY', KEYS[1], 'crashes', 1) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'ended', ARGV[3], 'error', ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('SET', KEYS[4], redis.call('HGET', KEYS[1], 'account'), 'EX', ARGV[6])
  return 2
end
redis.call('HSET', KEYS[1], 'status', 'pending')
return 1
"""
# KEYS: task, tombstone. ARGV: tombstone ttl s. The tombstone names the task's account (for its 410).
_TOMBSTONE = """
redis.call('SET', KEYS[2], redis.call('HGET', KEYS[1], 'account') or '', 'EX', ARGV[1])
"""
# KEYS: task, tombstone. ARGV: now, retention s, tombstone ttl s.
_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'ended', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[2], redis.call('HGET', KEYS[1], 'account'), 'EX', ARGV[3])
  return 'cancelled'
end
if status == 'running' then
  if redis.call('HEXISTS', KEYS[1], 'committing') == 1 then return 'committing' end
  redis.call('HSET', KEYS[1], 'cancel', ARGV[1])
  return 'interrupting'
end
return 'finished'
"""


class Lost(IntEnum):
    """What the reaper did with a running task whose heartbeat lapsed."""

    NOTHING = 0  # it had finished, or beat again, meanwhile
    REQUEUED = 1
    FAILED = 2  # its workers died too often running it


Staging = Callable[[Pipeline], None]  # adds commands to a transaction of ours (the queue's job keys)


def new_task_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Task:
    id: str
    status: TaskStatus
    account: str
    repository: str
    operation: Operation
    record: RequestRecord
    base_url: str
    created: str
    started: str | None = None
    ended: str | None = None
    statements: int = 0
    outcome: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    tries: int = 0
    delivery: str | None = None  # "delivered" or "failed" once the notification's attempts are over
    callback: str | None = None  # the same, for a Prefer: callback
    delivery_error: str | None = None  # why the notification failed
    callback_error: str | None = None
    deliveries_staged: bool = False  # the first attempts' jobs were written with the task's end


class Tasks:
    """Task state in Redis."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._prefix = settings.redis_prefix
        self._heartbeat_s = settings.heartbeat_s
        self.retention_s = max(1, int(settings.task_retention_s))
        self._max_crashes = max(1, settings.task_max_crashes)
        self._sealer = Sealer.from_settings(settings)
        self._forward_auth_to = settings.notify_forward_auth_to
        self._settings = settings
        self._start = redis.register_script(_START)
        self._commit = redis.register_script(_COMMIT)
        self._lost = redis.register_script(_LOST)
        self._cancel = redis.register_script(_CANCEL)

    def key(self, task_id: str) -> str:
        return f"{self._prefix}:task:{task_id}"

    def _deliveries(self, task_id: str) -> str:
        return f"{self._prefix}:task:{task_id}:deliveries"

    def _heartbeat(self, task_id: str) -> str:
        return f"{self._prefix}:task:{task_id}:heartbeat"

    @property
    def running_index(self) -> str:
        return f"{self._prefix}:running"

    def account_index(self, account: str) -> str:
        return f"{self._prefix}:tasks:{account}"

    @property
    def all_index(self) -> str:
        return f"{self._prefix}:tasks"

    def _tombstone(self, task_id: str) -> str:
        return f"{self._prefix}:gone:{task_id}"

    def sealed(self, headers: Mapping[str, str], own_origin: str | None) -> dict[str, str]:
        """Captured headers as they are stored: Asynchronous-Authorization sealed; the caller's Authorization
        sealed when the notification may carry it (see credentials.may_forward), else not kept at all."""
        kept = dict(headers)
        location = kept.get("Asynchronous-Location")
        forward = bool(location) and may_forward(location or "", own_origin, self._forward_auth_to)
        for name in CREDENTIAL_HEADERS & kept.keys():
            kept[name] = self._sealer.seal(kept[name]) if name != "Authorization" or forward else MASK
        return kept

    def notification_authorization(self, task: Task) -> str | None:
        """What the notification sends as Authorization: Asynchronous-Authorization, or else the caller's own —
        checked again here, not only at acceptance — when the location may have it."""
        record = task.record
        asked = self._sealer.unseal(record.header("Asynchronous-Authorization"))
        location = record.header("Asynchronous-Location")
        own = exempt_origin(self._settings, task.base_url)
        if asked is None and location and may_forward(location, own, self._forward_auth_to):
            return self._sealer.unseal(record.header("Authorization"))
        return asked

    async def forget_credentials(self, task: Task) -> None:
        """Once the notification is over, the task keeps no credentials."""
        if task.record.holds_credentials:
            await self._redis.hset(self.key(task.id), "record",  # type: ignore[misc]
                                   task.record.without_credentials().to_json())

    @staticmethod
    def new_fields(task_id: str, account: str, operation: Operation, record: RequestRecord,
                   base_url: str) -> dict[str, str]:
        """The hash of a task just accepted (written by the queue together with its job)."""
        return {
            "id": task_id, "status": TaskStatus.PENDING.value, "account": account, "repository": operation.repository,
            "operation": json.dumps(operation.to_json()), "record": record.to_json(), "base_url": base_url,
            "created": now_iso(), "statements": "0", "tries": "0",
        }

    async def get(self, task_id: str) -> Task | None:
        raw: dict[bytes, bytes] = await self._redis.hgetall(self.key(task_id))  # type: ignore[misc]
        return _task_from(raw)

    async def start(self, task_id: str, started: str) -> bool:
        """Mark running (again, after a lost worker) and start the heartbeat; False if the task was cancelled
        (or finished) meanwhile, and must not run."""
        started = await self._start(keys=[self.key(task_id), self.running_index, self._heartbeat(task_id)],
                                    args=[task_id, started, time.time(), int(self._heartbeat_s * 5 * 1000)])
        return bool(started)

    async def beat(self, task_id: str, statements: int | None = None) -> bool:
        """Keep the heartbeat; True when a cancellation has been asked for."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._heartbeat(task_id), "1", px=int(self._heartbeat_s * 5 * 1000))
            if statements is not None:
                pipe.hset(self.key(task_id), "statements", str(statements))
            pipe.hget(self.key(task_id), "cancel")
            results = await pipe.execute()
        return results[-1] is not None

    async def commit_point(self, task_id: str) -> bool:
        """The task is about to change the store: from now on it can no longer be cancelled. False if a
        cancellation came first (the task must stop without writing)."""
        return bool(await self._commit(keys=[self.key(task_id)]))

    async def cancel(self, task_id: str) -> str:
        """Ask for a task's cancellation: "cancelled" (it was pending and will never run), "interrupting" (it
        is running and will stop), "committing" (it is writing and can no longer stop), or "finished"."""
        result: bytes = await self._cancel(keys=[self.key(task_id), self._tombstone(task_id)],
                                           args=[now_iso(), self.retention_s, self.retention_s + TOMBSTONE_S])
        return result.decode()

    async def tombstone(self, task_id: str) -> str | None:
        """The account of a task whose record has expired (for 410), or None if the id was never issued."""
        raw: bytes | None = await self._redis.get(self._tombstone(task_id))
        return None if raw is None else raw.decode()

    async def count_read(self, task_id: str) -> int:
        return int(await self._redis.hincrby(self.key(task_id), "reads", 1))  # type: ignore[misc]

    async def listing(self, account: str | None, limit: int) -> list[Task]:
        """Newest first: an account's tasks, or (None) everybody's."""
        index = self.all_index if account is None else self.account_index(account)
        ids = [raw.decode() for raw in await self._redis.zrevrange(index, 0, limit - 1)]
        async with self._redis.pipeline(transaction=False) as pipe:  # one round trip, not one per task
            for task_id in ids:
                pipe.hgetall(self.key(task_id))
            found = [_task_from(raw) for raw in await pipe.execute()]
        return [task for task in found if task is not None]

    async def finish(self, task_id: str, status: TaskStatus, ended: str, *, outcome: dict[str, Any] | None = None,
                     error: dict[str, Any] | None = None, also: Staging | None = None) -> None:
        """The task's end, written at once with `also` (its deliveries' first jobs): a task never ends without
        the jobs that will notify it."""
        fields = {"status": status.value, "ended": ended}
        if also is not None:
            fields["staged"] = "1"
        if outcome is not None:
            fields["outcome"] = json.dumps(outcome)
            if outcome.get("statements_added") is not None:
                fields["statements"] = str(outcome["statements_added"])
        if error is not None:
            fields["error"] = json.dumps(error)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(task_id), mapping=fields)
            pipe.hdel(self.key(task_id), "cancel")
            pipe.zrem(self.running_index, task_id)
            pipe.delete(self._heartbeat(task_id))
            pipe.expire(self.key(task_id), self.retention_s)
            pipe.expire(self._deliveries(task_id), self.retention_s)
            if also is not None:
                also(pipe)
            pipe.eval(_TOMBSTONE, 2, self.key(task_id), self._tombstone(task_id), str(self.retention_s + TOMBSTONE_S))
            await pipe.execute()

    async def add_delivery(self, task_id: str, attempt: Mapping[str, Any], *, kind: str = "notification") -> float:
        """Record one delivery attempt; when the first attempt of this kind of delivery was made (epoch s)."""
        first = f"{kind}_first_at"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(self._deliveries(task_id), json.dumps(dict(attempt)))
            pipe.expire(self._deliveries(task_id), self.retention_s + 3600)
            pipe.hsetnx(self.key(task_id), first, str(time.time()))
            pipe.hget(self.key(task_id), first)
            found = (await pipe.execute())[-1]
        return float(found) if found else time.time()

    async def end_delivery(self, task_id: str, kind: str, *, delivered: bool, reason: str | None) -> Task:
        """A notification's or callback's delivery is over: delivered, or failed (and why). The task as it is
        now."""
        field_name = "delivery" if kind == "notification" else "callback"
        fields = {field_name: "delivered" if delivered else "failed"}
        if reason:
            fields[f"{field_name}_error"] = reason
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(task_id), mapping=fields)
            pipe.hgetall(self.key(task_id))
            raw = (await pipe.execute())[-1]
        task = _task_from(raw)
        if task is None:
            raise KeyError(task_id)
        return task

    async def deliveries(self, task_id: str) -> list[dict[str, Any]]:
        items: list[bytes] = await self._redis.lrange(self._deliveries(task_id), 0, -1)  # type: ignore[misc]
        return [json.loads(item) for item in items]

    async def back_to_pending(self, task_id: str) -> Lost:
        """A running task whose worker is gone goes back to pending, so that its job can be taken up again —
        or fails, once its workers have died `task_max_crashes` times running it; NOTHING (and nothing
        changed) if it has finished or its heartbeat came back meanwhile."""
        keys = [self.key(task_id), self.running_index, self._heartbeat(task_id), self._tombstone(task_id)]
        error = WorkerCrashed(f"the task's worker died {self._max_crashes} times while running it; it is not run "
                              "again", crashes=self._max_crashes).problem()
        result = await self._lost(keys=keys, args=[task_id, self._max_crashes, now_iso(), json.dumps(error),
                                                   self.retention_s, self.retention_s + TOMBSTONE_S])
        return Lost(int(result))

    async def unstarted(self, task_id: str) -> bool:
        """Whether the task exists and is not running (pending, or ended): its job holds no live work."""
        status: bytes | None = await self._redis.hget(self.key(task_id), "status")  # type: ignore[misc]
        return status is not None and status != b"running"

    async def set_field(self, task_id: str, name: str, value: str) -> None:
        await self._redis.hset(self.key(task_id), name, value)  # type: ignore[misc]

    async def stale_running(self) -> list[str]:
        """Running tasks whose heartbeat has lapsed: their worker is gone."""
        ids = [raw.decode() for raw in await self._redis.zrange(self.running_index, 0, -1)]
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.exists(self._heartbeat(task_id))
            alive = await pipe.execute()
        return [task_id for task_id, beating in zip(ids, alive, strict=True) if not beating]


def _task_from(raw: dict[bytes, bytes]) -> Task | None:
    """A task from its hash (None for a hash that has expired)."""
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    return Task(
        id=data["id"], status=TaskStatus(data["status"]), account=data["account"], repository=data["repository"],
        operation=Operation.from_json(json.loads(data["operation"])),
        record=RequestRecord.from_json(data["record"]), base_url=data["base_url"], created=data["created"],
        started=data.get("started"), ended=data.get("ended"), statements=int(data.get("statements", 0)),
        outcome=json.loads(data["outcome"]) if "outcome" in data else None,
        error=json.loads(data["error"]) if "error" in data else None, tries=int(data.get("tries", 0)),
        delivery=data.get("delivery"), callback=data.get("callback"), delivery_error=data.get("delivery_error"),
        callback_error=data.get("callback_error"), deliveries_staged="staged" in data,
    )
