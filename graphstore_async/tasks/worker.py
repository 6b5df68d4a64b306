"""Running tasks: the arq job function, its heartbeat, the reaper of tasks whose worker died, and delivery.

A job may run more than once (arq is at-least-once; a worker can be killed), so every step is safe to repeat:
a finished task is not run again (only its notification, if that had not gone out); a PUT or a POST into a
graph made at acceptance replaces, so a second run leaves the same graph; a POST that merges into an existing
graph names its blank nodes after the task (Store.load's blank_node_scope), so a second run adds statements
that are all there already, and set semantics leave one copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphstore_async import formats
from graphstore_async.auth import AccessControl, Grant
from graphstore_async.egress import exempt_origin
from graphstore_async.errors import Cancelled, GraphStoreError
from graphstore_async.fetching import Fetcher
from graphstore_async.operations import Outcome, execute
from graphstore_async.repositories import Repositories
from graphstore_async.settings import Settings
from graphstore_async.store import Progress, Source
from graphstore_async.tasks import provenance
from graphstore_async.tasks.delivery import Attempt, Deliverer, Notification
from graphstore_async.tasks.queue import Queue, create_worker, stop_worker
from graphstore_async.tasks.records import Lost, Task, Tasks, now_iso
from graphstore_async.tasks.spool import Spool
from graphstore_async.taskstatus import TaskStatus

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 600.0


@dataclass
class Runtime:
    """What a job needs, shared by every job of one worker."""

    settings: Settings
    tasks: Tasks
    queue: Queue
    spool: Spool
    repositories: Repositories
    access: AccessControl
    deliverer: Deliverer
    fetcher: Fetcher
    _progress: dict[str, int] = dataclasses.field(default_factory=dict)  # statements read, by running task

    async def run(self, task_id: str) -> None:
        task = await self.tasks.get(task_id)
        if task is None:
            return
        if not task.status.terminal and await self.tasks.start(task_id, now_iso()):
            await self._run(task)
        task = await self.tasks.get(task_id)
        if task is None:
            return
        if task.record.header("Asynchronous-Location") and task.delivery is None:
            await self._deliver(task)
        if task.record.header("Prefer-Callback") and task.callback is None:
            await self._call_back(task)
        await self.tasks.forget_credentials(task)  # the notification is over: no credentials are kept
        self.spool.remove_bodies(task_id)

    async def _run(self, task: Task) -> None:
        self._progress[task.id] = 0  # ours until finished in Redis: the reaper leaves it alone
        try:
            status, summary, error = await self._outcome_of(task)
            if status is TaskStatus.COMPLETED and _notifies_result(task):
                await asyncio.to_thread(self._keep_result_for_notification, task)
            await self.tasks.finish(task.id, status, now_iso(), outcome=summary, error=error)
        finally:
            self._progress.pop(task.id, None)

    async def _outcome_of(self, task: Task) -> tuple[TaskStatus, dict[str, Any], dict[str, Any] | None]:
        stopped = threading.Event()  # set when the task has stopped: a store thread asking later must not write
        execution = asyncio.create_task(self._execute(task, stopped))
        beating = asyncio.create_task(self._heartbeat(task.id, execution))
        error: dict[str, Any] | None = None
        outcome: Outcome | None = None
        try:
            outcome = await execution
            status = TaskStatus.COMPLETED
        except asyncio.CancelledError:
            if not beating.done() or not beating.result():
                raise  # the worker is stopping: arq runs the job again later
            status, error = TaskStatus.CANCELLED, Cancelled("the task was cancelled").problem()
        except GraphStoreError as exc:
            status, error = (TaskStatus.CANCELLED if isinstance(exc, Cancelled) else TaskStatus.FAILED), exc.problem()
            log.info("task %s %s: %s", task.id, status.value, exc.detail)
        except Exception:  # a bug or a broken store: the task fails (and says so); it never stays "running"
            log.exception("task %s failed unexpectedly", task.id)
            status = TaskStatus.FAILED
            error = GraphStoreError("the task failed on an unexpected error; the failure is logged").problem()
        finally:
            stopped.set()
            beating.cancel()
        return status, _summary(outcome, error), error

    async def _execute(self, task: Task, stopped: threading.Event) -> Outcome:
        op = task.operation
        principal = self.access.principal_named(task.account)
        self.access.require(principal, op.repository, Grant.READ if op.kind.reads_only else Grant.WRITE)
        repo = await self.repositories.get(op.repository)

        async def may_write() -> bool:  # the last moment a cancellation can stop the task
            return not stopped.is_set() and await self.tasks.commit_point(task.id)

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
            if await self.tasks.beat(task_id, self._progress.get(task_id)):
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
        if task.record.header("Asynchronous-Content-Encoding") != "gzip":
            os.link(result, target)
            return
        with result.open("rb") as src, gzip.open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    def _notification_body(self, task: Task) -> Path | bytes:
        """The result's file for a completed query or export; else the PROV graph, made from the task's record
        (small: built here, in memory, on each delivery)."""
        if task.status is TaskStatus.COMPLETED and _notifies_result(task):
            return self.spool.notification(task.id)
        body = provenance.serialize(provenance.activity_graph(provenance.activity_of(task)), notification_format(task))
        return gzip.compress(body) if task.record.header("Asynchronous-Content-Encoding") == "gzip" else body

    async def _deliver(self, task: Task) -> None:
        record = task.record
        location = record.header("Asynchronous-Location")
        assert location is not None
        headers = {"Request-ID": task.id, "Content-Type": notification_content_type(task)}
        authorization = self.tasks.notification_authorization(task)
        if authorization:
            headers["Authorization"] = authorization
        if record.header("Client-Request-ID"):
            headers["Client-Request-ID"] = record.header("Client-Request-ID") or ""
        if record.header("Asynchronous-Content-Encoding") == "gzip":
            headers["Content-Encoding"] = "gzip"
        note = Notification(location, record.header("Asynchronous-Method") or "POST", headers,
                            self._notification_body(task), task.id)

        async def recorded(attempt: Attempt) -> None:
            await self.tasks.add_delivery(task.id, attempt.to_json())

        result = await self.deliverer.deliver(note, own_origin=task.base_url, on_attempt=recorded)
        await self.tasks.set_field(task.id, "delivery", "delivered" if result.delivered else "failed")

    async def _call_back(self, task: Task) -> None:
        """Prefer: callback — a GET to the URL when the task has ended (same policy and retries)."""
        url = task.record.header("Prefer-Callback")
        assert url is not None
        note = Notification(url, "GET", {"Request-ID": task.id}, None, f"{task.id}-callback")

        async def recorded(attempt: Attempt) -> None:
            await self.tasks.add_delivery(task.id, {**attempt.to_json(), "kind": "callback", "url": url})

        result = await self.deliverer.deliver(note, own_origin=task.base_url, on_attempt=recorded)
        await self.tasks.set_field(task.id, "callback", "delivered" if result.delivered else "failed")


def notification_format(task: Task) -> formats.Format:
    """The PROV graph's format: the asked type when it is one we write, else Turtle."""
    asked = formats.media_type_of(task.record.header("Asynchronous-Content-Type"))
    return next((f for f in provenance.NOTIFICATION_FORMATS if f.media_type == asked), formats.TURTLE)


