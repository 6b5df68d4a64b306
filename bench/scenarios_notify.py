"""Scenario 4, notifications: how many small async tasks our worker runs and notifies per second, against a bare
arq worker that only POSTs; what they cost in Redis commands and CPU; and what building and serialising one
notification costs.

Throughput: a fixed count of notify-mode SPARQL `INSERT DATA` updates (concurrency 32, from a separate
process), each notifying the receiver; from the first request sent to the last notification received. The
reference, each repetition: a bare arq worker process (bench/arqref.py) with our deliveries worker's settings,
started for the run; the same count of jobs enqueued from the benchmark's process by 32 producers, each job
POSTing a fixed 1 KB body to the receiver; from the first enqueue to the last notification received. The cost
(bench/costs.py): Redis commands, and the CPU of our server's process (acceptance, task and delivery) or of the
reference worker's (the enqueuing process's excluded), from the start until the queue drained, per task.

Cost, in this process: graphstore_async.tasks.provenance's activity_graph + serialize (Turtle) per call, against
the reference of building the same rdflib Graph alone (Graph(bind_namespaces="none") + the same triples).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from arq.connections import RedisSettings, create_pool
from rdflib import Graph

from bench import arqref
from bench.context import Bench, ScenarioFailed
from bench.costs import COMMANDS, CPU, CostRows, Usage, idle_rate, usage
from bench.loadgen import LoadSpec, run_load
from bench.processes import HOST, StartFailed
from bench.report import INFO, Figure, Goal, Row
from graphstore_async import formats
from graphstore_async.settings import Settings
from graphstore_async.tasks.provenance import Activity, activity_graph, serialize
from graphstore_async.taskstatus import TaskStatus

UPDATE = "INSERT DATA {{ <http://example.org/bench/notify/{rep}/{{i}}> <http://example.org/bench/p> {{i}} }}"
CONCURRENCY = 32
ARQ = "bare arq worker + POST"


async def throughput(bench: Bench) -> None:
    row = bench.report.add(Row("notify.throughput", "4 notifications: tasks run + notified/s (c=32)", "tasks/s",
                               None, goal=Goal("at_least", 1000)))
    versus = bench.report.add(Row("notify.throughput_vs_arq", "4 notifications: tasks/s vs bare arq worker",
                                  "tasks/s", None, ARQ, goal=Goal("ratio_at_least", 0.5)))
    costs = CostRows.add(bench.report, "notify", "4 notifications", "task", commands_reference=ARQ,
                         cpu_reference=ARQ, commands_goal=Goal("at_most", 15))
    count = bench.options.notifications
    await bench.create_repo("bench/notify")
    await bench.drain()
    idle = await _idle(bench)
    rates: list[float] = []
    references: list[float] = []
    submissions: list[float] = []
    for rep in range(bench.options.repetitions):
        bench.log(f"notifications {rep + 1}/{bench.options.repetitions}: ours, {count} async updates")
        rate, submitted, spent = await _ours(bench, rep, count)
        rates.append(rate)
        submissions.append(submitted)
        costs.ours(spent, count)
        row.ours = versus.ours = Figure.of(rates)
        bench.log(f"notifications {rep + 1}/{bench.options.repetitions}: bare arq worker, {count} jobs")
        try:
            rate, spent = await _arq_reference(bench, rep, count)
        except StartFailed as exc:
            versus.reference_error = str(exc)[:500]
            costs.reference_failed(versus.reference_error)
            continue
        references.append(rate)
        costs.reference(spent, count)
        versus.reference = Figure.of(references)
    row.note = (f"{count} tasks per repetition, from the first request sent to the last notification received; "
                f"they were submitted at {min(submissions):,.0f}–{max(submissions):,.0f}/s")
    versus.note = (f"{ARQ}: our deliveries worker's settings, {count} jobs enqueued by {CONCURRENCY} producers, "
                   "from the first enqueue to the last notification received")
    costs.commands.note = (f"{COMMANDS}, from the first submission until the queue drained, ÷ tasks — acceptance, "
                           "task and notification; the reference's from the first enqueue (its enqueues included); "
                           f"idle, our server alone runs {idle}, in both windows")
    costs.cpu.note = (f"{CPU} of our server's process (acceptance, task, notification) over the same window ÷ "
                      "tasks; the reference: the arq worker's process alone")


async def _idle(bench: Bench, seconds: float = 1.0) -> str:
    """What our server spends idle per second (its workers poll Redis), as text for a note."""
    before = await usage(bench.look, bench.server_pid)
    await asyncio.sleep(seconds)
    return idle_rate(await usage(bench.look, bench.server_pid) - before)


async def _ours(bench: Bench, rep: int, count: int) -> tuple[float, float, Usage]:
    """Our tasks/s, the rate they were submitted at, and what they cost until the queue drained."""
    location = f"/n/notify-{rep}"
    spec = LoadSpec(port=bench.server.port, method="POST", targets=["/bench/notify/sparql"],
                    headers={"Content-Type": "application/sparql-update", "Accept-Asynchronous": "notify",
                             "Asynchronous-Location": bench.notify_url(location)},
                    body=UPDATE.format(rep=rep), concurrency=CONCURRENCY, count=count, expect=(202,))
    before = await usage(bench.look, bench.server_pid)
    result = await run_load(spec, bench.generator)
    if result["errors"] or result["count"] < count:
        raise ScenarioFailed(f"{result['count']} of {count} submissions accepted: {result}")
    stats = await bench.wait_notifications(location, count, 120 + count / 50)
    await bench.drain()
    spent = await usage(bench.look, bench.server_pid) - before
    return count / (float(stats["last"]) - float(result["started"])), float(result["rate"]), spent


def _arq_settings() -> list[str]:
    """Our deliveries worker's settings (graphstore_async/tasks/queue.py: `create_delivery_worker`), from the
    defaults the bench's server runs with, as arguments of bench.arqref."""
    settings = Settings()
    job_timeout_s = settings.notify_timeout_s + 30  # an attempt's time-out and the margin our worker gives it
    return ["--max-jobs", str(settings.delivery_jobs), "--poll-delay-s", str(settings.poll_delay_s),
            "--job-timeout-s", str(job_timeout_s), "--request-timeout-s", str(settings.notify_timeout_s)]


