"""Deliveries apart from execution: notifications and callbacks, one attempt per job on the deliveries queue.

A task's end is written together with the job of its first delivery attempt (Tasks.finish with
Queue.stage_delivery, one transaction), so a task never ends without what will notify it — a worker killed
between the two cannot leave it "completed" and silent. Each attempt is a short job of its own: it sends once
and, when the answer is one to retry, schedules the next attempt at its back-off time (Retry-After honoured).
So a dead or hanging receiver holds no execution slot and delays no other task. At most `delivery_jobs`
attempts run at once per worker and at most `delivery_per_origin` to one destination origin; an attempt over
that bound is deferred (it waits its turn without holding a slot), so one slow destination never delays
another's notifications. Every attempt is recorded; the delivery ends `delivered` or `failed` — with the reason,
also when the notification could not even be made — and once every delivery of a task is over, the task keeps
no credentials.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections import Counter
from pathlib import Path

from redis.asyncio.client import Pipeline

from graphstore_async import formats
from graphstore_async.egress import EgressRefused, exempt_origin, origin_of
from graphstore_async.metrics import Metrics
from graphstore_async.settings import Settings
from graphstore_async.tasks import provenance
from graphstore_async.tasks.delivery import Deliverer, Notification, next_delay
from graphstore_async.tasks.queue import Queue, delivery_job_id, later
from graphstore_async.tasks.records import Staging, Task, Tasks
from graphstore_async.tasks.spool import Spool
from graphstore_async.taskstatus import TaskStatus

log = logging.getLogger(__name__)

NOTIFICATION, CALLBACK = "notification", "callback"
WAIT_TURN_S = 0.25  # an attempt whose destination is busy tries again this much later


def kinds(task: Task) -> list[str]:
    """The deliveries a task has: a notification (Asynchronous-Location), a callback (Prefer: callback)."""
    return ([NOTIFICATION] if task.record.header("Asynchronous-Location") else []) + (
        [CALLBACK] if task.record.header("Prefer-Callback") else [])


def notification_format(task: Task) -> formats.Format:
    """The PROV graph's format: the asked type when it is one we write, else Turtle (acceptance has refused any
    other type)."""
    asked = formats.media_type_of(task.record.header("Asynchronous-Content-Type"))
    return next((f for f in provenance.NOTIFICATION_FORMATS if f.media_type == asked), formats.TURTLE)


def notifies_result(task: Task) -> bool:
    """Whether the task's notification, when it completes, is its result (a query, an export)."""
    return task.record.header("Asynchronous-Location") is not None and task.operation.result_format is not None


def notification_content_type(task: Task) -> str:
    if task.status is TaskStatus.COMPLETED and task.operation.result_format is not None:
        return task.operation.result_format.content_type
    return notification_format(task).content_type


def notification_for(task: Task, result: Path, authorization: str | None) -> Notification:
    """The notification of an ended task: the result's file (`result`) for a completed query or export, else the
    PROV graph made from the task's record (small: made on each attempt, the same each time)."""
    record = task.record
    location = record.header("Asynchronous-Location")
    assert location is not None
    gzipped = record.header("Asynchronous-Content-Encoding") == "gzip"
    headers = {"Request-ID": task.id, "Content-Type": notification_content_type(task)}
    if authorization:
        headers["Authorization"] = authorization
    if record.header("Client-Request-ID"):
        headers["Client-Request-ID"] = record.header("Client-Request-ID") or ""
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    body: Path | bytes
    if task.status is TaskStatus.COMPLETED and notifies_result(task):
        body = result
    else:
        graph = provenance.activity_graph(provenance.activity_of(task))
        body = provenance.serialize(graph, notification_format(task))
        body = gzip.compress(body) if gzipped else body
    return Notification(location, record.header("Asynchronous-Method") or "POST", headers, body, task.id)


def callback_for(task: Task) -> Notification:
    """Prefer: callback — a GET to the URL when the task has ended."""
    url = task.record.header("Prefer-Callback")
    assert url is not None
    return Notification(url, "GET", {"Request-ID": task.id}, None, f"{task.id}-callback")


