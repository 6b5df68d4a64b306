"""Scenario 4, notifications: how many small async tasks our worker runs and notifies per second, and what
building and serialising one notification costs.

Throughput: a fixed count of notify-mode SPARQL `INSERT DATA` updates (concurrency 32, from a separate
process), each notifying the receiver; from the first request sent to the last notification received.

Cost, in this process: graphstore_async.tasks.provenance's activity_graph + serialize (Turtle) per call, against
the reference of building the same rdflib Graph alone (Graph(bind_namespaces="none") + the same triples).
"""

from __future__ import annotations

import time
import uuid

from rdflib import Graph

from bench.context import Bench, ScenarioFailed
from bench.loadgen import LoadSpec, run_load
from bench.report import INFO, Figure, Goal, Row
from graphstore_async import formats
from graphstore_async.tasks.provenance import Activity, activity_graph, serialize
from graphstore_async.taskstatus import TaskStatus

UPDATE = "INSERT DATA {{ <http://example.org/bench/notify/{rep}/{{i}}> <http://example.org/bench/p> {{i}} }}"


async def throughput(bench: Bench) -> None:
    row = bench.report.add(Row("notify.throughput", "4 notifications: tasks run + notified/s (c=32)", "tasks/s",
                               None, goal=Goal("at_least", 1000)))
    count = bench.options.notifications
    await bench.create_repo("bench/notify")
    await bench.drain()
    rates: list[float] = []
    submissions: list[float] = []
    for rep in range(bench.options.repetitions):
        bench.log(f"notifications {rep + 1}/{bench.options.repetitions}: {count} async updates")
        location = f"/n/notify-{rep}"
        spec = LoadSpec(port=bench.server.port, method="POST", targets=["/bench/notify/sparql"],
                        headers={"Content-Type": "application/sparql-update", "Accept-Asynchronous": "notify",
                                 "Asynchronous-Location": bench.notify_url(location)},
                        body=UPDATE.format(rep=rep), concurrency=32, count=count, expect=(202,))
        result = await run_load(spec, bench.generator)
        if result["errors"] or result["count"] < count:
            raise ScenarioFailed(f"{result['count']} of {count} submissions accepted: {result}")
        stats = await bench.wait_notifications(location, count, 120 + count / 50)
        rates.append(count / (float(stats["last"]) - float(result["started"])))
        submissions.append(float(result["rate"]))
        row.ours = Figure.of(rates)
        await bench.drain()
    row.note = (f"{count} tasks per repetition, from the first request sent to the last notification received; "
                f"they were submitted at {min(submissions):,.0f}–{max(submissions):,.0f}/s")


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
