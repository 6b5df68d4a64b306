"""GET /metrics over real HTTP: the Prometheus text format as prometheus_client's own parser reads it, exact counts
after known requests and tasks (route templates, never paths or task ids), the state gauges, and who may see it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest
from conftest import Running, StartReceiver, StartServer, free_port
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError as RedisConnectionError

from graphstore_async.auth import token_entry
from graphstore_async.metrics import attempt_outcome, caused_by_redis
from tests.tasks.notifying import GRAPH, create_repository, finished, server_and_receiver, submit, triples

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


async def scrape(http: aiohttp.ClientSession, running: Running, headers: dict[str, str] | None = None
                 ) -> tuple[Samples, str]:
    """The exposition, read by prometheus_client's parser: {sample name: {sorted labels: value}}, and the text."""
    async with http.get(running.url("/metrics"), headers=headers) as response:
        text = await response.text()
        assert response.status == 200, text
        assert response.headers["Content-Type"] == PROMETHEUS_TEXT
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples, text


def series(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """One metric's samples by the values of `labels`, e.g. {("GET", "/metrics", "200"): 1.0}."""
    return {tuple(dict(key)[label] for label in labels): value for key, value in samples.get(name, {}).items()}


def value(samples: Samples, name: str) -> float | None:
    return samples.get(name, {}).get(())


async def scrape_until(http: aiohttp.ClientSession, running: Running, done: Any, timeout_s: float = 10.0) -> Samples:
    """Scrape until `done(samples)` holds (what a worker counts lands a moment after what a client sees)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples, _ = await scrape(http, running)
        if done(samples):
            return samples
        if time.monotonic() > deadline:
            pytest.fail(f"the metrics did not reach the expected state in {timeout_s} s: {samples}")
        await asyncio.sleep(0.05)


async def status_of(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> int:
    async with http.request(method, url, **kwargs) as response:
        await response.read()
        return response.status


async def test_metrics_count_requests_by_route_template(server: Running, http: aiohttp.ClientSession) -> None:
    graph = server.repo_url("/service")
    turtle = {"Content-Type": "text/turtle"}
    task_id = str(uuid.uuid4())
    made = [
        await status_of(http, "GET", server.repo_url("/sparql"), params={"query": "ASK {}"}),
        await status_of(http, "GET", server.repo_url("/sparql"), params={"query": "ASK { ?s ?p ?o }"}),
        await status_of(http, "PUT", graph, params={"graph": GRAPH}, headers=turtle,
                        data=b"<http://example.org/a> <http://example.org/b> 1, 2 ."),
        await status_of(http, "GET", graph, params={"graph": GRAPH}),
        await status_of(http, "GET", server.url("/nothing/here/at/all/really")),
        await status_of(http, "GET", server.url(f"/tasks/{task_id}")),
        await status_of(http, "PATCH", server.repo_url("/sparql")),
        await status_of(http, "PROPFIND", server.repo_url("/sparql")),
    ]
    assert made == [200, 200, 201, 200, 404, 404, 405, 405]

    samples, text = await scrape(http, server)
    assert series(samples, "gsa_http_requests_total", "method", "route", "status") == {
        ("PUT", "/{account}/{repo}", "201"): 1,  # the fixture's repository
        ("GET", "/{account}/{repo}/sparql", "200"): 2,
        ("PUT", "/{account}/{repo}/service", "201"): 1,
        ("GET", "/{account}/{repo}/service", "200"): 1,
        ("GET", "unmatched", "404"): 1,
        ("GET", "/tasks/{task_id}", "404"): 1,
        ("PATCH", "unmatched", "405"): 1,
        ("other", "unmatched", "405"): 1,  # a method outside the usual ones: labels stay few
    }
    assert series(samples, "gsa_http_request_duration_seconds_count", "route") == {
        ("/{account}/{repo}",): 1, ("/{account}/{repo}/sparql",): 2, ("/{account}/{repo}/service",): 2,
        ("unmatched",): 3, ("/tasks/{task_id}",): 1,
    }
    assert series(samples, "gsa_store_statements", "repository") == {("test/repo",): 2}
    assert value(samples, "gsa_queue_depth") == 0
    assert value(samples, "gsa_workers_alive") == 1
    assert value(samples, "gsa_redis_errors_total") == 0
    for raw in ("/test/repo", "/nothing/here", task_id, "PROPFIND", "_created"):
        assert raw not in text, raw

    again, _ = await scrape(http, server)  # a scrape is counted once it is answered
    assert series(again, "gsa_http_requests_total", "method", "route", "status")[("GET", "/metrics", "200")] == 1


async def test_metrics_in_openmetrics_when_asked(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url("/metrics"), headers={"Accept": "application/openmetrics-text; version=1.0.0"}
                        ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        text = await response.text()
    names = {family.name for family in openmetrics_families(text)}
    assert {"gsa_http_requests", "gsa_queue_depth", "gsa_workers_alive", "gsa_store_statements"} <= names


async def test_metrics_count_a_task_run_and_its_notification_attempts(
        start_server: StartServer, start_receiver: StartReceiver, http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http, answers=[503])
    task_id = await submit(http, running, "PUT", "/service", location=receiver.url(), body=triples("t", 3),
                           content_type="text/turtle", params={"graph": GRAPH})
    document = await finished(http, running, task_id, receiver, expected=2)  # 503, then delivered
    assert document["notification"]["delivery"] == "delivered", document

    samples = await scrape_until(http, running, lambda s: value(s, "gsa_notification_latency_seconds_count") == 1)
    assert series(samples, "gsa_tasks_total", "kind", "status") == {
        ("graph-put", "pending"): 1, ("graph-put", "running"): 1, ("graph-put", "completed"): 1}
    assert series(samples, "gsa_task_duration_seconds_count", "kind") == {("graph-put",): 1}
    assert series(samples, "gsa_notification_attempts_total", "outcome") == {("http_5xx",): 1, ("delivered",): 1}
    assert 0 <= (value(samples, "gsa_notification_latency_seconds_sum") or 0) < 10
    assert series(samples, "gsa_http_requests_total", "method", "route", "status")[
        ("PUT", "/{account}/{repo}/service", "202")] == 1
    assert series(samples, "gsa_store_statements", "repository") == {("test/repo",): 3}
    assert value(samples, "gsa_queue_depth") == 0
    _, text = await scrape(http, running)
    assert task_id not in text


async def test_metrics_count_a_failed_task(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server()
    await create_repository(http, running)
    task_id = await submit(http, running, "POST", "/sparql", location=None, body=b"CLEAR GRAPH <http://nowhere/>",
                           content_type="application/sparql-update")
    document = await finished(http, running, task_id)
    assert document["status"] == "failed", document
    samples = await scrape_until(http, running, lambda s: ("update", "failed") in series(
        s, "gsa_tasks_total", "kind", "status"))
    assert series(samples, "gsa_tasks_total", "kind", "status") == {
        ("update", "pending"): 1, ("update", "running"): 1, ("update", "failed"): 1}
    assert series(samples, "gsa_task_duration_seconds_count", "kind") == {("update",): 1}
    assert series(samples, "gsa_notification_attempts_total", "outcome") == {}  # it notifies nobody


async def test_metrics_of_a_queue_without_worker(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(worker=False)  # nothing runs: the task waits, and is cancelled while pending
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service", location=None, body=triples("q", 2),
                           content_type="text/turtle", params={"graph": GRAPH})
    samples, _ = await scrape(http, running)
    assert value(samples, "gsa_queue_depth") == 1
    assert value(samples, "gsa_workers_alive") == 0
    assert series(samples, "gsa_tasks_total", "kind", "status") == {("graph-put", "pending"): 1}

    assert await status_of(http, "DELETE", running.url(f"/tasks/{task_id}")) == 204
    samples, _ = await scrape(http, running)
    assert series(samples, "gsa_tasks_total", "kind", "status") == {
        ("graph-put", "pending"): 1, ("graph-put", "cancelled"): 1}
    assert series(samples, "gsa_task_duration_seconds_count", "kind") == {}  # it never ran


ROOT, ALICE = "root-token-for-metrics", "alice-token-for-metrics"
ACCOUNTS = "[accounts.root]\nadmin = true\n\n[accounts.alice]\n" + token_entry("root", ROOT) + token_entry(
    "alice", ALICE)


async def test_metrics_are_for_administrators_when_accounts_are_configured(
        start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(ACCOUNTS)
    async with http.get(running.url("/metrics")) as response:
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        assert "Bearer" in response.headers["WWW-Authenticate"]
        assert (await response.json(content_type=None))["status"] == 401
    async with http.get(running.url("/metrics"), headers={"Authorization": f"Bearer {ALICE}"}) as response:
        assert response.status == 403
        assert response.content_type == "application/problem+json"
        assert "alice is not an administrator" in (await response.json(content_type=None))["detail"]
    samples, _ = await scrape(http, running, headers={"Authorization": f"Bearer {ROOT}"})
    requests = series(samples, "gsa_http_requests_total", "method", "route", "status")
    assert requests == {("GET", "/metrics", "401"): 1, ("GET", "/metrics", "403"): 1}


async def test_metrics_count_redis_errors_and_leave_out_what_they_hide(
        start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(redis_url=f"redis://127.0.0.1:{free_port()}/0", worker=False)  # nobody there
    assert await status_of(http, "GET", running.url(f"/tasks/{uuid.uuid4()}")) == 503
    samples, _ = await scrape(http, running)
    # the request's error, then the scrape's own two readings (queue depth, live workers), each left out
    assert value(samples, "gsa_redis_errors_total") == 3
    assert "gsa_queue_depth" not in samples and "gsa_workers_alive" not in samples
    assert series(samples, "gsa_http_requests_total", "method", "route", "status") == {
        ("GET", "/tasks/{task_id}", "503"): 1}


def test_attempt_outcomes_are_a_bounded_set() -> None:
    assert [attempt_outcome(status, refused=False) for status in (200, 204, 302, 404, 410, 500, 503, 999, 100)] == [
        "delivered", "delivered", "http_3xx", "http_4xx", "http_4xx", "http_5xx", "http_5xx", "http_5xx", "http_3xx"]
    assert attempt_outcome(None, refused=False) == "no_answer"
    assert attempt_outcome(None, refused=True) == "refused"


def test_a_redis_error_is_found_behind_the_error_raised_from_it() -> None:
    try:
        try:
            raise RedisConnectionError("gone")
        except RedisConnectionError as exc:
            raise RuntimeError("tasks unavailable") from exc
    except RuntimeError as wrapped:
        assert caused_by_redis(wrapped)
    assert not caused_by_redis(ValueError("no"))