class Dispatcher:
    """The deliveries queue's job: one attempt of one task's notification or callback."""

    def __init__(self, settings: Settings, tasks: Tasks, queue: Queue, spool: Spool, deliverer: Deliverer) -> None:
        self._settings = settings
        self._tasks = tasks
        self._queue = queue
        self._spool = spool
        self._deliverer = deliverer
        self._busy: Counter[tuple[str, int]] = Counter()  # attempts in flight, by destination origin
        self.metrics = Metrics()  # the worker's registry (set to the app's in `serve`)
        self.worker_id = ""  # this process's worker (liveness.Workers.id), named in its delivery claims

    def first_jobs(self, task: Task) -> Staging | None:
        """What Tasks.finish writes with a task's end: the first attempt of each of its deliveries, now."""
        due = kinds(task)
        if not due:
            return None

        def stage(pipe: Pipeline) -> None:
            for kind in due:
                self._queue.stage_delivery(pipe, task.id, kind, 1, time.time())

        return stage

    async def schedule_first(self, task: Task) -> None:
        """For a task that ended without them (cancelled while pending): its deliveries' first attempts."""
        for kind in kinds(task):
            if _state(task, kind) is None:
                await self._queue.schedule_delivery(task.id, kind, 1, time.time())

    async def attempt(self, task_id: str, kind: str, number: int) -> None:
        task = await self._tasks.get(task_id)
        if task is None or not task.status.terminal or _state(task, kind) is not None:
            return  # expired, not ended (a stale job), or this delivery is over already (a job run twice)
        try:
            note = (notification_for(task, self._spool.notification(task.id),
                                     self._tasks.notification_authorization(task))
                    if kind == NOTIFICATION else callback_for(task))
            destination = origin_of(note.url)
        except (EgressRefused, OSError, ValueError, KeyError) as exc:  # nothing can be sent: say why, once
            log.exception("task %s: its %s could not be made", task.id, kind)
            await self._end(task, kind, delivered=False, reason=f"the {kind} could not be made: {exc}")
            return
        if self._busy[destination] >= self._settings.delivery_per_origin:
            later(WAIT_TURN_S)  # not now: this destination has its share in flight
        self._busy[destination] += 1
        job_id = delivery_job_id(task.id, kind, number)
        try:
            await self._queue.claim(job_id, self.worker_id)
            attempt, retry_after = await self._deliverer.attempt(note, number,
                                                                 exempt_origin(self._settings, task.base_url))
        finally:
            self._busy[destination] -= 1
            if not self._busy[destination]:
                del self._busy[destination]
        self.metrics.notification_attempt(kind, attempt.status, refused=attempt.refused)
        entry = attempt.to_json() if kind == NOTIFICATION else {**attempt.to_json(), "kind": kind, "url": note.url}
        first_at = await self._tasks.add_delivery(task.id, entry, kind=kind)
        await self._queue.unclaim(job_id)
        if attempt.succeeded:
            await self._end(task, kind, delivered=True, reason=None)
            return
        delay = next_delay(attempt, retry_after, number, first_at, time.time(), self._settings)
        if delay is None:
            await self._end(task, kind, delivered=False, reason=attempt.error or f"answered {attempt.status}")
        else:
            await self._queue.schedule_delivery(task.id, kind, number + 1, time.time() + delay)

    async def _end(self, task: Task, kind: str, *, delivered: bool, reason: str | None) -> None:
        ended = await self._tasks.end_delivery(task.id, kind, delivered=delivered, reason=reason)
        self.metrics.delivery_event(task.id, kind, delivered=delivered, ended=task.ended, reason=reason)
        if all(_state(ended, other) is not None for other in kinds(ended)):
            await self._tasks.forget_credentials(ended)  # every delivery is over: no credentials are kept
            self._spool.notification(task.id).unlink(missing_ok=True)


def _state(task: Task, kind: str) -> str | None:
    return task.delivery if kind == NOTIFICATION else task.callback