def _notifies_result(task: Task) -> bool:
    """Whether the task's notification, when it completes, is its result (a query, an export)."""
    return task.record.header("Asynchronous-Location") is not None and task.operation.result_format is not None


def notification_content_type(task: Task) -> str:
    if task.status is TaskStatus.COMPLETED and task.operation.result_format is not None:
        return task.operation.result_format.content_type
    return notification_format(task).content_type


def _summary(outcome: Outcome | None, error: dict[str, Any] | None) -> dict[str, Any]:
    if outcome is None:
        return {"status": error.get("status") if error else None}
    return {"status": outcome.status, "graph": outcome.graph, "location": outcome.location,
            "statements_added": outcome.statements_added, "statements_removed": outcome.statements_removed,
            "content_type": outcome.format.content_type if outcome.format else None}


async def _drain(body: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("wb") as out:
            async for chunk in body:
                out.write(chunk)
    finally:
        await body.aclose()


async def reap(runtime: Runtime) -> None:
    """Forever: hand the tasks of dead workers (lapsed heartbeat) back to the queue, and remove spool
    directories of tasks past their retention."""
    swept = 0.0
    while True:
        if time.monotonic() - swept > SWEEP_EVERY_S:
            swept = time.monotonic()
            await asyncio.to_thread(runtime.spool.sweep, runtime.settings.task_retention_s)
        try:
            for task_id in await runtime.tasks.stale_running():
                if runtime.runs(task_id):
                    continue  # ours and still running: a late heartbeat, not a dead worker
                lost = await runtime.tasks.back_to_pending(task_id)
                if lost is Lost.REQUEUED:
                    log.warning("task %s lost its worker; it is taken up again", task_id)
                elif lost is Lost.FAILED:
                    log.error("task %s lost its worker %d times; it fails", task_id,
                              runtime.settings.task_max_crashes)
                if lost is not Lost.NOTHING:  # taken up again: to run, or only to send its notification
                    await runtime.queue.release(task_id)
        except Exception:  # Redis away for a moment: try again next round
            log.exception("reaping stale tasks failed")
        await asyncio.sleep(runtime.settings.heartbeat_s * 2)


async def run_task(ctx: dict[Any, Any], task_id: str) -> None:
    runtime: Runtime = ctx["runtime"]
    await runtime.run(task_id)


@contextlib.asynccontextmanager
async def running_worker(runtime: Runtime) -> AsyncIterator[None]:
    """A worker (and its reaper) in this process for as long as the context lasts; on exit it stops taking
    jobs, gives running ones `shutdown_grace_s`, and requeues what is left."""
    worker = create_worker(runtime.settings, run_task, {"runtime": runtime}, runtime.settings.redis_url)
    main = asyncio.create_task(worker.async_run())
    reaper = asyncio.create_task(reap(runtime))
    try:
        yield
    finally:
        reaper.cancel()
        await stop_worker(worker, runtime.settings.shutdown_grace_s)
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main


async def serve_worker(settings: Settings, access: AccessControl) -> None:
    """A worker process: runs tasks until SIGTERM or SIGINT, then stops as `running_worker` does."""
    from concurrent.futures import ThreadPoolExecutor

    from redis.asyncio import Redis

    from graphstore_async.store.embedded import EmbeddedStore

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    redis = Redis.from_url(settings.redis_url)
    with ThreadPoolExecutor(max_workers=settings.store_threads, thread_name_prefix="store") as executor:
        repositories = Repositories(settings.repositories_dir, EmbeddedStore.opener(executor, settings))
        deliverer = Deliverer(settings)
        fetcher = Fetcher.from_settings(settings)
        runtime = Runtime(settings, Tasks(redis, settings), Queue(redis, settings), Spool(settings), repositories,
                          access, deliverer, fetcher)
        try:
            async with running_worker(runtime):
                log.info("worker running on %s (queue %s)", settings.redis_url, runtime.queue.name)
                await stop.wait()
        finally:
            await deliverer.close()
            await fetcher.close()
            await repositories.close()
            await redis.aclose()
