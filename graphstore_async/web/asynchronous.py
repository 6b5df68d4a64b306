"""Notify mode at acceptance (SPEC §3): `Accept-Asynchronous: notify` on any operation.

Everything that can be checked is checked before anything is queued — the handler has already checked
authentication, grants, repository, content type and query/update form; here: the `Asynchronous-*` values, the
notification content type against the operation, and the location against the egress policy. Then the record
and the job are written in one round trip, and the answer is 202 with Request-ID, Location and a JSON body.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from graphstore_async import formats
from graphstore_async.errors import BadRequest, NotAcceptable, Unavailable
from graphstore_async.formats import Format
from graphstore_async.operations import Kind, Operation
from graphstore_async.tasks.delivery import EgressPolicy, EgressRefused
from graphstore_async.tasks.provenance import NOTIFICATION_FORMATS
from graphstore_async.tasks.queue import QueueFullError
from graphstore_async.tasks.records import CAPTURED_HEADERS, RequestRecord, Tasks, new_task_id
from graphstore_async.web import context

RETRY_AFTER_S = 5


class BadAsyncHeader(BadRequest):
    title = "Bad asynchronous request header"
    slug = "bad-async-header"


@dataclass(frozen=True)
class Terms:
    """The checked `Asynchronous-*` terms of a notify-mode request."""

    task_id: str
    location: str | None
    method: str
    encoding: str
    content_type: str | None


def notify_terms(request: web.Request, policy: EgressPolicy) -> Terms | None:
    """None for a synchronous request; the checked terms for `Accept-Asynchronous: notify`; 400 otherwise."""
    mode = request.headers.get("Accept-Asynchronous", "execute").strip().lower()
    if mode == "execute":
        return None
    if mode != "notify":
        raise BadAsyncHeader(f"Accept-Asynchronous must be 'notify' or 'execute', not {mode!r}",
                             header="Accept-Asynchronous")
    method = request.headers.get("Asynchronous-Method", "POST").strip().upper()
    if method not in ("PUT", "POST"):
        raise BadAsyncHeader(f"Asynchronous-Method must be PUT or POST, not {method!r}", header="Asynchronous-Method")
    encoding = request.headers.get("Asynchronous-Content-Encoding", "identity").strip().lower()
    if encoding not in ("gzip", "identity"):
        raise BadAsyncHeader(f"Asynchronous-Content-Encoding must be gzip or identity, not {encoding!r}",
                             header="Asynchronous-Content-Encoding")
    location = request.headers.get("Asynchronous-Location")
    if location is not None:
        location = location.strip()
        try:
            policy.check_url(location, context.base_url(request))
        except EgressRefused as exc:
            raise EgressRefused(f"Asynchronous-Location: {exc.detail}", header="Asynchronous-Location",
                                location=location) from exc
    content_type = request.headers.get("Asynchronous-Content-Type")
    return Terms(new_task_id(), location, method, encoding,
                 formats.media_type_of(content_type) if content_type else None)


def result_format(terms: Terms, offers: Sequence[Format], default: Format) -> Format:
    """The format of a query's or export's result in notify mode: Asynchronous-Content-Type, if we can make it."""
    try:
        return formats.negotiate(terms.content_type, offers, default)
    except NotAcceptable as exc:
        raise BadAsyncHeader(
            f"Asynchronous-Content-Type {terms.content_type} cannot be produced for this operation; available: "
            + ", ".join(f.media_type for f in offers), header="Asynchronous-Content-Type",
        ) from exc


def check_notification_type(terms: Terms, op: Operation) -> None:
    """Imports, updates and deletes notify with the PROV graph: its type must be one we write."""
    if op.kind in (Kind.QUERY, Kind.GRAPH_GET) or terms.content_type is None:
        return
    if terms.content_type not in {f.media_type for f in NOTIFICATION_FORMATS}:
        raise BadAsyncHeader(
            f"Asynchronous-Content-Type {terms.content_type} cannot be produced for a notification; available: "
            + ", ".join(f.media_type for f in NOTIFICATION_FORMATS), header="Asynchronous-Content-Type",
        )


async def submit(request: web.Request, op: Operation, terms: Terms) -> web.Response:
    """Record the request, queue its task, and answer 202."""
    check_notification_type(terms, op)
    tasks = request.app[context.TASKS]
    principal = context.principal(request)
    headers = {name: request.headers[name] for name in CAPTURED_HEADERS if name in request.headers}
    headers.update({"Request-ID": terms.task_id, "Asynchronous-Method": terms.method,
                    "Asynchronous-Content-Encoding": terms.encoding})
    if op.graph is not None:
        headers["Context"] = op.graph
    record = RequestRecord(headers, request.method, op.repository,
                           {key: request.query.getall(key) for key in request.query})
    fields = Tasks.new_fields(terms.task_id, principal.account, op, record, context.base_url(request))
    try:
        await request.app[context.QUEUE].submit(
            terms.task_id, tasks.key(terms.task_id), fields,
            record_ttl_s=tasks.retention_s + int(context.settings(request).job_timeout_s),
            indexes=[tasks.account_index(principal.account)],
        )
    except QueueFullError as exc:
        request.app[context.SPOOL].remove(terms.task_id)
        raise Unavailable("the task queue is full; try again later", headers={"Retry-After": str(RETRY_AFTER_S)},
                          ) from exc
    monitor = f"{context.base_url(request)}/tasks/{terms.task_id}"
    response_headers = {"Request-ID": terms.task_id, "Location": monitor}
    if "Client-Request-ID" in request.headers:
        response_headers["Client-Request-ID"] = request.headers["Client-Request-ID"]
    return web.json_response(
        {"id": terms.task_id, "status": "pending", "user": context.user_iri(request),
         "repository": f"{context.base_url(request)}/{op.repository}", "monitor": monitor,
         "status_url": f"{monitor}/status"},
        status=202, headers=response_headers,
    )


def with_result_type(op: Operation, fmt: Format) -> Operation:
    return dataclasses.replace(op, result_type=fmt.media_type)
