"""Running tasks: the arq job function, its heartbeat, the reaper of tasks whose worker died, and delivery.

A job may run more than once (arq is at-least-once; a worker can be killed), so every step is safe to repeat:
a finished task is not run again (only its notification, if that had not gone out); a PUT or a POST into a
graph made at acceptance replaces, so a second run leaves the same graph; a POST that merges into an existing
graph names its blank nodes after the task (Store.load's blank_node_scope), so a second run adds statements
that are all there already, and set semantics leave one copy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import logging
import os
import shutil
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from redis.exceptions import RedisError

from graphstore_async.auth import AccessControl, Grant
from graphstore_async.egress import exempt_origin
from graphstore_async.errors import Cancelled, GraphStoreError
from graphstore_async.fetching import Fetcher
from graphstore_async.metrics import Metrics
from graphstore_async.operations import Outcome, execute
from graphstore_async.repositories import Repositories
from graphstore_async.settings import Settings
from graphstore_async.store import Progress, Source
from graphstore_async.tasks.dispatch import Dispatcher
from graphstore_async.tasks.notification import carries_result
from graphstore_async.tasks.queue import Queue
from graphstore_async.tasks.records import Task, Tasks, now_iso
from graphstore_async.tasks.result import Result
from graphstore_async.tasks.spool import Spool
from graphstore_async.taskstatus import TaskStatus

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 600.0
RETRY_FIRST_S, RETRY_MAX_S = 0.2, 5.0  # back-off while Redis is away
REDIS_FAULTS = (RedisError, OSError)
T = TypeVar("T")


@dataclass
class Runtime:
    """What a job needs, shared by every job of one worker."""

    settings: Settings
    tasks: Tasks
    queue: Queue
    spool: Spool
    repositories: Repositories
    access: AccessControl
    dispatcher: Dispatcher
    fetcher: Fetcher
    metrics: Metrics = dataclasses.field(default_factory=Metrics)  # this worker's (the app's in `serve`)
    _progress: dict[str, int] = dataclasses.field(default_factory=dict)  # statements read, by running task

    async def run(self, task_id: str) -> None:
        begun, task = await self.tasks.start(task_id, now_iso())
        if task is None:
            return
        if begun:
            self.metrics.task_event(task_id, "running", kind=task.operation.kind, user=task.account)
            task = await self._run(task)  # its end is written with its deliveries' first jobs
            self.spool.remove_bodies(task_id)
        if not task.status.terminal:
            return
        if not task.deliveries_staged:  # it ended without running (cancelled while pending)
            await self.dispatcher.schedule_first(task)
        if not task.terms.deliveries:
            await self.tasks.forget_credentials(task)  # nothing will be delivered: no credentials are kept

    async def _run(self, task: Task) -> Task:
        """Run the task and write its end; the task as it ended."""
        self._progress[task.id] = 0  # ours until finished in Redis: the reaper leaves it alone
        try:
            status, result = await self._outcome_of(task)
            if status is TaskStatus.COMPLETED and carries_result(task):
                await asyncio.to_thread(self._keep_result_for_notification, task)
            plan = self.dispatcher.plan(task)
            try:
                ended = await persistently(lambda: self.tasks.finish(task, status, result, plan.jobs),
                                           f"recording the end of task {task.id}")
            except BaseException:
                self.dispatcher.release(plan)
                raise
            self.dispatcher.send(ended, plan)  # its first notification, now, apart from this job
            self.metrics.task_event(task.id, status.value, kind=task.operation.kind, user=task.account,
                                    error=result.error)
            return ended
        finally:
            self._progress.pop(task.id, None)

    async def _outcome_of(self, task: Task) -> tuple[TaskStatus, Result]:
        stopped = threading.Event()  # set when the task has stopped: a store thread asking later must not write
        execution = asyncio.create_task(self._execute(task, stopped))
        beating = asyncio.create_task(self._heartbeat(task.id, execution))
        try:
            outcome = await execution
            return TaskStatus.COMPLETED, Result.of(outcome, self._progress.get(task.id))
        except asyncio.CancelledError:
            if not beating.done() or not beating.result():
                raise  # the worker is stopping: arq runs the job again later
            return TaskStatus.CANCELLED, self._failed(task, Cancelled("the task was cancelled").problem())
        except GraphStoreError as exc:
            log.info("task %s %s: %s", task.id, "cancelled" if isinstance(exc, Cancelled) else "failed", exc.detail)
            return (TaskStatus.CANCELLED if isinstance(exc, Cancelled) else TaskStatus.FAILED,
                    self._failed(task, exc.problem()))
        except Exception:  # a bug or a broken store: the task fails (and says so); it never stays "running"
            log.exception("task %s failed unexpectedly", task.id)
            problem = GraphStoreError("the task failed on an unexpected error; the failure is logged").problem()
            return TaskStatus.FAILED, self._failed(task, problem)
        finally:
            stopped.set()
            beating.cancel()

    def _failed(self, task: Task, problem: dict[str, Any]) -> Result:
        return Result.failed(problem, self._progress.get(task.id))

    async def _execute(self, task: Task, stopped: threading.Event) -> Outcome:
        op = task.operation
        principal = self.access.principal_named(task.account)
        self.access.require(principal, op.repository, Grant.READ if op.kind.reads_only else Grant.WRITE)
        repo = await self.repositories.get(op.repository)

        async def may_write() -> bool:  # the last moment a cancellation can stop the task
            # Redis away is not a "no": the task waits at its commit point (nothing written yet) until it answers.
            return not stopped.is_set() and await persistently(lambda: self.tasks.commit_point(task.id),
                                                               f"the commit point of task {task.id}")

        # A merge names its blank nodes after the task, so that a second run adds nothing.
        own = exempt_origin(self.settings, task.base_url)

        def fetch(url: str) -> AbstractAsyncContextManager[Source]:
            return self.fetcher.fetched(url, own_origin=own)

        outcome = await execute(op, repo.store, self._progress_of(task.id), blank_node_scope=task.id.replace("-", ""),
                                may_write=may_write, fetch=fetch)
        if outcome.body is not None:
            await _drain(outcome.body, self.spool.result(task.id))
            outcome.body = None
        return outcome

    async def _heartbeat(self, task_id: str, execution: asyncio.Task[Outcome]) -> bool:
        """Beat until the execution ends; when a cancellation is asked for, cancel it and return True."""
        while not execution.done():
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                cancelled = await self.tasks.beat(task_id, self._progress.get(task_id))
            except REDIS_FAULTS as exc:  # Redis away: the task runs on; the reaper waits for it while Redis is
                log.warning("task %s: heartbeat failed (%s); running on", task_id, exc)  # away too
                self.metrics.count_redis_error(exc)
                continue
            if cancelled:
                execution.cancel()
                return True
        return False

    def runs(self, task_id: str) -> bool:
        return task_id in self._progress

    def _progress_of(self, task_id: str) -> Progress:
        def report(statements: int) -> None:  # called from a store thread: a dict store is atomic enough
            self._progress[task_id] = statements

        return report

    def _keep_result_for_notification(self, task: Task) -> None:
        """A query's or export's result is the notification: its own file (a link to the result, which the
        monitor may read and remove; a gzipped copy when gzip is asked), written before the task ends."""
        target, result = self.spool.notification(task.id), self.spool.result(task.id)
        target.unlink(missing_ok=True)  # a second run writes it again
        if task.terms.notify is None or not task.terms.notify.gzip:
            os.link(result, target)
            return
        with result.open("rb") as src, gzip.open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


async def _drain(body: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("wb") as out:
            async for chunk in body:
                out.write(chunk)
    finally:
        await body.aclose()


async def run_task(ctx: dict[Any, Any], task_id: str) -> None:
    runtime: Runtime = ctx["runtime"]
    await runtime.run(task_id)


async def deliver(ctx: dict[Any, Any], task_id: str, kind: str, number: int) -> None:
    runtime: Runtime = ctx["runtime"]
    await runtime.dispatcher.attempt(task_id, kind, number)


async def persistently(step: Callable[[], Awaitable[T]], what: str) -> T:
    """Do a Redis step that must not be lost (a task's end, its commit point), trying again with back-off while
    Redis is away; its answer."""
    delay = RETRY_FIRST_S
    while True:
        try:
            return await step()
        except REDIS_FAULTS as exc:
            log.warning("%s failed (%s); trying again in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
