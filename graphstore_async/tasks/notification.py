"""What an ended task sends, made by pure functions of the task: the notification (notify mode) and the
callback (monitor mode's `Prefer: callback`). Both are sent the same way (tasks/delivery.py).

The notification of a completed query or export is its result (the spool file, gzipped already when gzip is
asked); of anything else — an import, update or delete, or a failure — the PROV graph of what the task did,
in the format decided at acceptance (tasks/terms.py `report_format`).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from graphstore_async.tasks import provenance
from graphstore_async.tasks.delivery import Notification
from graphstore_async.tasks.records import Task
from graphstore_async.taskstatus import TaskStatus

NOTIFICATION, CALLBACK = "notification", "callback"


def carries_result(task: Task) -> bool:
    """Whether the task's notification, when it completes, is its result (a query, an export)."""
    return task.terms.notify is not None and task.operation.result_format is not None


def notification_for(task: Task, result: Path, authorization: str | None) -> Notification:
    """The notification of an ended task: `result` (the file kept for it) for a completed query or export, else
    the PROV graph made from the task (small: made on each attempt, the same each time). `authorization`: the
    credential to send, unsealed."""
    notify = task.terms.notify
    assert notify is not None
    headers = {"Request-ID": task.id}
    if authorization:
        headers["Authorization"] = authorization
    if notify.client_request_id:
        headers["Client-Request-ID"] = notify.client_request_id
    if notify.gzip:
        headers["Content-Encoding"] = "gzip"
    body: Path | bytes
    result_format = task.operation.result_format
    if task.status is TaskStatus.COMPLETED and result_format is not None:
        headers["Content-Type"] = result_format.content_type
        body = result
    else:
        headers["Content-Type"] = notify.report_format.content_type
        body = provenance.serialize(provenance.activity_graph(provenance.activity_of(task)), notify.report_format)
        body = gzip.compress(body) if notify.gzip else body
    return Notification(notify.location, notify.method, headers, body, task.id)


def callback_for(task: Task) -> Notification:
    """Prefer: callback — a GET to the URL once the task has ended."""
    assert task.terms.callback is not None
    return Notification(task.terms.callback, "GET", {"Request-ID": task.id}, None, f"{task.id}-callback")
