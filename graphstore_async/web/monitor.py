"""A finished task's own response, as the monitor (`GET /tasks/{id}`) or a `Prefer: wait=N` gives it back.

The monitor answers 200 with the operation's body and content type, and `AsyncResult: <the operation's
status>`; `wait=N` answers the operation's status itself (the ordinary synchronous response). The result is
streamed from the spool, never loaded into memory, and is readable `monitor_reads` times (0: until retention).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from graphstore_async.errors import Cancelled, NotFound
from graphstore_async.formats import PROBLEM_JSON
from graphstore_async.tasks.records import Task, Tasks
from graphstore_async.taskstatus import TaskStatus
from graphstore_async.web import context
from graphstore_async.web.responses import gzipped

CHUNK_BYTES = 256 * 1024
WAIT_POLL_S = 0.05


async def wait_for_end(tasks: Tasks, task_id: str, timeout_s: float) -> Task | None:
    """The task once it has ended, or as it is when `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        task = await tasks.get(task_id)
        if task is None or task.status.terminal or time.monotonic() >= deadline:
            return task
        await asyncio.sleep(WAIT_POLL_S)


async def result_response(request: web.Request, task: Task, *, synchronous: bool) -> web.StreamResponse:
    settings = context.settings(request)
    spool = request.app[context.SPOOL]
    head = request.method == "HEAD"  # what a GET would answer now, without reading the result
    reads = await (request.app[context.TASKS].reads if head else request.app[context.TASKS].count_read)(task.id)
    if settings.monitor_reads and reads + head > settings.monitor_reads:
        raise NotFound(f"the result of task {task.id} has been read already", task=task.id)
    last_read = bool(settings.monitor_reads) and reads == settings.monitor_reads
    status, content_type, body = _parts(task, spool.result(task.id))
    headers = {} if synchronous else {"AsyncResult": str(status)}
    if task.result is not None and task.result.location:
        headers["Location"] = task.result.location
    if body is None:  # PUT, POST, DELETE, update: a status and no body
        return web.Response(status=status if synchronous else 200, headers=headers)
    response = web.StreamResponse(status=status if synchronous else 200, headers=headers)
    if content_type:
        response.headers["Content-Type"] = content_type
        gzipped(request, response)
    await response.prepare(request)
    if isinstance(body, bytes):
        if not head:
            await response.write(body)
    elif not head:
        async for chunk in _chunks(body):
            await response.write(chunk)
    await response.write_eof()
    if last_read:
        spool.result(task.id).unlink(missing_ok=True)
    return response


def _parts(task: Task, result: Path) -> tuple[int, str | None, bytes | Path | None]:
    """The operation's status, content type and body."""
    if task.status is TaskStatus.COMPLETED and task.result is not None:
        if task.result.content_type and result.exists():
            return task.result.status or 200, task.result.content_type, result
        return task.result.status or 204, None, None
    problem = task.error or Cancelled("the task was cancelled").problem()
    return int(problem.get("status") or 500), PROBLEM_JSON, json.dumps(problem).encode()


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, CHUNK_BYTES):
            yield chunk
