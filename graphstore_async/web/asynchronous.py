"""Asynchronous requests at acceptance: notify mode (SPEC §3, `Accept-Asynchronous: notify`) and monitor mode
(SPEC §4, `Prefer: respond-async`, `wait=N`, `callback; url=U`), alone or together — one path, one task.

Everything that can be checked is checked before anything is queued — the handler has already checked
authentication, grants, repository, content type and query/update form; here: the `Asynchronous-*` values, the
notification's format against the operation, the locations against the egress policy, and a client's Request-ID
(an idempotency key). The terms are decided once, as a typed value the worker reads (tasks/terms.py), and the
task is submitted by tasks/submission.py (claim, record and job at once). The answer is 202 with Request-ID,
Location and a JSON body — or, with `wait=N` and a task done in time, the ordinary answer.

`run_or_submit` is the one path from "request parsed" to "run now or submit", for the graph store, SPARQL and
views alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from graphstore_async import formats
from graphstore_async.egress import EgressPolicy
from graphstore_async.errors import BadAsyncHeader, EgressRefused, NotAcceptable
from graphstore_async.formats import Format
from graphstore_async.operations import FetchSource, Operation, execute
from graphstore_async.store import Store
from graphstore_async.tasks.credentials import may_forward
from graphstore_async.tasks.idempotency import fingerprint
from graphstore_async.tasks.records import NewTask, new_task_id
from graphstore_async.tasks.request import CAPTURED_HEADERS, RequestRecord
from graphstore_async.tasks.submission import RequestKey
from graphstore_async.tasks.terms import Notify, Terms, report_format
from graphstore_async.web import context
from graphstore_async.web.monitor import result_response, wait_for_end
from graphstore_async.web.preferences import Preferences, parse_prefer
from graphstore_async.web.responses import respond

RETRY_AFTER_MONITOR_S = 1  # a task's monitor
RESENT_HEADERS = ("Client-Request-ID", "Asynchronous-Authorization", "Authorization")  # the location: egress.py
_VISIBLE_ASCII = re.compile(r"[\x20-\x7e\t]*")


@dataclass(frozen=True)
class Asked:
    """What an asynchronous request asks, read from its headers and checked: notify mode's `Asynchronous-*`,
    monitor mode's Prefer."""

    task_id: str
    notify: bool
    location: str | None
    method: str
    encoding: str
    content_type: str | None
    preferences: Preferences


