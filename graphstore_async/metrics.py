"""Prometheus metrics (SPEC §8), and the log line that goes with each thing counted.

One registry per application and per worker Runtime, never prometheus_client's global one: tests start many
applications in one process, and each must count only its own.

    gsa_http_requests_total{method,route,status}   counter; route is the route's template ("unmatched" when no
                                                    route matched), never a path; method outside the usual ones
                                                    is "other"; 499: the client closed the connection first
    gsa_http_request_duration_seconds{route}       histogram
    gsa_tasks_total{kind,status}                   counter: every status a task enters (pending, running,
                                                    completed, failed, cancelled)
    gsa_task_duration_seconds{kind}                histogram: running to its end, as this worker saw it
    gsa_notification_attempts_total{outcome}      counter: delivered, http_3xx, http_4xx, http_5xx, no_answer
                                                    (connection failed or timed out), refused (egress policy)
    gsa_notification_latency_seconds               histogram: a task's end to its notification delivered
    gsa_redis_errors_total                         counter: Redis errors met by the HTTP layer and the worker
    gsa_queue_depth                                gauge: tasks waiting (ZCARD of {redis_prefix}:queue)
    gsa_workers_alive                              gauge: workers whose heartbeat is live (`live_workers`)
    gsa_store_statements{repository}               gauge: statements in each repository open in this process

Counters and histograms count as things happen; the gauges are state, read just before an exposition
(`Metrics.sample`), each read bounded in time. Each task state change is counted and logged by one call
(`task_event`, `delivery_event`), so each place where a status changes holds one line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from graphstore_async.logs import fields

UNMATCHED = "unmatched"  # the route of a request no route matched (404, 405)
OTHER = "other"
CLIENT_CLOSED = 499  # as nginx: the client closed the connection before the answer was complete
TERMINAL = frozenset({"completed", "failed", "cancelled"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
TASK_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0)
LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
SAMPLE_TIMEOUT_S = 2.0  # the longest a scrape waits for one reading of state
STATEMENTS_MAX_AGE_S = 30.0  # a repository's statements are counted at most once in this long

log = logging.getLogger(__name__)
request_log = logging.getLogger("graphstore_async.request")
task_log = logging.getLogger("graphstore_async.task")

Count = Callable[[], Awaitable[int]]

# No `_created` series beside each counter and histogram: they double the series and say only when each
# was made. (A setting of prometheus_client for the whole process, which holds no other registry.)
disable_created_metrics()  # type: ignore[no-untyped-call]  # (untyped in prometheus_client 0.26)


@dataclass
class State:
    """The gauges as last read; None when a reading failed (then the gauge is left out of the exposition)."""

    queue_depth: int | None = None
    workers_alive: int | None = None
    statements: Mapping[str, int] = field(default_factory=dict)


class _StateCollector(Collector):
    def __init__(self) -> None:
        self.state = State()

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        state = self.state
        if state.queue_depth is not None:
            yield GaugeMetricFamily("gsa_queue_depth", "Tasks waiting in the queue", value=state.queue_depth)
        if state.workers_alive is not None:
            yield GaugeMetricFamily("gsa_workers_alive", "Workers whose heartbeat is live",
                                    value=state.workers_alive)
        statements = GaugeMetricFamily("gsa_store_statements", "Statements in each repository open in this process",
                                       labels=["repository"])
        for repository, count in sorted(state.statements.items()):
            statements.add_metric([repository], count)
        yield statements


class _StatementCounts:
    """Statements per open repository. Counting one is a scan (pyoxigraph keeps no count; about 0.35 s per
    million statements), so each is counted at most once per STATEMENTS_MAX_AGE_S, one at a time (one store
    thread at most); a scrape waits up to SAMPLE_TIMEOUT_S for the counts it started and reports the last known."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, int]] = {}
        self._counting: dict[str, asyncio.Task[None]] = {}
        self._one_at_a_time = asyncio.Semaphore(1)

    async def read(self, stores: Mapping[str, Count]) -> dict[str, int]:
        now = time.monotonic()
        for gone in self._known.keys() - stores.keys():
            del self._known[gone]
        for repository, count in stores.items():
            known = self._known.get(repository)
            if repository not in self._counting and (known is None or now - known[0] >= STATEMENTS_MAX_AGE_S):
                self._counting[repository] = asyncio.create_task(self._count(repository, count))
        waiting = [self._counting[name] for name in stores if name in self._counting]
        if waiting:
            await asyncio.wait(waiting, timeout=SAMPLE_TIMEOUT_S)
        return {name: self._known[name][1] for name in stores if name in self._known}

    async def _count(self, repository: str, count: Count) -> None:
        try:
            async with self._one_at_a_time:
                self._known[repository] = (time.monotonic(), await count())
        except Exception as exc:  # closed or dropped meanwhile: not counted this time
            log.debug("counting the statements of %s failed: %s", repository, exc)
        finally:
            self._counting.pop(repository, None)

    async def close(self) -> None:
        counting = list(self._counting.values())
        for task in counting:
            task.cancel()
        await asyncio.gather(*counting, return_exceptions=True)


