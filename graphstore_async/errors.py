"""The exception tree. Each class knows its HTTP status; one middleware turns them into problem+json.

GraphStoreError (500)
  ClientError (4xx)
    BadRequest (400)
      SyntaxProblem(line, column) — RDF, SPARQL query or update that does not parse
      UpdateFailed — an update that parsed but failed (e.g. CLEAR of a graph that is not there)
      DatasetConflict — protocol dataset given together with USING/WITH
      BadEncoding — Content-Encoding that we cannot decode, or a truncated/oversized gzip stream
      TooComplex — nesting or size past what the engine is trusted with
      FetchRefused — SERVICE or LOAD where the server may not fetch that URL
    Unauthorized (401), Forbidden (403)
    NotFound (404) — RepositoryNotFound, GraphNotFound, ViewNotFound, TaskNotFound
    TaskGone (410) — a task past its retention
    MethodNotAllowed (405), NotAcceptable (406), Conflict (409) — Cancelled
    PayloadTooLarge (413), URITooLong (414), UnsupportedMediaType (415), HeadersTooLarge (431)
    UnprocessablePatch (422) — a PATCH whose update reaches beyond its target graph (RFC 5789 §2.2)
  Unavailable (503) — StoreUnavailable, TasksUnavailable (Redis away), QueryTimeout (past its time limit),
    TooManyQueries (the account's share of query threads is taken)
  WorkerCrashed (500) — a task whose worker died too often running it
  BadGateway (502) — a LOAD source that could not be fetched
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

PROBLEM_BASE = "tag:graphstore-async,2026:problem/"


class GraphStoreError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem object."""
        body: dict[str, Any] = {
            "type": self.type_uri, "title": self.title, "status": self.status, "detail": self.detail,
        }
        body.update({k: v for k, v in self.extensions.items() if v is not None})
        return body


class ClientError(GraphStoreError):
    status = 400
    title = "Bad request"
    slug = "bad-request"


class BadRequest(ClientError):
    pass


class SyntaxProblem(BadRequest):
    """Input that does not parse; line and column are 1-based when known."""

    title = "Syntax error"
    slug = "syntax-error"

    def __init__(self, detail: str, *, line: int | None = None, column: int | None = None, **extensions: Any) -> None:
        super().__init__(detail, line=line, column=column, **extensions)
        self.line = line
        self.column = column


class UpdateFailed(BadRequest):
    """A SPARQL update that parsed but could not be carried out (it changed nothing: updates are atomic)."""

    title = "Update failed"
    slug = "update-failed"


class DatasetConflict(BadRequest):
    title = "Conflicting dataset"
    slug = "dataset-conflict"


class BadEncoding(BadRequest):
    title = "Bad content encoding"
    slug = "bad-encoding"


