"""Deliveries apart from execution: notifications and callbacks, one attempt at a time.

A task's end is written together with the jobs of its deliveries' first attempts (Tasks.finish, one script), so
a task never ends without what will notify it — a worker killed between the two cannot leave it "completed" and
silent. The worker that ran the task then makes each first attempt itself, at once, when it has room (at most
`delivery_jobs` attempts in flight, at most `delivery_per_origin` to one destination origin): the job written
with the task's end is due only after that attempt's longest time, as its stand-in should this worker die, and
the attempt's record removes it. Without room, the job is due at once and the deliveries queue runs it.

Every later attempt is a job of its own on the deliveries queue: it sends once and, when the answer is one to
retry, schedules the next attempt at its back-off time (Retry-After honoured). So a dead or hanging receiver
holds no execution slot and delays no other task; an attempt over the per-origin bound is deferred (it waits its
turn without holding a slot). Every attempt is recorded; the delivery ends `delivered` or `failed` — with the
reason, also when the notification could not even be made — and once every delivery of a task is over, the task
keeps no credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from graphstore_async.egress import exempt_origin, origin_of
from graphstore_async.errors import EgressRefused
from graphstore_async.metrics import Metrics
from graphstore_async.settings import Settings
from graphstore_async.tasks.delivery import Deliverer, Notification, next_delay
from graphstore_async.tasks.keys import delivery_timeout_s
from graphstore_async.tasks.notification import NOTIFICATION, callback_for, notification_for
from graphstore_async.tasks.queue import Job, Queue, later
from graphstore_async.tasks.records import Task, Tasks
from graphstore_async.tasks.spool import Spool

log = logging.getLogger(__name__)

WAIT_TURN_S = 0.25  # an attempt whose destination is busy tries again this much later
Origin = tuple[str, int]


@dataclass
class Plan:
    """The first attempts of an ending task's deliveries: the jobs written with its end, and those of them this
    worker sends at once (a slot held for each)."""

    jobs: list[Job] = field(default_factory=list)
    now: dict[str, Origin] = field(default_factory=dict)  # kind → destination, slot held


class Dispatcher:
    def __init__(self, settings: Settings, tasks: Tasks, queue: Queue, spool: Spool, deliverer: Deliverer) -> None:
        self._settings = settings
        self._tasks = tasks
        self._queue = queue
        self._spool = spool
        self._deliverer = deliverer
        self._busy: Counter[Origin] = Counter()  # attempts in flight, by destination origin
        self._in_flight = 0  # first attempts sent at once, in flight
        self._sending: set[asyncio.Task[None]] = set()
        self.metrics = Metrics()  # the worker's registry (set to the app's in `serve`)
        self.worker_id = ""  # this process's worker (liveness.Workers.id), named in its delivery claims

    def plan(self, task: Task) -> Plan:
        """The first attempts of `task`'s deliveries, to write with its end. Call `send` (or `release`) after."""
        plan, now = Plan(), time.time()
        for kind in task.terms.deliveries:
            destination = self._room_for(task, kind)
            if destination is None:
                plan.jobs.append(self._queue.delivery_job(task.id, kind, 1, now))
                continue
            self._hold(destination)
            plan.now[kind] = destination
            plan.jobs.append(self._queue.delivery_job(task.id, kind, 1, now + delivery_timeout_s(self._settings)))
        return plan

    def send(self, task: Task, plan: Plan) -> None:
        """Make the plan's first attempts now, apart from the task's job (which ends meanwhile)."""
        for kind, destination in plan.now.items():
            sending = asyncio.create_task(self._send_first(task, kind, destination))
            self._sending.add(sending)
            sending.add_done_callback(self._sending.discard)
        plan.now = {}

    def release(self, plan: Plan) -> None:
        """The task's end was not written: the slots the plan held are free again."""
        for destination in plan.now.values():
            self._free(destination)
        plan.now = {}

    async def stop(self, grace_s: float) -> None:
        """First attempts still in flight get `grace_s`; the rest are cancelled (their jobs send them later)."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=grace_s)
        for sending in set(self._sending):
            sending.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def schedule_first(self, task: Task) -> None:
        """For a task that ended without them (cancelled while pending): its deliveries' first attempts."""
        jobs = [self._queue.delivery_job(task.id, kind, 1, time.time()) for kind in task.terms.deliveries
                if task.delivery_state(kind) is None]
        if jobs:
            await self._queue.schedule(jobs)

    async def attempt(self, task_id: str, kind: str, number: int) -> None:
        """The deliveries queue's job: one attempt of one task's notification or callback."""
        task = await self._tasks.get(task_id)
        if task is None or not task.status.terminal or task.delivery_state(kind) is not None:
            return  # expired, not ended (a stale job), or this delivery is over already (a job run twice)
        made = await self._made(task, kind)
        if made is None:
            return
        note, destination = made
        if self._busy[destination] >= self._settings.delivery_per_origin:
            later(WAIT_TURN_S)  # not now: this destination has its share in flight
        self._hold(destination, first=False)
        try:
            await self._queue.claim(self._queue.delivery_job(task.id, kind, number, 0).id, self.worker_id)
            await self._attempt(task, kind, number, note)
        finally:
            self._free(destination, first=False)

    async def _send_first(self, task: Task, kind: str, destination: Origin) -> None:
        try:
            made = await self._made(task, kind)
            if made is not None:
                await self._attempt(task, kind, 1, made[0])
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis away, a bug: the stand-in job sends it
            log.exception("task %s: its first %s attempt failed here; its job makes it later", task.id, kind)
        finally:
            self._free(destination)

    async def _made(self, task: Task, kind: str) -> tuple[Notification, Origin] | None:
        """The notification or callback, and its destination; None (and the delivery failed) if it cannot be
        made."""
        try:
            note = (notification_for(task, self._spool.notification(task.id), self._tasks.authorization(task))
                    if kind == NOTIFICATION else callback_for(task))
            return note, origin_of(note.url)
        except (EgressRefused, OSError, ValueError, KeyError) as exc:  # nothing can be sent: say why, once
            log.exception("task %s: its %s could not be made", task.id, kind)
            over = await self._tasks.end_delivery(task, kind, reason=f"the {kind} could not be made: {exc}")
            self.metrics.delivery_event(task.id, kind, delivered=False, ended=task.ended, reason=str(exc))
            await self._if_over(over)
            return None

    async def _attempt(self, task: Task, kind: str, number: int, note: Notification) -> None:
        attempt, retry_after = await self._deliverer.attempt(note, number,
                                                             exempt_origin(self._settings, task.base_url))
        self.metrics.notification_attempt(kind, attempt.status, refused=attempt.refused)
        entry = attempt.to_json() if kind == NOTIFICATION else {**attempt.to_json(), "kind": kind, "url": note.url}
        own_job = self._queue.delivery_job(task.id, kind, number, 0)
        ended: str | None = "delivered" if attempt.succeeded else None
        reason: str | None = None
        next_job: Job | None = None
        if not attempt.succeeded:
            first_at = task.first_attempts.get(kind, attempt.at)
            delay = next_delay(attempt, retry_after, number, first_at, time.time(), self._settings)
            if delay is None:
                ended, reason = "failed", attempt.error or f"answered {attempt.status}"
            else:
                next_job = self._queue.delivery_job(task.id, kind, number + 1, time.time() + delay)
        now = await self._tasks.attempted(task, kind, entry, attempt.at, own_job, next_job, ended=ended,
                                          reason=reason)
        if ended is not None:
            self.metrics.delivery_event(task.id, kind, delivered=ended == "delivered", ended=task.ended,
                                        reason=reason)
            await self._if_over(now)

    async def _if_over(self, task: Task) -> None:
        if all(task.delivery_state(kind) is not None for kind in task.terms.deliveries):
            await self._tasks.forget_credentials(task)  # every delivery is over: no credentials are kept
            self._spool.notification(task.id).unlink(missing_ok=True)

    def _room_for(self, task: Task, kind: str) -> Origin | None:
        """The destination of a first attempt this worker can send at once, or None."""
        if self._in_flight >= self._settings.delivery_jobs:
            return None
        url = task.terms.notify.location if kind == NOTIFICATION and task.terms.notify else task.terms.callback
        try:
            destination = origin_of(url or "")
        except EgressRefused:
            return None  # the job finds it cannot be made, and says so
        return destination if self._busy[destination] < self._settings.delivery_per_origin else None

    def _hold(self, destination: Origin, *, first: bool = True) -> None:
        self._busy[destination] += 1
        self._in_flight += first

    def _free(self, destination: Origin, *, first: bool = True) -> None:
        self._busy[destination] -= 1
        self._in_flight -= first
        if not self._busy[destination]:
            del self._busy[destination]