async def live_workers(count: Count | None, *, runs_worker: bool) -> int:
    """gsa_workers_alive: `count` counts the live workers' heartbeats (tasks/liveness.py, Workers.alive); where
    there is none to ask, whether this process runs a worker (1) or not (0)."""
    if count is None:
        return 1 if runs_worker else 0
    return await count()


def caused_by_redis(exc: BaseException) -> bool:
    """Whether `exc` is a Redis error, or was raised from one (a 503 made of a ConnectionError, say)."""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain of causes is short; a cycle must not hang us
        if seen is None:
            return False
        if isinstance(seen, RedisError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def attempt_outcome(status: int | None, *, refused: bool) -> str:
    """gsa_notification_attempts_total's outcome label of one attempt (a bounded set)."""
    if refused:
        return "refused"
    if status is None:
        return "no_answer"
    if 200 <= status < 300:
        return "delivered"
    return f"http_{min(max(status // 100, 3), 5)}xx"


def _label(kind: Enum | str | None) -> str:
    if isinstance(kind, Enum):
        return str(kind.value)
    return kind or "unknown"


def _since(iso: str | None) -> float | None:
    """Seconds since an ISO 8601 time (a task's `ended`), None when there is none or it does not parse."""
    if not iso:
        return None
    try:
        return max(0.0, time.time() - datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return None


class Metrics:
    """One registry and its metrics: an application's, or a worker Runtime's."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.http_requests = Counter("gsa_http_requests", "HTTP requests answered, by method, route and status",
                                     ["method", "route", "status"], registry=registry)
        self.http_duration = Histogram("gsa_http_request_duration_seconds", "Time to answer an HTTP request, by route",
                                       ["route"], registry=registry)
        self.tasks = Counter("gsa_tasks", "Statuses tasks entered, by operation kind", ["kind", "status"],
                             registry=registry)
        self.task_duration = Histogram("gsa_task_duration_seconds", "Time a task ran, by operation kind", ["kind"],
                                       buckets=TASK_BUCKETS_S, registry=registry)
        self.notification_attempts = Counter("gsa_notification_attempts", "Notification attempts, by outcome",
                                             ["outcome"], registry=registry)
        self.notification_latency = Histogram("gsa_notification_latency_seconds",
                                              "Time from a task's end to its notification delivered",
                                              buckets=LATENCY_BUCKETS_S, registry=registry)
        self.redis_errors = Counter("gsa_redis_errors", "Redis errors met by the HTTP layer and the worker",
                                    registry=registry)
        self._state = _StateCollector()
        registry.register(self._state)
        self._statements = _StatementCounts()
        self._running: dict[str, float] = {}  # task id -> when it started running here (monotonic)
        # (method, route, status) -> its request counter and its route's histogram; as few as the labels' values
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    # --- HTTP -----------------------------------------------------------------------------------------------

    def request(self, *, method: str, route: str, status: int, duration_s: float, path: str, user: str | None,
                task_id: str | None = None) -> None:
        """An answered request: counted, timed, and its one line logged."""
        key = (method if method in METHODS else OTHER, route, status)
        series = self._request_series.get(key)
        if series is None:  # labels() costs more than the counting: each series is looked up once
            series = self._request_series[key] = (self.http_requests.labels(key[0], route, str(status)),
                                                  self.http_duration.labels(route))
        series[0].inc()
        series[1].observe(duration_s)
        request_log.info("%s %s %d", method, route, status, extra=fields(
            method=method, route=route, path=path, status=status, duration_ms=round(duration_s * 1000, 1),
            user=user, task_id=task_id))

    def count_redis_error(self, exc: BaseException) -> None:
        """Count `exc` if it is (or was raised from) a Redis error."""
        if caused_by_redis(exc):
            self.redis_errors.inc()

    # --- tasks ----------------------------------------------------------------------------------------------

    def task_event(self, task_id: str, status: str, *, kind: Enum | str | None, user: str | None = None,
                   repository: str | None = None, error: Mapping[str, Any] | None = None,
                   reason: str | None = None) -> None:
        """A task entered `status`: counted (and, at its end, how long it ran here) and logged, in one line.
        `error` is the task's problem: only its type is logged (its detail may quote the request's body)."""
        label = _label(kind)
        self.tasks.labels(label, status).inc()
        started = self._running.pop(task_id, None)
        if status == "running":
            self._running[task_id] = time.monotonic()
        duration_s = time.monotonic() - started if started is not None and status in TERMINAL else None
        if duration_s is not None:
            self.task_duration.labels(label).observe(duration_s)
        task_log.info("task %s %s", task_id, status, extra=fields(
            task_id=task_id, status=status, kind=label, user=user, repository=repository,
            duration_ms=None if duration_s is None else round(duration_s * 1000, 1),
            error=error.get("type") if error else None, reason=reason))

    def notification_attempt(self, kind: str, status: int | None, *, refused: bool = False) -> None:
        """One attempt of a notification (a callback's, `kind` "callback", are not counted here)."""
        if kind == "notification":
            self.notification_attempts.labels(attempt_outcome(status, refused=refused)).inc()

    def delivery_event(self, task_id: str, kind: str, *, delivered: bool, ended: str | None = None,
                       reason: str | None = None) -> None:
        """A task's notification (or callback: `kind`) is over, delivered or failed; `ended` is when the task
        ended (ISO 8601): a delivered notification's latency is counted from it."""
        latency_s = _since(ended) if delivered and kind == "notification" else None
        if latency_s is not None:
            self.notification_latency.observe(latency_s)
        outcome = "delivered" if delivered else "failed"
        task_log.info("task %s %s %s", task_id, kind, outcome, extra=fields(
            task_id=task_id, delivery=kind, status=outcome,
            latency_ms=None if latency_s is None else round(latency_s * 1000, 1), reason=reason))

    # --- state, and the exposition --------------------------------------------------------------------------

    async def sample(self, *, queue_depth: Count, workers_alive: Count, stores: Mapping[str, Count]) -> None:
        """Read the gauges (just before an exposition): a reading that fails or takes longer than
        SAMPLE_TIMEOUT_S leaves its gauge out, and a Redis error is counted."""
        state = State()
        state.queue_depth = await self._read(queue_depth, "the queue's depth")
        state.workers_alive = await self._read(workers_alive, "the live workers")
        state.statements = await self._statements.read(stores)
        self._state.state = state

    async def _read(self, count: Count, what: str) -> int | None:
        try:
            return await asyncio.wait_for(count(), SAMPLE_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            self.count_redis_error(exc)
            log.warning("metrics: reading %s failed (%s: %s)", what, type(exc).__name__, exc)
            return None

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format `accept` asks for (OpenMetrics when asked, else Prometheus text), and its
        content type; as prometheus_client's own handlers negotiate it."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    async def close(self) -> None:
        await self._statements.close()
