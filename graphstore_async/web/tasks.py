"""Tasks over HTTP: the status document of an asynchronous request (visible to its submitter and admins)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from graphstore_async.errors import NotFound
from graphstore_async.tasks.records import Task
from graphstore_async.web import context


class TaskNotFound(NotFound):
    title = "Task not found"
    slug = "task-not-found"


async def visible_task(request: web.Request) -> Task:
    """The task named in the path, if the caller may see it: others get 404, so an id leaks nothing."""
    task_id = request.match_info["task_id"]
    task = await request.app[context.TASKS].get(task_id)
    principal = context.principal(request)
    if task is None or not (principal.admin or principal.account == task.account):
        raise TaskNotFound(f"there is no task {task_id}", task=task_id)
    return task


async def status(request: web.Request) -> web.Response:
    task = await visible_task(request)
    return web.json_response(await status_document(request, task))


async def status_document(request: web.Request, task: Task) -> dict[str, Any]:
    base = context.base_url(request)
    monitor = f"{base}/tasks/{task.id}"
    document: dict[str, Any] = {
        "id": task.id,
        "status": task.status.value,
        "operation": {"kind": task.operation.kind.value, "method": task.record.method,
                      "target": task.operation.describe_target()},
        "repository": task.repository,
        "user": f"{task.base_url}/{task.account}",
        "created": task.created,
        "started": task.started,
        "ended": task.ended,
        "progress": {"statements": task.statements},
        "outcome": task.outcome,
        "error": task.error,
        "request": task.record.public(),
        "client_request_id": task.record.header("Client-Request-ID"),
        "notification": {"location": task.record.header("Asynchronous-Location"), "delivery": task.delivery,
                         "attempts": await request.app[context.TASKS].deliveries(task.id)},
        "links": {"monitor": monitor, "status": f"{monitor}/status"},
    }
    if task.status.value == "pending":
        document["progress"]["queue_position"] = await request.app[context.QUEUE].position(task.id)
    return document
