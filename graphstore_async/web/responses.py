"""Writing responses: streamed bodies (gzip on request), the same headers without the body for a HEAD whose GET
would stream one, problem+json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from aiohttp import web

from graphstore_async.errors import GraphStoreError
from graphstore_async.formats import PROBLEM_JSON, Format
from graphstore_async.operations import Outcome
from graphstore_async.store import ByteStream
from graphstore_async.store.streams import ThreadStream, Whole


def accepts_gzip(request: web.Request) -> bool:
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, *params = (p.strip() for p in item.split(";"))
        if coding.lower() in ("gzip", "x-gzip"):
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params)
    return False


async def stream(
    request: web.Request,
    body: ByteStream,
    fmt: Format,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Send `body` as it is produced; the stream is closed whatever happens (e.g. the client goes away). A body
    already whole (a small result: store/streams.py) is sent as one, with its length: one write, not three."""
    whole = body.whole if isinstance(body, ThreadStream | Whole) else None
    if whole is not None:
        await body.aclose()
        return _whole(request, whole, fmt, status, headers)
    response = _described(request, web.StreamResponse(status=status, headers=headers), fmt)
    try:
        await response.prepare(request)
        if request.method != "HEAD":
            async for chunk in body:
                await response.write(chunk)
        await response.write_eof()
    except GraphStoreError:
        # Once the status and part of the body are sent the answer cannot become a problem (the problem made of
        # it would be written into the body): the connection is cut before the body's end instead, so that no
        # client takes the part for the whole. E.g. a query past its time limit while its result streams.
        if response.prepared and request.transport is not None:
            request.transport.close()
        raise
    finally:
        await body.aclose()
    return response


def _whole(request: web.Request, body: bytes, fmt: Format, status: int,
           headers: Mapping[str, str] | None) -> web.Response:
    return _described(request, web.Response(status=status, headers=headers, body=body), fmt)


def headers_only(request: web.Request, fmt: Format, *, status: int = 200) -> web.StreamResponse:
    """The answer to a HEAD whose GET would stream a body in `fmt`: the headers `stream` would send."""
    return _described(request, web.StreamResponse(status=status), fmt)


_Response = TypeVar("_Response", bound=web.StreamResponse)


def _described(request: web.Request, response: _Response, fmt: Format) -> _Response:
    """A body's headers: its type, what it varies on, and gzip when the client takes it."""
    response.headers["Content-Type"] = fmt.content_type
    response.headers["Vary"] = "Accept, Accept-Encoding"
    return gzipped(request, response)


def gzipped(request: web.Request, response: _Response) -> _Response:
    """The response gzipped if the client takes gzip. A streamed answer to a HEAD only says so: aiohttp's
    compressor would write the end of an empty gzip stream (20 bytes) after a HEAD's headers, where no body may
    be. A whole body is compressed at once, and a HEAD sends none of it but its compressed length."""
    if not accepts_gzip(request):
        return response
    if request.method == "HEAD" and not isinstance(response, web.Response):
        response.headers["Content-Encoding"] = web.ContentCoding.gzip.value
    else:
        response.enable_compression(web.ContentCoding.gzip)
    return response


async def respond(request: web.Request, outcome: Outcome) -> web.StreamResponse:
    """The synchronous HTTP response for an operation's outcome."""
    if outcome.body is not None:
        assert outcome.format is not None
        return await stream(request, outcome.body, outcome.format, status=outcome.status)
    headers = {"Location": outcome.location} if outcome.location else None
    return web.Response(status=outcome.status, headers=headers)


def problem(error: GraphStoreError) -> web.Response:
    response = web.Response(
        status=error.status,
        body=json.dumps(error.problem()).encode(),
        headers=error.headers,
    )
    response.headers["Content-Type"] = PROBLEM_JSON
    return response
