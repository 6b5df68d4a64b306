"""Tasks over HTTP (SPEC §4): the monitor, cancellation, the status document (JSON, Turtle, JSON-LD), its
server-sent events, and the caller's list of tasks.

Only the submitter and administrators see a task; to anybody else it does not exist (404), so a task id leaks
nothing. An id whose task has passed its retention answers 410 to them. An id that is not a UUID is no task's:
404 before it comes near a Redis key.

Anonymous callers (on a server with accounts) all share the account "anonymous", so an anonymous task is
reached only through its monitor URL: its id, a random UUID, is the capability. It is never listed (GET /tasks
is 401 for an anonymous caller), and a Request-ID does not lead to another anonymous client's task
(tasks/idempotency.py). With no accounts configured everybody is an administrator and sees every task.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from graphstore_async import formats, params
from graphstore_async.errors import BadRequest, Conflict, TaskGone, TaskNotFound, Unauthorized
from graphstore_async.operations import Kind
from graphstore_async.tasks import provenance
from graphstore_async.tasks.records import Task, View
from graphstore_async.taskstatus import TaskStatus
from graphstore_async.web import context
from graphstore_async.web.monitor import result_response

RETRY_AFTER_S = 1
EVENT_POLL_S = 0.2
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
STATUS_FORMATS = (formats.SPARQL_JSON, formats.TURTLE, formats.JSON_LD)  # SPARQL_JSON stands for JSON here


async def visible_task(request: web.Request) -> View:
    """The task named in the path, if the caller may see it: others get 404, so an id leaks nothing."""
    task_id = params.task_id(request.match_info["task_id"])
    tasks = request.app[context.TASKS]
    principal = context.principal(request)
    view = await tasks.view(task_id)
    if view is not None and (principal.admin or principal.account == view.task.account):
        return view
    if view is None:
        owner = await tasks.tombstone(task_id)
        if owner is not None and (principal.admin or principal.account == owner):
            raise TaskGone(f"task {task_id} ended longer ago than the retention period; its result is gone",
                           task=task_id)
    raise TaskNotFound(f"there is no task {task_id}", task=task_id)


def _monitor(request: web.Request, task_id: str) -> str:
    return f"{context.base_url(request)}/tasks/{task_id}"


async def monitor(request: web.Request) -> web.StreamResponse:
    view = await visible_task(request)
    if not view.task.status.terminal:
        return web.json_response(status_document(request, view), status=202, headers={
            "Location": _monitor(request, view.task.id), "Retry-After": str(RETRY_AFTER_S)})
    return await result_response(request, view.task, synchronous=False)


async def cancel(request: web.Request) -> web.Response:
    task = (await visible_task(request)).task
    outcome = await request.app[context.TASKS].cancel(task.id)
    if outcome == "cancelled":
        request.app[context.METRICS].task_event(task.id, "cancelled", kind=task.operation.kind, user=task.account)
        return web.Response(status=204)
    if outcome == "interrupting":
        detail = (f"task {task.id} is running; it stops within {context.settings(request).heartbeat_s:g} s (its "
                  "next heartbeat) and ends as cancelled. " + _stopping(task))
        return web.json_response({"id": task.id, "status": TaskStatus.RUNNING.value, "cancellation": "requested",
                                  "detail": detail}, status=202,
                                 headers={"Location": f"{_monitor(request, task.id)}/status"})
    if outcome == "committing":
        raise Conflict(f"task {task.id} is writing to the store and can no longer be cancelled", task=task.id)
    raise Conflict(f"task {task.id} has ended ({(await request.app[context.TASKS].get(task.id) or task).status.value}"
                   "); there is nothing to cancel", task=task.id)


def _stopping(task: Task) -> str:
    """What stops when a running task is cancelled, and what runs on: the engine cannot interrupt a query."""
    if task.operation.kind is Kind.QUERY:
        return ("Its result is discarded. The engine cannot interrupt a query: one still being evaluated keeps its "
                "store thread, and one of its account's query slots, until the engine returns; one whose result is "
                "being written stops at its next write.")
    if task.operation.kind is Kind.GRAPH_GET:
        return "Its result is discarded; the export stops at its next write."
    return "It stops before it changes the store, and changes nothing."


async def status(request: web.Request) -> web.Response:
    view = await visible_task(request)
    task = view.task
    fmt = formats.negotiate(request.headers.get("Accept"), STATUS_FORMATS, formats.SPARQL_JSON)
    headers = {"Vary": "Accept"}
    if not task.status.terminal:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if fmt is formats.SPARQL_JSON:
        return web.json_response(status_document(request, view), headers=headers)
    graph = provenance.activity_graph(provenance.activity_of(task, status_document=True))
    body = await asyncio.to_thread(provenance.serialize, graph, fmt)
    return web.Response(body=body, headers={**headers, "Content-Type": fmt.content_type})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `status` event per change of status or progress, ending with the terminal one."""
    view = await visible_task(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    if request.method == "HEAD":  # the stream's headers, without waiting for its events
        return response
    last: tuple[str, int] | None = None
    tasks = request.app[context.TASKS]
    while True:
        current = (view.task.status.value, view.task.statements)
        if current != last:
            document = status_document(request, view)
            kind = "progress" if last is not None and last[0] == current[0] else "status"
            await response.write(f"event: {kind}\ndata: {json.dumps(document)}\n\n".encode())
            last = current
        if view.task.status.terminal:
            break
        await asyncio.sleep(EVENT_POLL_S)
        view = await tasks.view(view.task.id) or view
    await response.write_eof()
    return response


async def listing(request: web.Request) -> web.Response:
    principal = context.principal(request)
    if principal.anonymous and not principal.admin:  # anonymous tasks are reached by their monitor URL alone
        access = request.app[context.ACCESS]
        raise Unauthorized("listing tasks needs credentials; an anonymous task is reached through its monitor URL",
                           headers={"WWW-Authenticate": access.challenge})
    wanted_status = request.query.get("status")
    if wanted_status is not None and wanted_status not in {s.value for s in TaskStatus}:
        raise BadRequest(f"status must be one of {', '.join(s.value for s in TaskStatus)}, not {wanted_status!r}")
    limit = params.whole_number(request.query["limit"], what="limit") if "limit" in request.query else DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    repository = request.query.get("repository")
    account = None if principal.admin else principal.account
    # Filters apply after the index is read; read enough of it to fill the page in most cases.
    found = await request.app[context.TASKS].listing(account, limit if not (wanted_status or repository)
                                                     else MAX_LIMIT * 5)
    chosen = [v for v in found if (wanted_status is None or v.task.status.value == wanted_status)
              and (repository is None or v.task.repository == repository)][:limit]
    return web.json_response({"tasks": [status_document(request, view) for view in chosen]})


def status_document(request: web.Request, view: View) -> dict[str, Any]:
    task, attempts = view.task, view.attempts
    monitor_url = _monitor(request, task.id)
    document: dict[str, Any] = {
        "id": task.id,
        "status": task.status.value,
        "operation": {"kind": task.operation.kind.value, "method": task.record.method,
                      "target": task.operation.target.describe()},
        "repository": task.repository,
        "user": f"{task.base_url}/{task.account}",
        "created": task.created,
        "started": task.started,
        "ended": task.ended,
        "progress": {"statements": task.statements},
        "tries": task.tries,  # more than 1: the task was taken up again after its worker went away
        "outcome": None if task.result is None else task.result.outcome_json(),
        "error": task.error,
        "request": task.record.public(),
        "client_request_id": task.record.header("Client-Request-ID"),
        "notification": {"location": None if task.terms.notify is None else task.terms.notify.location,
                         "delivery": task.delivery,
                         "error": task.delivery_error,
                         "attempts": [a for a in attempts if a.get("kind", "notification") == "notification"]},
        "callback": {"url": task.terms.callback, "delivery": task.callback,
                     "error": task.callback_error, "attempts": [a for a in attempts if a.get("kind") == "callback"]},
        "links": {"monitor": monitor_url, "status": f"{monitor_url}/status", "events": f"{monitor_url}/events"},
    }
    if task.status is TaskStatus.CANCELLED and task.started and task.operation.kind.reads_only:
        document["cancellation"] = "cancelled while it ran. " + _stopping(task)
    if task.status is TaskStatus.PENDING:
        document["progress"]["queue_position"] = view.queue_position
    return document