def asked_of(request: web.Request, policy: EgressPolicy) -> Asked | None:
    """None for a synchronous request; the checked terms of an asynchronous one; 400 for bad values."""
    if request.method == "HEAD":  # answers what GET would, without its body: never a task
        return None
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
    return Asked(new_task_id(), mode == "notify", location, method, encoding,
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


def result_format(request: web.Request, asked: Asked, offers: Sequence[Format], default: Format) -> Format:
    """The format of a query's or export's result when it runs as a task: Asynchronous-Content-Type if given
    (400 if we cannot make it); else, in monitor mode alone, the request's Accept (the monitor will answer it);
    else the default."""
    if asked.content_type is None:
        accept = None if asked.notify else request.headers.get("Accept")
        return formats.negotiate(accept, offers, default)
    try:
        return formats.negotiate(asked.content_type, offers, default)
    except NotAcceptable as exc:
        raise BadAsyncHeader(
            f"Asynchronous-Content-Type {asked.content_type} cannot be produced for this operation; available: "
            + ", ".join(f.media_type for f in offers), header="Asynchronous-Content-Type",
        ) from exc


def terms_of(request: web.Request, asked: Asked, result: Format | None) -> Terms:
    """The task's terms, decided once: where and how its notification goes (its format strictly: 400 for one
    we cannot write), the credential it carries (sealed; the caller's own only where it may go), its callback.
    `result`: the format of the operation's result, None for an operation without one."""
    fmt = report_format(asked.content_type, result=result)  # checked in monitor mode too: the same request
    callback = asked.preferences.callback_url
    if asked.location is None:
        return Terms(None, callback)
    own = context.own_origin(request)
    authorization, forwarded = request.headers.get("Asynchronous-Authorization"), False
    if authorization is None and request.headers.get("Authorization") and may_forward(
            asked.location, own, context.settings(request).notify_forward_auth_to):
        authorization, forwarded = request.headers["Authorization"], True
    sealer = request.app[context.TASKS].sealer
    return Terms(Notify(asked.location, asked.method, fmt, asked.encoding == "gzip",
                        None if authorization is None else sealer.seal(authorization), forwarded,
                        request.headers.get("Client-Request-ID")), callback)


async def run_or_submit(request: web.Request, store: Store, op: Operation, asked: Asked | None,
                        terms: Terms | None, body_digests: Sequence[str], *, fetch: FetchSource | None = None,
                        ) -> web.StreamResponse:
    """The one path from a parsed request: run it now and answer, or submit it as a task and answer 202."""
    if asked is None:
        return await respond(request, await execute(op, store, fetch=fetch))
    return await submit(request, op, asked, terms or terms_of(request, asked, op.result_format), body_digests)


async def submit(request: web.Request, op: Operation, asked: Asked, terms: Terms, body_digests: Sequence[str]
                 ) -> web.StreamResponse:
    """Submit the task (tasks/submission.py: from here on its spooled bodies are the task's), then answer 202 —
    or, with `wait=N`, the result if it is ready in time."""
    principal = context.principal(request)
    client_key = request.headers.get("Request-ID")
    key = None if not client_key else RequestKey(
        principal, client_key, fingerprint(request.method, request.path_qs, body_digests))
    task = NewTask(asked.task_id, principal.account, op, terms, _record(request, op, asked), context.base_url(request))
    task_id = await request.app[context.SUBMISSION].submit(task, key)
    if task_id == task.id:
        request.app[context.METRICS].task_event(task_id, "pending", kind=op.kind, user=principal.account)
    return await _accepted(request, task_id, asked.preferences, op)


def _record(request: web.Request, op: Operation, asked: Asked) -> RequestRecord:
    """The request record (SPEC §3): the terms of the request as headers, for display — credentials masked: the
    one the notification needs is sealed in the terms."""
    headers = {name: request.headers[name] for name in CAPTURED_HEADERS if name in request.headers}
    headers["Request-ID"] = asked.task_id
    if asked.notify:
        headers.update({"Asynchronous-Method": asked.method, "Asynchronous-Content-Encoding": asked.encoding})
    if asked.preferences.callback_url:
        headers["Prefer-Callback"] = asked.preferences.callback_url
    if op.graph is not None:
        headers["Context"] = op.graph
    return RequestRecord(headers, request.method, op.repository,
                         {key: request.query.getall(key) for key in request.query}).without_credentials()


async def _accepted(request: web.Request, task_id: str, preferences: Preferences, op: Operation,
                    ) -> web.StreamResponse:
    """202, unless `wait=N` asked to wait and the task ended in time: then the ordinary response."""
    if preferences.wait_s:  # however long the client asks for, no longer than the operator allows
        wait_s = min(preferences.wait_s, context.settings(request).max_wait_s)
        task = await wait_for_end(request.app[context.TASKS], task_id, wait_s)
        if task is not None and task.status.terminal:
            return await result_response(request, task, synchronous=True)
    monitor = f"{context.base_url(request)}/tasks/{task_id}"
    headers = {"Request-ID": task_id, "Location": monitor, "Retry-After": str(RETRY_AFTER_MONITOR_S)}
    applied = [name for name, on in (("respond-async", preferences.respond_async),
                                     ("callback", preferences.callback_url is not None)) if on]
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    if "Client-Request-ID" in request.headers:
        headers["Client-Request-ID"] = request.headers["Client-Request-ID"]
    return web.json_response(
        {"id": task_id, "status": "pending", "user": context.user_iri(request),
         "repository": f"{context.base_url(request)}/{op.repository}", "monitor": monitor,
         "status_url": f"{monitor}/status"},
        status=202, headers=headers,
    )
