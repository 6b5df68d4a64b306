"""Running tasks: the arq job function, its heartbeat, the reaper of tasks whose worker died, and delivery.

A job may run more than once (arq is at-least-once; a worker can be killed), so every step is safe to repeat:
a finished task is not run again (only its notification, if that had not gone out); a PUT or a POST into a
graph made at acceptance replaces, so a second run leaves the same graph; a POST that merges into an existing
graph loads into a staging graph first and commits with one transactional ADD + DROP, and the task records that
it reached the commit, so a repeated run knows whether the commit happened (the staging graph is gone) or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphstore_async import formats
from graphstore_async.auth import AccessControl, Grant
from graphstore_async.errors import GraphStoreError
from graphstore_async.operations import Kind, Outcome, execute
from graphstore_async.repositories import Repositories
from graphstore_async.settings import Settings
from graphstore_async.store import Store
from graphstore_async.tasks import provenance
from graphstore_async.tasks.delivery import Attempt, Deliverer, Notification
from graphstore_async.tasks.queue import Queue, create_worker, stop_worker
from graphstore_async.tasks.records import Status, Task, Tasks, now_iso
from graphstore_async.tasks.spool import Spool

log = logging.getLogger(__name__)
STAGING_PREFIX = "urn:graphstore-async:staging:"


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

    async def run(self, task_id: str) -> None:
        task = await self.tasks.get(task_id)
        if task is None or task.status is Status.CANCELLED:
            return
        if not task.status.terminal:
            await self._run(task)
            task = await self.tasks.get(task_id)
            assert task is not None
        if task.record.header("Asynchronous-Location") and task.delivery is None:
            await self._deliver(task)
        self.spool.remove_bodies(task_id)

    async def _run(self, task: Task) -> None:
        await self.tasks.start(task.id)
        started = now_iso()
        beating = asyncio.create_task(self._heartbeat(task.id))
        error: dict[str, Any] | None = None
        outcome: Outcome | None = None
        try:
            outcome = await self._execute(task)
            status = Status.COMPLETED
        except GraphStoreError as exc:
            status, error = Status.FAILED, exc.problem()
            log.info("task %s failed: %s", task.id, exc.detail)
        finally:
            beating.cancel()
        summary = _summary(outcome, error)
        if task.record.header("Asynchronous-Location"):
            await asyncio.to_thread(self._write_notification, task, status, summary, error, started)
        await self.tasks.finish(task.id, status, outcome=summary, error=error)

    async def _execute(self, task: Task) -> Outcome:
        op = task.operation
        principal = self.access.principal_named(task.account)
        self.access.require(principal, op.repository, Grant.READ if op.kind.reads_only else Grant.WRITE)
        repo = await self.repositories.get(op.repository)
        if op.kind is Kind.GRAPH_POST and not op.created_graph and not op.whole_dataset:
            return await self._merge(task, repo.store)
        outcome = await execute(op, repo.store)
        if outcome.body is not None:
            await _drain(outcome.body, self.spool.result(task.id))
            outcome.body = None
        return outcome

    async def _merge(self, task: Task, store: Store) -> Outcome:
        """POST into an existing graph, safe to repeat: staging graph, then one atomic ADD + DROP."""
        op, staging = task.operation, f"{STAGING_PREFIX}{task.id}"
        target = "DEFAULT" if op.graph is None else f"GRAPH <{op.graph}>"
        commit = f"ADD SILENT GRAPH <{staging}> TO {target} ; DROP SILENT GRAPH <{staging}>"
        phase = await self.tasks.field(task.id, "phase")
        if phase is not None and phase.startswith("committing:"):
            if await store.graph_exists(staging):
                await store.update(commit)
            return Outcome(204, graph=op.graph, statements_added=int(phase.partition(":")[2]))
        existed = await store.graph_exists(op.graph)
        staged = await execute(dataclasses.replace(op, kind=Kind.GRAPH_PUT, graph=staging), store)
        await self.tasks.set_field(task.id, "phase", f"committing:{staged.statements_added}")
        await store.update(commit)
        return Outcome(204 if existed else 201, graph=op.graph, statements_added=staged.statements_added)

    async def _heartbeat(self, task_id: str) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            await self.tasks.beat(task_id)

    def _write_notification(self, task: Task, status: Status, summary: dict[str, Any],
                            error: dict[str, Any] | None, started: str) -> None:
        """The notification body, in the asked type, gzipped when asked, to its spool file."""
        target = self.spool.notification(task.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        result = self.spool.result(task.id)
        gzipped = task.record.header("Asynchronous-Content-Encoding") == "gzip"
        if status is Status.COMPLETED and result.exists():
            source = result
        else:
            activity = provenance.Activity(
                task_id=task.id, method=task.record.method, started=task.started or started, ended=now_iso(),
                actor=f"{task.base_url}/{task.account}", repository=f"{task.base_url}/{task.repository}",
                status=status, status_code=summary.get("status"),
                client_request_id=task.record.header("Client-Request-ID"),
                statements_added=summary.get("statements_added"),
                statements_removed=summary.get("statements_removed"), graph=summary.get("graph"), error=error,
            )
            source = target.with_suffix(".plain")
            source.write_bytes(provenance.serialize(provenance.activity_graph(activity),
                                                    notification_format(task)))
        with source.open("rb") as src, (gzip.open(target, "wb") if gzipped else target.open("wb")) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    async def _deliver(self, task: Task) -> None:
        record = task.record
        location = record.header("Asynchronous-Location")
        assert location is not None
        headers = {"Request-ID": task.id, "Content-Type": notification_content_type(task)}
        authorization = record.header("Asynchronous-Authorization") or record.header("Authorization")
        if authorization:
            headers["Authorization"] = authorization
        if record.header("Client-Request-ID"):
            headers["Client-Request-ID"] = record.header("Client-Request-ID") or ""
        if record.header("Asynchronous-Content-Encoding") == "gzip":
            headers["Content-Encoding"] = "gzip"
        note = Notification(location, record.header("Asynchronous-Method") or "POST", headers,
                            self.spool.notification(task.id), task.id)

        async def recorded(attempt: Attempt) -> None:
            await self.tasks.add_delivery(task.id, attempt.to_json())

        result = await self.deliverer.deliver(note, own_origin=task.base_url, on_attempt=recorded)
        await self.tasks.set_field(task.id, "delivery", "delivered" if result.delivered else "failed")


def notification_format(task: Task) -> formats.Format:
    """The PROV graph's format: the asked type when it is one we write, else Turtle."""
    asked = formats.media_type_of(task.record.header("Asynchronous-Content-Type"))
    return next((f for f in provenance.NOTIFICATION_FORMATS if f.media_type == asked), formats.TURTLE)


def notification_content_type(task: Task) -> str:
    if task.status is Status.COMPLETED and task.operation.result_format is not None:
        return task.operation.result_format.content_type
    return notification_format(task).content_type


def _summary(outcome: Outcome | None, error: dict[str, Any] | None) -> dict[str, Any]:
    if outcome is None:
        return {"status": error.get("status") if error else None}
    return {"status": outcome.status, "graph": outcome.graph, "location": outcome.location,
            "statements_added": outcome.statements_added, "statements_removed": outcome.statements_removed}


async def _drain(body: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("wb") as out:
            async for chunk in body:
                out.write(chunk)
    finally:
        await body.aclose()


async def reap(runtime: Runtime) -> None:
    """Forever: hand the tasks of dead workers (lapsed heartbeat) back to the queue."""
    while True:
        try:
            for task_id in await runtime.tasks.stale_running():
                log.warning("task %s lost its worker; it is taken up again", task_id)
                await runtime.tasks.forget_running(task_id)
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
