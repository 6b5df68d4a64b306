"""aiohttp's HTTP protocol, answering with problem+json even what it refuses before any middleware runs: a
request it cannot parse, a header field too large (431), no Host.

aiohttp has no hook for those (aio-libs/aiohttp#3287) but its RequestHandler.handle_error, so the application
makes its Server with a RequestHandler that overrides it; AppRunner, and so `web.run_app` (`serve`) and the
test servers, take the Server from the application. aiohttp 4 forbids subclassing Application: this module is
where that will need redoing.
"""

from __future__ import annotations

import warnings
from typing import Any

from aiohttp import web

from graphstore_async.web.middlewares import protocol_problem
from graphstore_async.web.responses import problem


class _ProblemProtocol(web.RequestHandler):
    """aiohttp's HTTP protocol, answering the requests it refuses itself with problem+json."""

    __slots__ = ()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs, and gives up if a response has begun
        response = problem(protocol_problem(status, exc, max_line_size=self.max_line_size,
                                            max_field_size=self.max_field_size))
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _ProblemProtocol(self, loop=self._loop, **self._kwargs)


with warnings.catch_warnings():  # aiohttp discourages subclassing Application; see the module's docstring
    warnings.simplefilter("ignore", DeprecationWarning)

    class ProblemApplication(web.Application):
        def _make_handler(self, **kwargs: Any) -> web.Server:
            made = super()._make_handler(**kwargs)  # the application frozen, and its Server configured
            return _ProblemServer(made.request_handler, request_factory=made.request_factory,
                                  handler_cancellation=made.handler_cancellation, **made._kwargs)
