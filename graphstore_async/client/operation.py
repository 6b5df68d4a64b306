"""An asynchronous operation (monitor or notify mode) as the client sees it: poll, wait, cancel, result."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from graphstore_async.client.errors import OperationFailed, OperationPending, OperationTimeout
from graphstore_async.client.response import Response
from graphstore_async.errors import PROBLEM_BASE
from graphstore_async.taskstatus import TaskStatus


class Fetch(Protocol):
    """The transport: one request, its answer read whole (no status check)."""

    def __call__(self, method: str, url: str) -> Awaitable[Response]: ...


Progress = Callable[[dict[str, Any]], object]  # may return an awaitable, which is awaited


def retry_after(response: Response) -> float | None:
    """Retry-After in seconds (delta-seconds only; an HTTP date is ignored)."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


class AsyncOperation:
    """A task on the server. `status` is as of the last poll (or the 202). An operation that the server
    answered at once (`Prefer: respond-async, wait=N` and it was quick) has `answered_synchronously` set, no
    monitor URL, status COMPLETED, and result() returns that answer with no further request."""

    def __init__(self, fetch: Fetch, *, request_id: str | None, monitor_url: str | None,
                 status_url: str | None = None, status: TaskStatus = TaskStatus.PENDING,
                 client_request_id: str | None = None, response: Response | None = None,
                 retry_after_s: float | None = None) -> None:
        self._fetch = fetch
        self.request_id = request_id
        self.monitor_url = monitor_url
        self.status_url = status_url or (f"{monitor_url}/status" if monitor_url else None)
        self.status = status
        self.client_request_id = client_request_id
        self.document: dict[str, Any] = {"id": request_id, "status": status.value}
        self.retry_after_s = retry_after_s
        self._result = response
        self.answered_synchronously = response is not None

    @classmethod
    def accepted(cls, fetch: Fetch, response: Response) -> AsyncOperation:
        """From a 202: Request-ID, Location (the monitor), Retry-After and the JSON body."""
        body = response.json() if response.content_type.endswith("json") else {}
        monitor = response.headers.get("Location") or body.get("monitor")
        return cls(fetch, request_id=response.headers.get("Request-ID") or body.get("id"), monitor_url=monitor,
                   status_url=body.get("status_url"), status=TaskStatus(body.get("status", "pending")),
                   client_request_id=response.headers.get("Client-Request-ID"),
                   retry_after_s=retry_after(response))

    @classmethod
    def answered(cls, fetch: Fetch, response: Response) -> AsyncOperation:
        """The server answered synchronously (it was done within the requested wait)."""
        return cls(fetch, request_id=response.headers.get("Request-ID"), monitor_url=None,
                   status=TaskStatus.COMPLETED, response=response)

    def __repr__(self) -> str:
        return f"<AsyncOperation {self.request_id} {self.status.value}>"

    async def poll(self) -> dict[str, Any]:
        """Fetch the status document, update `status`, and return the document."""
        if self.status_url is None:
            return self.document
        response = (await self._fetch("GET", self.status_url)).raise_for_status("GET")
        document: dict[str, Any] = response.json()
        self.document, self.status = document, TaskStatus(document["status"])
        self.retry_after_s = retry_after(response)
        return document

    async def wait(self, timeout: float | None = None, poll_interval: float = 1.0,
                   progress: Progress | None = None) -> dict[str, Any]:
        """Poll until the task is over (waiting Retry-After between polls when the server sends it, else
        `poll_interval`), calling `progress(document)` after each poll. Returns the final status document —
        also for a cancelled task (check `status`); raises OperationFailed for a failed one and OperationTimeout
        when `timeout` seconds pass first (the task goes on)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    document = await self.poll()
                    if progress is not None:
                        outcome = progress(document)
                        if inspect.isawaitable(outcome):
                            await outcome
                    if self.status is TaskStatus.FAILED:
                        raise OperationFailed(self.monitor_url, document.get("error") or {}, document)
                    if self.status.terminal:
                        return document
                    await asyncio.sleep(poll_interval if self.retry_after_s is None else self.retry_after_s)
        except TimeoutError as exc:
            raise OperationTimeout(self.monitor_url, timeout or 0.0, self.document) from exc

    async def cancel(self) -> TaskStatus:
        """Cancel the task: CANCELLED when it was pending; RUNNING when it is running and its interruption
        completes later (wait() sees it). HTTPError 409 when it had already finished."""
        if self.monitor_url is None:
            raise OperationPending("an operation answered synchronously cannot be cancelled", None)
        response = (await self._fetch("DELETE", self.monitor_url)).raise_for_status("DELETE")
        self.status = TaskStatus.CANCELLED if response.status == 204 else TaskStatus.RUNNING
        return self.status

    async def result(self) -> Response:
        """The operation's own answer (its status from AsyncResult, its body and Content-Type). The server hands
        it out once; the client keeps it, so calling again costs nothing. OperationPending before the task is
        done; OperationFailed (with the task's problem) when it failed or was cancelled; HTTPError 404/410 when
        it is gone (read already by someone else, expired, or never there)."""
        if self._result is not None:
            return self._result
        if self.monitor_url is None:
            raise OperationPending("this operation has no monitor", None)
        response = (await self._fetch("GET", self.monitor_url)).raise_for_status("GET")
        if response.status == 202:
            self.retry_after_s = retry_after(response)
            raise OperationPending(f"task {self.monitor_url} is not finished yet", self.monitor_url)
        status = int(response.headers.get("AsyncResult", response.status))
        result = Response(status, response.headers, response.body, response.url)
        if status >= 400:  # the task failed, or was cancelled (409, problem type …/cancelled)
            problem = result.problem()
            cancelled = problem.get("type") == PROBLEM_BASE + "cancelled"
            self.status = TaskStatus.CANCELLED if cancelled else TaskStatus.FAILED
            raise OperationFailed(self.monitor_url, problem)
        self.status, self._result = TaskStatus.COMPLETED, result
        return result
