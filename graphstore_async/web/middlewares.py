"""Middlewares: every error becomes problem+json; every request gets its principal.

What aiohttp's HTTP protocol refuses before any middleware runs (a request it cannot parse, a header too large,
no Host) becomes problem+json too: protocol_problem says which, and app.py's protocol answers it.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.typedefs import Handler

from graphstore_async import errors
from graphstore_async.web.context import ACCESS, PRINCIPAL
from graphstore_async.web.responses import problem

log = logging.getLogger(__name__)

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
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.GraphStoreError as exc:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.detail)
        return problem(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(_from_http(exc, request))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return problem(errors.GraphStoreError("the server failed to handle this request; the failure is logged"))


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


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[PRINCIPAL] = request.app[ACCESS].authenticate(request.headers.get("Authorization"))
    return await handler(request)
