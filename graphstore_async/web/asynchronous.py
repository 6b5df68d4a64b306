"""Asynchronous requests at acceptance: notify mode (SPEC §3, `Accept-Asynchronous: notify`) and monitor mode
(SPEC §4, `Prefer: respond-async`, `wait=N`, `callback; url=U`), alone or together — one path, one task.

Everything that can be checked is checked before anything is queued — the handler has already checked
authentication, grants, repository, content type and query/update form; here: the `Asynchronous-*` values, the
notification content type against the operation, the locations against the egress policy, and a client's
Request-ID (an idempotency key). Then the record and the job are written in one round trip, and the answer is
202 with Request-ID, Location and a JSON body — or, with `wait=N` and a task done in time, the ordinary answer.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from graphstore_async import formats
from graphstore_async.egress import EgressPolicy, EgressRefused
from graphstore_async.errors import BadRequest, NotAcceptable, Unavailable
from graphstore_async.formats import Format
from graphstore_async.operations import Kind, Operation
from graphstore_async.tasks.idempotency import fingerprint
from graphstore_async.tasks.provenance import NOTIFICATION_FORMATS
from graphstore_async.tasks.queue import QueueFullError
from graphstore_async.tasks.records import Tasks, new_task_id
from graphstore_async.tasks.request import CAPTURED_HEADERS, RequestRecord
from graphstore_async.web import context
from graphstore_async.web.monitor import result_response, wait_for_end
from graphstore_async.web.preferences import Preferences, parse_prefer

RETRY_AFTER_S = 5  # a full queue
RETRY_AFTER_MONITOR_S = 1  # a task's monitor
RESENT_HEADERS = ("Client-Request-ID", "Asynchronous-Authorization", "Authorization")  # the location: egress.py
_VISIBLE_ASCII = re.compile(r"[\x20-\x7e\t]*")


class BadAsyncHeader(BadRequest):
    title = "Bad asynchronous request header"
    slug = "bad-async-header"


@dataclass(frozen=True)
class Terms:
    """The checked asynchronous terms of a request: notify mode's `Asynchronous-*`, monitor mode's Prefer."""

    task_id: str
    notify: bool
    location: str | None
    method: str
    encoding: str
    content_type: str | None
    preferences: Preferences


def async_terms(request: web.Request, policy: EgressPolicy) -> Terms | None:
    """None for a synchronous request; the checked terms of an asynchronous one; 400 for bad values."""
    mode = request.headers.get("Accept-Asynchronous", "execute").strip().lower()
    if mode not in ("notify", "execute"):
        raise BadAsyncHeader(f"Accept-Asynchronous must be 'notify' or 'execute', not {mode!r}",
                             header="Accept-Asynchronous")
    preferences = parse_prefer(request.headers.getall("Prefer", []))
    if mode == "execute" and not preferences.asynchronous:
        return None
    _check_resendable(request)
    if preferences.callback_url is not None:
        _check_location(policy, request, preferences.callback_url, "Prefer")
    method = request.headers.get("Asynchronous-Method", "POST").strip().upper()
    if method not in ("PUT", "POST"):
        raise BadAsyncHeader(f"Asynchronous-Method must be PUT or POST, not {method!r}", header="Asynchronous-Method")
    encoding = request.headers.get("Asynchronous-Content-Encoding", "identity").strip().lower()
    if encoding not in ("gzip", "identity"):
        raise BadAsyncHeader(f"Asynchronous-Content-Encoding must be gzip or identity, not {encoding!r}",
                             header="Asynchronous-Content-Encoding")
    location = request.headers.get("Asynchronous-Location") if mode == "notify" else None
    if location is not None:
        location = location.strip()
        _check_location(policy, request, location, "Asynchronous-Location")
    content_type = request.headers.get("Asynchronous-Content-Type")
    return Terms(new_task_id(), mode == "notify", location, method, encoding,
                 formats.media_type_of(content_type) if content_type else None, preferences)


def _check_resendable(request: web.Request) -> None:
    """The headers a notification sends again must be sendable again: visible ASCII (a value aiohttp decoded
    from bytes that are not UTF-8, or one with control characters, would make the notification impossible)."""
    for name in RESENT_HEADERS:
        value = request.headers.get(name)
        if value is not None and not _VISIBLE_ASCII.fullmatch(value):
            raise BadAsyncHeader(f"{name} must be printable ASCII: a notification carries it again", header=name)


def _check_location(policy: EgressPolicy, request: web.Request, url: str, header: str) -> None:
    """400 unless the policy lets the server send to `url`; the own origin from configuration or the socket."""
    try:
        policy.check_url(url, context.own_origin(request))
    except EgressRefused as exc:
        raise EgressRefused(f"{header}: {exc.detail}", header=header, location=exc.extensions.get("location"),
                            ) from exc  # the location as the policy shows it: credentials masked


def result_format(request: web.Request, terms: Terms, offers: Sequence[Format], default: Format) -> Format:
    """The format of a query's or export's result when it runs as a task: Asynchronous-Content-Type if given
    (400 if we cannot make it); else, in monitor mode alone, the request's Accept (the monitor will answer it);
    else the default."""
    if terms.content_type is None:
        accept = None if terms.notify else request.headers.get("Accept")
        return formats.negotiate(accept, offers, default)
    try:
        return formats.negotiate(terms.content_type, offers, default)
    except NotAcceptable as exc:
        raise BadAsyncHeader(
            f"Asynchronous-Content-Type {terms.content_type} cannot be produced for this operation; available: "
            + ", ".join(f.media_type for f in offers), header="Asynchronous-Content-Type",
        ) from exc


def check_notification_type(terms: Terms, kind: Kind) -> None:
    """Imports, updates and deletes notify with the PROV graph: its type must be one we write."""
    if kind in (Kind.QUERY, Kind.GRAPH_GET) or terms.content_type is None:
        return
    if terms.content_type not in {f.media_type for f in NOTIFICATION_FORMATS}:
        raise BadAsyncHeader(
            f"Asynchronous-Content-Type {terms.content_type} cannot be produced for a notification; available: "
            + ", ".join(f.media_type for f in NOTIFICATION_FORMATS), header="Asynchronous-Content-Type",
        )


async def submit(request: web.Request, op: Operation, terms: Terms, body_digests: Sequence[str]
                 ) -> web.StreamResponse:
    """Record the request, queue its task, and answer 202 (or, with `wait=N`, the result if it is ready)."""
    check_notification_type(terms, op.kind)
    principal = context.principal(request)
    client_key = request.headers.get("Request-ID")
    if client_key:
        print_ = fingerprint(request.method, request.path_qs, body_digests)
        held = await request.app[context.IDEMPOTENCY].claim(principal, client_key, print_, terms.task_id)
        if held is not None:  # the same request again: the task it already has, nothing new queued
            request.app[context.SPOOL].remove(terms.task_id)
            return await _accepted(request, dataclasses.replace(terms, task_id=held), op)
    try:
        await _queue(request, op, terms)
    except BaseException:
        if client_key:
            await request.app[context.IDEMPOTENCY].release(principal, client_key, print_)
        raise
    return await _accepted(request, terms, op)


async def _queue(request: web.Request, op: Operation, terms: Terms) -> None:
    tasks = request.app[context.TASKS]
    principal = context.principal(request)
    headers = {name: request.headers[name] for name in CAPTURED_HEADERS if name in request.headers}
    headers["Request-ID"] = terms.task_id
    if terms.notify:
        headers.update({"Asynchronous-Method": terms.method, "Asynchronous-Content-Encoding": terms.encoding})
    if terms.preferences.callback_url:
        headers["Prefer-Callback"] = terms.preferences.callback_url
    if op.graph is not None:
        headers["Context"] = op.graph
    own = context.own_origin(request)
    record = RequestRecord(tasks.sealed(headers, own), request.method, op.repository,
                           {key: request.query.getall(key) for key in request.query})
    fields = Tasks.new_fields(terms.task_id, principal.account, op, record, context.base_url(request))
    try:
        await request.app[context.QUEUE].submit(
            terms.task_id, tasks.key(terms.task_id), fields,
            record_ttl_s=tasks.retention_s + int(context.settings(request).job_timeout_s),
            indexes=[tasks.account_index(principal.account), tasks.all_index],
        )
    except QueueFullError as exc:  # the caller removes what it spooled for the task
        raise Unavailable("the task queue is full; try again later", headers={"Retry-After": str(RETRY_AFTER_S)},
                          ) from exc
    request.app[context.METRICS].task_event(terms.task_id, "pending", kind=op.kind, user=principal.account)


async def _accepted(request: web.Request, terms: Terms, op: Operation) -> web.StreamResponse:
    """202, unless `wait=N` asked to wait and the task ended in time: then the ordinary response."""
    preferences = terms.preferences
    if preferences.wait_s:  # however long the client asks for, no longer than the operator allows
        wait_s = min(preferences.wait_s, context.settings(request).max_wait_s)
        task = await wait_for_end(request.app[context.TASKS], terms.task_id, wait_s)
        if task is not None and task.status.terminal:
            return await result_response(request, task, synchronous=True)
    monitor = f"{context.base_url(request)}/tasks/{terms.task_id}"
    headers = {"Request-ID": terms.task_id, "Location": monitor, "Retry-After": str(RETRY_AFTER_MONITOR_S)}
    applied = [name for name, on in (("respond-async", preferences.respond_async),
                                     ("callback", preferences.callback_url is not None)) if on]
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    if "Client-Request-ID" in request.headers:
        headers["Client-Request-ID"] = request.headers["Client-Request-ID"]
    return web.json_response(
        {"id": terms.task_id, "status": "pending", "user": context.user_iri(request),
         "repository": f"{context.base_url(request)}/{op.repository}", "monitor": monitor,
         "status_url": f"{monitor}/status"},
        status=202, headers=headers,
    )
