"""What the client raises. Every exception is a ClientError, so one `except ClientError` catches them all:

ClientError — anything the client raises
  TransportError — no HTTP answer: connection refused or reset, DNS, a time-out of the request itself
  HTTPError(status, problem) — the server answered 4xx or 5xx; `problem` is its application/problem+json body;
      `error_class` is the matching graphstore_async.errors class (RepositoryNotFound, SyntaxProblem, …)
  OperationError — about an asynchronous operation (its `monitor_url`)
    OperationFailed(problem) — the task ran and failed; `problem` is the task's error (e.g. a syntax error)
    OperationTimeout — wait(timeout=…) ran out before the task finished; the task goes on
    OperationPending — result() asked for before the task finished

graphstore_async.errors.ClientError (the server's 4xx class) is a different thing: here it is HTTPError.error_class.
"""

from __future__ import annotations

from typing import Any

from graphstore_async import errors as server_errors


class ClientError(Exception):
    """Base of everything the client raises."""


class TransportError(ClientError):
    """The request got no HTTP answer."""


class HTTPError(ClientError):
    """A 4xx or 5xx answer. `problem` is the RFC 9457 body ({} when the body was not problem+json)."""

    def __init__(self, status: int, problem: dict[str, Any], *, url: str = "", method: str = "") -> None:
        self.status = status
        self.problem = problem
        self.url = url
        self.method = method
        detail = problem.get("detail") or problem.get("title") or "no detail"
        super().__init__(f"{method} {url}: {status} {detail}".strip())

    @property
    def detail(self) -> str | None:
        detail = self.problem.get("detail")
        return detail if isinstance(detail, str) else None

    @property
    def error_class(self) -> type[server_errors.GraphStoreError]:
        """The server's exception class for this answer: by the problem's type, else by the status."""
        kind = self.problem.get("type")
        if isinstance(kind, str) and kind in server_errors.PROBLEM_TYPES:
            return server_errors.PROBLEM_TYPES[kind]
        if self.status in server_errors.BY_STATUS:
            return server_errors.BY_STATUS[self.status]
        return server_errors.ClientError if 400 <= self.status < 500 else server_errors.GraphStoreError


class OperationError(ClientError):
    """About an asynchronous operation."""

    def __init__(self, message: str, monitor_url: str | None) -> None:
        super().__init__(message)
        self.monitor_url = monitor_url


class OperationFailed(OperationError):
    """The task failed: `problem` is its error (type, title, status, detail, line, column, …)."""

    def __init__(self, monitor_url: str | None, problem: dict[str, Any],
                 document: dict[str, Any] | None = None) -> None:
        self.problem = problem
        self.document = document
        detail = problem.get("detail") or problem.get("title") or "no detail"
        super().__init__(f"task {monitor_url} failed: {detail}", monitor_url)

    @property
    def detail(self) -> str | None:
        detail = self.problem.get("detail")
        return detail if isinstance(detail, str) else None


class OperationTimeout(OperationError):
    """wait() gave up after `timeout` seconds; `document` is the last status seen. The task goes on."""

    def __init__(self, monitor_url: str | None, timeout: float, document: dict[str, Any] | None) -> None:
        self.timeout = timeout
        self.document = document
        status = document.get("status") if document else "unknown"
        super().__init__(f"task {monitor_url} still {status} after {timeout:g} s", monitor_url)


class OperationPending(OperationError):
    """result() before the task finished."""
