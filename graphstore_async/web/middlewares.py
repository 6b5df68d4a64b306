"""The middleware: every request is counted and logged in one line; every error becomes problem+json; every request
gets its principal.

What aiohttp's HTTP protocol refuses before any middleware runs (a request it cannot parse, a header too large,
no Host) becomes problem+json too: protocol_problem says which, and app.py's protocol answers it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from http import HTTPStatus

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from graphstore_async import errors, logs
from graphstore_async.metrics import CLIENT_CLOSED, UNMATCHED
from graphstore_async.web.context import ACCESS, METRICS, PRINCIPAL
from graphstore_async.web.responses import problem

log = logging.getLogger(__name__)
REDIS_RETRY_AFTER_S = 5

_BY_STATUS: dict[int, type[errors.GraphStoreError]] = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    406: errors.NotAcceptable,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType,
    503: errors.Unavailable,
}


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request, in one middleware (each layer of middleware costs every request a coroutine and aiohttp's
    wrapper around it): its id on every line logged while it is handled; its principal; errors made problems
    (`problem_for`); then, seeing the status of the problem made of an error, its metrics and its one log line
    (graphstore_async.metrics)."""
    logs.REQUEST_ID.set(f"{random.getrandbits(128):032x}")  # an id for log lines, no secret: no system call
    started = time.perf_counter()
    status, task_id = 500, request.match_info.get("task_id")
    try:
        try:
            request[PRINCIPAL] = request.app[ACCESS].authenticate(request.headers.get("Authorization"))
            response = await handler(request)
        except Exception as exc:
            response = problem_for(request, exc)
        status, task_id = response.status, response.headers.get("Request-ID", task_id)
        return response
    except web.HTTPException as exc:  # a redirect, which problem_for lets through
        status = exc.status
        raise
    except asyncio.CancelledError:  # the server is stopping and gave up on it (or the client left)
        status = CLIENT_CLOSED
        raise
    finally:
        principal = request.get(PRINCIPAL)
        request.app[METRICS].request(method=request.method, route=route_of(request), status=status,
                                     duration_s=time.perf_counter() - started, path=request.rel_url.raw_path,
                                     user=principal.account if principal else None, task_id=task_id)


def route_of(request: web.Request) -> str:
    """The template of the route that matched (`/{account}/{repo}/sparql`), never the path: labels stay few. A
    method the resource has no handler for (app.py's route for any other method: 405) matched no route."""
    route = request.match_info.route
    if route.resource is None or (route.method == hdrs.METH_ANY and request.method != hdrs.METH_OPTIONS):
        return UNMATCHED
    return route.resource.canonical


def problem_for(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The problem+json answer for an error (`exc` is raised again when it is a redirect)."""
    if isinstance(exc, errors.GraphStoreError):
        request.app[METRICS].count_redis_error(exc)
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.detail)
        return problem(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return problem(_from_http(exc, request))
    if isinstance(exc, RedisError):  # Redis away: asynchronous work and /tasks wait for it; synchronous work goes on
        request.app[METRICS].count_redis_error(exc)
        log.warning("%s %s: Redis is unreachable: %s", request.method, request.path, exc)
        return problem(errors.TasksUnavailable(
            "asynchronous requests and task state are unavailable: the task store (Redis) does not answer; "
            "synchronous requests still work", headers={"Retry-After": str(REDIS_RETRY_AFTER_S)}))
    if isinstance(exc, ConnectionError) and _client_gone(request):
        return _client_closed(request)
    log.error("%s %s failed", request.method, request.path, exc_info=exc)
    return problem(errors.GraphStoreError("the server failed to handle this request; the failure is logged"))


def _client_gone(request: web.Request) -> bool:
    """Whether the client's own connection is closed (and not, say, a store's or a receiver's)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _client_closed(request: web.Request) -> web.StreamResponse:
    """The client went away before the answer was complete — often after reading all of it, before the final
    chunk: nothing went wrong here, so no traceback (aiohttp's ClientConnectionResetError "Cannot write to
    closing transport"). The answer made for it is never sent: aiohttp, finding the transport closed, drops it
    quietly; it is logged with status 499."""
    log.debug("%s %s: the client closed the connection before the answer was complete", request.method,
              request.path)
    return web.Response(status=CLIENT_CLOSED)


def _from_http(exc: web.HTTPException, request: web.Request) -> errors.GraphStoreError:
    """aiohttp's own errors (no route, wrong method, body over client_max_size) as our problems."""
    kind = _BY_STATUS.get(exc.status, errors.BadRequest)
    headers = {name: value for name, value in exc.headers.items() if name.lower() in ("allow", "retry-after")}
    if exc.status == 405:
        detail = f"{request.method} is not allowed on {request.path}; allowed: {exc.headers.get('Allow', '')}"
    elif exc.status == 404:
        detail = f"nothing is at {request.path}"
    else:
        detail = exc.text or HTTPStatus(exc.status).phrase
    return kind(detail, headers=headers)


def protocol_problem(status: int, exc: BaseException | None, *, max_line_size: int,
                     max_field_size: int) -> errors.GraphStoreError:
    """An error aiohttp's protocol found in a request before routing it (aiohttp.http_exceptions), as ours.
    Which line was too long shows only in the limit it passed (the request line's or a header field's)."""
    if isinstance(exc, LineTooLong):  # its arguments: the start of the line, the limit it passed
        if len(exc.args) > 1 and exc.args[1] == max_line_size != max_field_size:
            return errors.URITooLong(f"the request line is longer than {max_line_size} bytes")
        return errors.HeadersTooLarge(f"a header field is longer than {exc.args[1]} bytes"
                                      if len(exc.args) > 1 else "a header field is too long")
    if isinstance(exc, HttpProcessingError) and exc.message.startswith("Too many headers"):
        return errors.HeadersTooLarge("the request has more header fields than the server reads")
    if isinstance(exc, HttpProcessingError) and 400 <= status < 500:
        return _BY_STATUS.get(status, errors.BadRequest)(
            f"the request is not valid HTTP: {exc.message or HTTPStatus(status).phrase}")
    return errors.GraphStoreError("the server failed to handle this request; the failure is logged")