async def _arq_reference(bench: Bench, rep: int, count: int) -> tuple[float, Usage]:
    """The bare arq worker's tasks/s, and what they cost, the worker's process's CPU only."""
    queue = f"{bench.redis_prefix}:arq-reference"
    worker = bench.procs.arq_worker(bench.redis.port, queue, *_arq_settings())
    try:
        pool = await create_pool(RedisSettings(host=HOST, port=bench.redis.port), job_serializer=arqref.dumps,
                                 job_deserializer=arqref.loads, default_queue_name=queue)
        try:
            location = f"/n/arq-{rep}"
            before = await usage(bench.look, worker.pid)
            started = time.monotonic()
            await arqref.enqueue(pool, queue, bench.notify_url(location), count, CONCURRENCY)
            stats: dict[str, Any] = await bench.wait_notifications(location, count, 120 + count / 50)
            await bench.drain(queue)
            spent = await usage(bench.look, worker.pid) - before
        finally:
            await pool.aclose()
    finally:
        bench.procs.stop(worker)
    return count / (float(stats["last"]) - started), spent


def _activity() -> Activity:
    base = "http://127.0.0.1:8080"
    return Activity(task_id=str(uuid.uuid4()), method="PUT", started="2026-01-01T12:00:00.000000+00:00",
                    ended="2026-01-01T12:00:01.500000+00:00", actor=f"{base}/anonymous",
                    repository=f"{base}/bench/notify", status=TaskStatus.COMPLETED, status_code=201,
                    client_request_id="bench-1", statements_added=1_000_000, statements_removed=0,
                    graph="http://example.org/bench/graph")


def _per_call_us(calls: int, work: object) -> float:
    assert callable(work)
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1e6


async def cost(bench: Bench) -> None:
    activity = _activity()
    triples = list(activity_graph(activity))
    row = bench.report.add(Row("notify.cost", f"4 notifications: build + Turtle, {len(triples)} triples", "µs/call",
                               None, "rdflib Graph build alone", goal=INFO))

    def ours() -> bytes:
        return serialize(activity_graph(activity), formats.TURTLE)

    def reference() -> Graph:
        graph = Graph(bind_namespaces="none")
        for triple in triples:
            graph.add(triple)
        return graph

    if b"gsa:Completed" not in ours():
        raise ScenarioFailed("the notification does not say gsa:Completed")
    calls = bench.options.cost_calls
    mine: list[float] = []
    refs: list[float] = []
    for _ in range(bench.options.repetitions):
        _per_call_us(max(1, calls // 10), ours)  # warm-up
        mine.append(_per_call_us(calls, ours))
        refs.append(_per_call_us(calls, reference))
    row.ours, row.reference = Figure.of(mine), Figure.of(refs)
    row.note = f"{calls} calls per repetition, in the benchmark's process"