class Unauthorized(ClientError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(ClientError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(ClientError):
    status = 404
    title = "Not found"
    slug = "not-found"


class RepositoryNotFound(NotFound):
    title = "Repository not found"
    slug = "repository-not-found"


class GraphNotFound(NotFound):
    title = "Graph not found"
    slug = "graph-not-found"


class ViewNotFound(NotFound):
    title = "View not found"
    slug = "view-not-found"


class TaskNotFound(NotFound):
    title = "Task not found"
    slug = "task-not-found"


class TaskGone(ClientError):
    status = 410
    title = "Task expired"
    slug = "task-expired"


class MethodNotAllowed(ClientError):
    status = 405
    title = "Method not allowed"
    slug = "method-not-allowed"


class NotAcceptable(ClientError):
    status = 406
    title = "Not acceptable"
    slug = "not-acceptable"


class Conflict(ClientError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class Cancelled(Conflict):
    """A task stopped because its submitter cancelled it."""

    title = "Cancelled"
    slug = "cancelled"


class PayloadTooLarge(ClientError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class UnsupportedMediaType(ClientError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class UnprocessablePatch(ClientError):
    """A PATCH whose SPARQL update parses but cannot be confined to the target graph (RFC 5789 §2.2)."""

    status = 422
    title = "Unprocessable patch"
    slug = "unprocessable-patch"


class Unavailable(GraphStoreError):
    status = 503
    title = "Service unavailable"
    slug = "unavailable"


class StoreUnavailable(Unavailable):
    title = "Store unavailable"
    slug = "store-unavailable"


class TooComplex(BadRequest):
    """A query, an update or an RDF body past the bounds the engine is trusted with (nesting, size)."""

    title = "Input too complex"
    slug = "too-complex"


class FetchRefused(BadRequest):
    """SPARQL that would make the server fetch a URL (SERVICE, LOAD) where that is not allowed."""

    title = "Fetching refused"
    slug = "fetch-refused"


class WorkerCrashed(GraphStoreError):
    """A task whose worker died (a crash of native code, kill -9) too many times while running it."""

    title = "Worker crashed"
    slug = "worker-crashed"


class URITooLong(ClientError):
    """A request line longer than the server reads (aiohttp's max_line_size)."""

    status = 414
    title = "URI too long"
    slug = "uri-too-long"


class HeadersTooLarge(ClientError):
    """A header field longer than max_header_bytes, or more header fields than the server reads."""

    status = 431
    title = "Request header fields too large"
    slug = "headers-too-large"


class BadGateway(GraphStoreError):
    """A URL the server fetched for the client (SPARQL LOAD) did not give what was asked for."""

    status = 502
    title = "Bad gateway"
    slug = "bad-gateway"


class TasksUnavailable(Unavailable):
    """The task store (Redis) does not answer: asynchronous requests wait for it."""

    title = "Tasks unavailable"
    slug = "tasks-unavailable"


class QueryTimeout(Unavailable):
    """A query that did not finish within its time limit (query_timeout_s, task_query_timeout_s, or the request's
    `timeout`): its answer is abandoned."""

    title = "Query time-out"
    slug = "query-timeout"


class TooManyQueries(Unavailable):
    """An account already runs as many queries as it may (max_queries_per_account), and none ended in time."""

    title = "Too many queries"
    slug = "too-many-queries"


class QueueFull(Unavailable):
    """The task queue holds queue_limit tasks: a new one is refused, with nothing of it left behind."""

    title = "Task queue full"
    slug = "queue-full"
    RETRY_AFTER_S = 5

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_S)}, **extensions)


class BadAsyncHeader(BadRequest):
    """An `Accept-Asynchronous`, `Asynchronous-*` or `Prefer` value we cannot act on."""

    title = "Bad asynchronous request header"
    slug = "bad-async-header"


class EgressRefused(BadRequest):
    """A URL the server would send to or fetch from, refused by the egress policy (egress.py)."""

    title = "URL refused by the egress policy"
    slug = "egress-refused"


class RefusedAddress(OSError):
    """Raised where a connection is made (resolver, socket factory): the policy refuses that address. An OSError,
    so that the HTTP client reports it as a connection failure."""


# Every problem class, by its type URI: the client's one table from an answer's type to its class.
PROBLEM_CLASSES: tuple[type[GraphStoreError], ...] = (
    GraphStoreError, BadRequest, SyntaxProblem, UpdateFailed, DatasetConflict, BadEncoding, Unauthorized, Forbidden,
    NotFound, RepositoryNotFound, GraphNotFound, ViewNotFound, TaskNotFound, TaskGone, MethodNotAllowed,
    NotAcceptable, Conflict, Cancelled, PayloadTooLarge, UnsupportedMediaType, Unavailable, StoreUnavailable,
    TooComplex, FetchRefused, WorkerCrashed, URITooLong, HeadersTooLarge, BadGateway, TasksUnavailable, QueryTimeout,
    TooManyQueries, QueueFull, BadAsyncHeader, EgressRefused, UnprocessablePatch,
)
PROBLEM_TYPES: dict[str, type[GraphStoreError]] = {PROBLEM_BASE + cls.slug: cls for cls in PROBLEM_CLASSES}
# An answer without a known type: the most general class of its status.
BY_STATUS: dict[int, type[GraphStoreError]] = {cls.status: cls for cls in reversed(PROBLEM_CLASSES)}
