"""The exception tree. Each class knows its HTTP status; one middleware turns them into problem+json.

GraphStoreError (500)
  ClientError (4xx)
    BadRequest (400)
      SyntaxProblem(line, column) — RDF, SPARQL query or update that does not parse
      UpdateFailed — an update that parsed but failed (e.g. CLEAR of a graph that is not there)
      DatasetConflict — protocol dataset given together with USING/WITH
      BadEncoding — Content-Encoding that we cannot decode, or a truncated/oversized gzip stream
    Unauthorized (401), Forbidden (403)
    NotFound (404) — RepositoryNotFound, GraphNotFound, ViewNotFound, TaskNotFound
    TaskGone (410) — a task past its retention
    MethodNotAllowed (405), NotAcceptable (406), Conflict (409) — Cancelled
    PayloadTooLarge (413), UnsupportedMediaType (415)
  Unavailable (503) — StoreUnavailable
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


class Unavailable(GraphStoreError):
    status = 503
    title = "Service unavailable"
    slug = "unavailable"


class StoreUnavailable(Unavailable):
    title = "Store unavailable"
    slug = "store-unavailable"
