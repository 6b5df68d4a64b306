"""The task store: each task's record, operation, terms and state in Redis beside arq's job (keys: tasks/keys.py).

One hash per task: the request record (the terms of the original request as headers, SPEC §3, for display),
the operation, the typed asynchronous terms (tasks/terms.py), and the state — status, times, progress, the
result (tasks/result.py), the deliveries' states. Delivery attempts are a list beside it, the heartbeat a key
with a time to live, and sorted sets index tasks by account and by status "running". Each change of state is
one round trip (a Lua script where it must be checked and done at once).

The credential the notification will send is kept sealed in the terms (tasks/credentials.py), only when the
notification may carry it, and removed once the deliveries are over; the record never holds a credential,
only the fact that one was given.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from redis.asyncio import Redis

from graphstore_async.egress import exempt_origin
from graphstore_async.errors import Cancelled, WorkerCrashed
from graphstore_async.operations import Operation
from graphstore_async.settings import Settings
from graphstore_async.tasks import scripts
from graphstore_async.tasks.credentials import Sealer, may_forward
from graphstore_async.tasks.keys import Keys, Lifetimes
from graphstore_async.tasks.queue import Job
from graphstore_async.tasks.request import RequestRecord
from graphstore_async.tasks.result import Result
from graphstore_async.tasks.terms import Terms
from graphstore_async.taskstatus import TaskStatus


class Lost(IntEnum):
    """What the reaper did with a running task whose heartbeat lapsed."""

    NOTHING = 0  # it had finished, or beat again, meanwhile
    REQUEUED = 1
    FAILED = 2  # its workers died too often running it


def new_task_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NewTask:
    """A task as acceptance makes it."""

    id: str
    account: str
    operation: Operation
    terms: Terms
    record: RequestRecord
    base_url: str


@dataclass(frozen=True)
class Task:
    id: str
    status: TaskStatus
    account: str
    repository: str
    operation: Operation
    terms: Terms
    record: RequestRecord
    base_url: str
    created: str
    started: str | None = None
    ended: str | None = None
    statements: int = 0  # progress: statements read so far
    result: Result | None = None  # once it has ended
    tries: int = 0
    delivery: str | None = None  # "delivered" or "failed" once the notification's attempts are over
    callback: str | None = None  # the same, for a Prefer: callback
    delivery_error: str | None = None  # why the notification failed
    callback_error: str | None = None
    deliveries_staged: bool = False  # the first attempts' jobs were written with the task's end
    first_attempts: Mapping[str, float] = field(default_factory=dict)  # by delivery: its first attempt (epoch s)

    @property
    def error(self) -> dict[str, Any] | None:
        return None if self.result is None else self.result.error

    def delivery_state(self, kind: str) -> str | None:
        return self.delivery if kind == "notification" else self.callback


@dataclass(frozen=True)
class View:
    """A task as its status document shows it: with its delivery attempts and, while it waits, its place."""

    task: Task
    attempts: list[dict[str, Any]]
    queue_position: int | None


def new_fields(task: NewTask) -> dict[str, str]:
    """The hash of a task just accepted (written with its job: tasks/submission.py)."""
    return {
        "id": task.id, "status": TaskStatus.PENDING.value, "account": task.account,
        "repository": task.operation.repository, "operation": json.dumps(task.operation.to_json()),
        "terms": json.dumps(task.terms.to_json()), "record": task.record.to_json(), "base_url": task.base_url,
        "created": now_iso(), "statements": "0", "tries": "0",
    }


class Tasks:
    """Task state in Redis."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self.keys = Keys(settings.redis_prefix)
        self.lifetimes = Lifetimes.from_settings(settings)
        self._max_crashes = max(1, settings.task_max_crashes)
        self.sealer = Sealer.from_settings(settings)
        self._forward_auth_to = settings.notify_forward_auth_to
        self._settings = settings
        self._start = redis.register_script(scripts.START)
        self._commit = redis.register_script(scripts.COMMIT)
        self._finish = redis.register_script(scripts.FINISH)
        self._lost = redis.register_script(scripts.LOST)
        self._cancel = redis.register_script(scripts.CANCEL)
        self._views = redis.register_script(scripts.VIEWS)
        self._attempted = redis.register_script(scripts.ATTEMPTED)

    def authorization(self, task: Task) -> str | None:
        """What the notification sends as Authorization, unsealed: Asynchronous-Authorization, or the caller's
        own — whose forwarding is checked again here, not only at acceptance."""
        notify = task.terms.notify
        if notify is None or notify.authorization is None:
            return None
        if notify.forwarded and not may_forward(notify.location, exempt_origin(self._settings, task.base_url),
                                                self._forward_auth_to):
            return None
        return self.sealer.unseal(notify.authorization)

    async def forget_credentials(self, task: Task) -> None:
        """Once the deliveries are over, the task keeps no credentials."""
        if task.terms.holds_credentials:
            await self._redis.hset(self.keys.task(task.id), "terms",  # type: ignore[misc]
                                   json.dumps(task.terms.without_credentials().to_json()))

    async def get(self, task_id: str) -> Task | None:
        raw: dict[bytes, bytes] = await self._redis.hgetall(self.keys.task(task_id))  # type: ignore[misc]
        return _task_from(raw)

    async def status_of(self, task_id: str) -> TaskStatus | None:
        raw: bytes | None = await self._redis.hget(self.keys.task(task_id), "status")  # type: ignore[misc]
        return None if raw is None else TaskStatus(raw.decode())

    async def start(self, task_id: str, started: str) -> tuple[bool, Task | None]:
        """Mark running (again, after a lost worker) and start the heartbeat, in one round trip: whether it
        started — not if it was cancelled (or finished) meanwhile, and must not run — and the task as it is now
        (None: it has expired)."""
        keys = self.keys
        begun, flat = await self._start(keys=[keys.task(task_id), keys.running, keys.heartbeat(task_id)],
                                        args=[task_id, started, time.time(), self.lifetimes.heartbeat_ms])
        return bool(begun), _task_from(dict(zip(flat[::2], flat[1::2], strict=True)))

    async def beat(self, task_id: str, statements: int | None = None) -> bool:
        """Keep the heartbeat; True when a cancellation has been asked for."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.heartbeat(task_id), "1", px=self.lifetimes.heartbeat_ms)
            if statements is not None:
                pipe.hset(self.keys.task(task_id), "statements", str(statements))
            pipe.hget(self.keys.task(task_id), "cancel")
            results = await pipe.execute()
        return results[-1] is not None

    async def commit_point(self, task_id: str) -> bool:
        """The task is about to change the store: from now on it can no longer be cancelled. False if a
        cancellation came first (the task must stop without writing)."""
        return bool(await self._commit(keys=[self.keys.task(task_id)]))

    async def cancel(self, task_id: str) -> str:
        """Ask for a task's cancellation: "cancelled" (it was pending and will never run), "interrupting" (it
        is running and will stop), "committing" (it is writing and can no longer stop), or "finished"."""
        result = json.dumps(Result.failed(Cancelled("the task was cancelled").problem()).to_json())
        answer: bytes = await self._cancel(
            keys=[self.keys.task(task_id), self.keys.tombstone(task_id)],
            args=[now_iso(), self.lifetimes.retention_s, self.lifetimes.tombstone_s, result])
        return answer.decode()

    async def tombstone(self, task_id: str) -> str | None:
        """The account of a task whose record has expired (for 410), or None if the id was never issued."""
        raw: bytes | None = await self._redis.get(self.keys.tombstone(task_id))
        return None if raw is None else raw.decode()

    async def count_read(self, task_id: str) -> int:
        return int(await self._redis.hincrby(self.keys.task(task_id), "reads", 1))  # type: ignore[misc]

    async def reads(self, task_id: str) -> int:
        """How often the result was read (a HEAD of the monitor counts none)."""
        return int(await self._redis.hget(self.keys.task(task_id), "reads") or 0)  # type: ignore[misc]

    async def listing(self, account: str | None, limit: int) -> list[View]:
        """Newest first: an account's tasks, or (None) everybody's — with their deliveries, in one round trip."""
        index = self.keys.all_tasks if account is None else self.keys.account_index(account)
        return await self._viewed(index, [str(limit), ""])

    async def view(self, task_id: str) -> View | None:
        """A task with its delivery attempts and queue position, in one round trip."""
        found = await self._viewed(self.keys.queue, ["", task_id])
        return found[0] if found else None

    async def _viewed(self, index: str, args: list[str]) -> list[View]:
        found: list[list[Any]] = await self._views(keys=[self.keys.queue, index], args=[self.keys.task(""), *args])
        views = []
        for flat, attempts, position in found:
            task = _task_from(dict(zip(flat[::2], flat[1::2], strict=True)))
            if task is not None:
                views.append(View(task, [json.loads(a) for a in attempts], None if position is None else int(position)))
        return views

    async def finish(self, task: Task, status: TaskStatus, result: Result, jobs: Sequence[Job] = ()) -> Task:
        """The task's end, written at once with its deliveries' first `jobs`; the task as it is now."""
        ended = now_iso()
        keys, lifetimes = self.keys, self.lifetimes
        statements = max(result.processed or 0, result.added or 0, task.statements)  # read at least what it added
        await self._finish(
            keys=[keys.task(task.id), keys.running, keys.heartbeat(task.id), keys.tombstone(task.id),
                  keys.delivery_queue, *(job.key for job in jobs)],
            args=[task.id, status.value, ended, json.dumps(result.to_json()), statements, lifetimes.retention_s,
                  lifetimes.tombstone_s, lifetimes.job_ms,
                  *(item for job in jobs for item in (job.id, job.payload, job.due_ms))])
        return replace(task, status=status, ended=ended, result=result, statements=statements,
                       deliveries_staged=True)

    async def attempted(self, task: Task, kind: str, attempt: Mapping[str, Any], at_s: float, own_job: Job,
                        next_job: Job | None, *, ended: str | None = None, reason: str | None = None) -> Task:
        """Record one delivery attempt of `kind`, with the delivery's end (`ended`: "delivered" or "failed", and
        why) or its `next_job`; the attempt's own job is removed. The task with its deliveries' states now."""
        keys, state = self.keys, ("delivery" if kind == "notification" else "callback")
        target = next_job or Job(keys.task(task.id), "", b"", 0)
        states: list[bytes | None] = await self._attempted(
            keys=[keys.task(task.id), keys.deliveries(task.id), keys.delivery_queue, own_job.key, target.key,
                  keys.claims],
            args=[json.dumps(dict(attempt)), self.lifetimes.deliveries_s, state, ended or "", f"{state}_error",
                  reason or "", own_job.id, target.id, target.payload, target.due_ms, self.lifetimes.job_ms,
                  f"{kind}_first_at", at_s])
        delivery, callback = (None if state is None else state.decode() for state in states)
        return replace(task, delivery=delivery, callback=callback)

    async def end_delivery(self, task: Task, kind: str, *, reason: str) -> Task:
        """A delivery that cannot even be made ends failed, with the reason; the task as it is now."""
        state = "delivery" if kind == "notification" else "callback"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.task(task.id), mapping={state: "failed", f"{state}_error": reason})
            pipe.hmget(self.keys.task(task.id), ["delivery", "callback"])
            states = (await pipe.execute())[-1]
        delivery, callback = (None if state is None else state.decode() for state in states)
        return replace(task, delivery=delivery, callback=callback)

    async def back_to_pending(self, task_id: str) -> Lost:
        """A running task whose worker is gone goes back to pending, so that its job can be taken up again —
        or fails, once its workers have died `task_max_crashes` times running it; NOTHING (and nothing
        changed) if it has finished or its heartbeat came back meanwhile."""
        keys = self.keys
        error = WorkerCrashed(f"the task's worker died {self._max_crashes} times while running it; it is not run "
                              "again", crashes=self._max_crashes).problem()
        result = await self._lost(
            keys=[keys.task(task_id), keys.running, keys.heartbeat(task_id), keys.tombstone(task_id)],
            args=[task_id, self._max_crashes, now_iso(), json.dumps(Result.failed(error).to_json()),
                  self.lifetimes.retention_s, self.lifetimes.tombstone_s])
        return Lost(int(result))

    async def unstarted(self, task_id: str) -> bool:
        """Whether the task exists and is not running (pending, or ended): its job holds no live work."""
        status = await self.status_of(task_id)
        return status is not None and status is not TaskStatus.RUNNING

    async def stale_running(self) -> list[str]:
        """Running tasks whose heartbeat has lapsed: their worker is gone."""
        ids = [raw.decode() for raw in await self._redis.zrange(self.keys.running, 0, -1)]
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.exists(self.keys.heartbeat(task_id))
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
        terms=Terms.from_json(json.loads(data["terms"])) if "terms" in data else Terms(),
        record=RequestRecord.from_json(data["record"]), base_url=data["base_url"], created=data["created"],
        started=data.get("started"), ended=data.get("ended"), statements=int(data.get("statements", 0)),
        result=Result.from_json(json.loads(data["result"])) if "result" in data else None,
        tries=int(data.get("tries", 0)), delivery=data.get("delivery"), callback=data.get("callback"),
        delivery_error=data.get("delivery_error"), callback_error=data.get("callback_error"),
        deliveries_staged="staged" in data,
        first_attempts={kind: float(data[f"{kind}_first_at"]) for kind in ("notification", "callback")
                        if f"{kind}_first_at" in data},
    )
