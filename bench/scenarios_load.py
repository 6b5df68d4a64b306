"""Scenario 2, acceptance throughput, and scenario 3, query throughput: load from a separate process.

Acceptance: notify-mode 1-triple POSTs (no Asynchronous-Location) at concurrency 32, a fixed count; the bare
reference handler (one Redis LPUSH, 202) gets the same requests from the same generator. Our worker runs the
queued tasks in the same process meanwhile, as it does in production; between repetitions we wait for the
queue to drain. What a submission costs (bench/costs.py) — Redis commands and our server's CPU, from the first
submission until the queue drained, so the task it queued included — against the reference's over its run.

Query: a selective SELECT (one subject's properties, the subject varied per request) at concurrency 8 for a
fixed duration, ours, Oxigraph server and a minimal aiohttp handler over its own pyoxigraph Store
(bench/queryref.py), each holding the data; and a whole-store COUNT(*), one at a time, ours and Oxigraph server.
What a selective query costs: Redis commands and our server's CPU over our run, against the minimal handler's CPU.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from typing import Any
from urllib.parse import quote

from bench.context import ACCEPT_JSON, Bench, ScenarioFailed
from bench.costs import COMMANDS, CPU, CostRows, Usage, usage
from bench.data import query_subjects
from bench.loadgen import LoadSpec, run_load
from bench.processes import Service, StartFailed
from bench.report import INFO, Figure, Goal, Row
from bench.scenarios_import import bulk_load_reference

TRIPLE = '<http://example.org/bench/accept/{i}> <http://example.org/bench/p> "{i}" .'
SELECTIVE = "SELECT ?p ?o WHERE {{ <{subject}> ?p ?o }}"
AGGREGATE = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
MINIMAL = "minimal aiohttp + pyoxigraph"
MINIMAL_STORE = "queryref-store"


async def acceptance(bench: Bench) -> None:
    name = "bare aiohttp + LPUSH"
    rate = bench.report.add(Row("acceptance.rate", "2 acceptance: notify submissions/s (c=32)", "req/s", None, name,
                                goal=Goal("ratio_at_least", 0.5)))
    p50 = bench.report.add(Row("acceptance.p50", "2 acceptance: latency p50", "ms", None, name))
    p99 = bench.report.add(Row("acceptance.p99", "2 acceptance: latency p99", "ms", None, name))
    costs = CostRows.add(bench.report, "acceptance", "2 acceptance", "request", commands_reference=name,
                         cpu_reference=name)
    await bench.create_repo("bench/accept")
    count = bench.options.acceptance_count
    spec = LoadSpec(port=bench.server.port, method="POST",
                    targets=["/bench/accept/service?graph=http://example.org/bench/accept"],
                    headers={"Content-Type": "application/n-triples", "Accept-Asynchronous": "notify"},
                    body=TRIPLE, concurrency=32, count=count, expect=(202,))
    try:
        reference = bench.procs.python_module("refserver", "bench.refserver", "--redis-url",
                                              f"redis://127.0.0.1:{bench.redis.port}/0", "--key", "bench:reference")
    except StartFailed as exc:
        reference = None
        rate.reference_error = str(exc)[:500]
        costs.reference_failed(rate.reference_error)
    ours: dict[str, list[float]] = {"rate": [], "p50": [], "p99": []}
    refs: dict[str, list[float]] = {"rate": [], "p50": [], "p99": []}
    drains: list[float] = []
    try:
        for rep in range(bench.options.repetitions):
            bench.log(f"acceptance {rep + 1}/{bench.options.repetitions}: ours, {spec.count} submissions")
            before = await usage(bench.look, bench.server_pid)
            result = await run_load(spec, bench.generator)
            _check(result, spec.count, "ours")
            for key, field in (("rate", "rate"), ("p50", "p50_ms"), ("p99", "p99_ms")):
                ours[key].append(float(result[field]))
            drains.append(await bench.drain())
            costs.ours(await usage(bench.look, bench.server_pid) - before, count)
            if reference is not None:
                bench.log("acceptance: reference (bare aiohttp handler + one LPUSH)")
                ref, spent = await _measured_load(bench, dataclasses.replace(spec, port=reference.port),
                                                  "reference", reference.pid)
                costs.reference(spent, count)
                for key, field in (("rate", "rate"), ("p50", "p50_ms"), ("p99", "p99_ms")):
                    refs[key].append(float(ref[field]))
            for row, key in ((rate, "rate"), (p50, "p50"), (p99, "p99")):
                row.ours, row.reference = Figure.of(ours[key]), Figure.of(refs[key])
    finally:
        if reference is not None:
            bench.procs.stop(reference)
    rate.note = (f"{spec.count} submissions per repetition; our worker then took {min(drains):.1f}–"
                 f"{max(drains):.1f} s more to run the queued tasks")
    costs.commands.note = (f"{COMMANDS}, from our first submission until the queue drained (the tasks run "
                           "included), ÷ submissions; the reference's over its run (its LPUSHes, and our idle "
                           "server's polling meanwhile)")
    costs.cpu.note = (f"{CPU} of our server's process (its worker in it) over the same window ÷ submissions; "
                      "the reference handler's process over its run")


async def _measured_load(bench: Bench, spec: LoadSpec, who: str, pid: int) -> tuple[dict[str, Any], Usage]:
    """A load run and what it cost: Redis's commands and process `pid`'s CPU time over it."""
    before = await usage(bench.look, pid)
    result = await run_load(spec, bench.generator)
    _check(result, spec.count, who)
    return result, await usage(bench.look, pid) - before


def _check(result: dict[str, object], count: int | None, who: str) -> None:
    if result["errors"]:
        raise ScenarioFailed(f"{who}: {result['errors']} errors ({result['statuses']}): {result['error_sample']}")
    if count is not None and int(str(result["count"])) < count:
        raise ScenarioFailed(f"{who}: {result['count']} answers of {count}")


async def _ensure_data(bench: Bench) -> None:
    """Our repository and an Oxigraph server holding the data (left by the import scenario, or loaded here)."""
    if bench.query_repo is None:
        bench.log("query: loading the data into our repository")
        await bench.create_repo("bench/query")
        await bench.send_file(f"{bench.server.base}/bench/query/service?default", bench.data.ntriples,
                              {"Content-Type": "application/n-triples"}, (200, 201, 204))
        bench.query_repo = "bench/query"
    if bench.oxigraph is None and not bench.oxigraph_error:
        bench.log("query: loading the data into Oxigraph server")
        try:
            bench.oxigraph = bench.procs.oxigraph(bench.workdir / "oxigraph-query")
            await bench.send_file(f"{bench.oxigraph.base}/store?default", bench.data.ntriples,
                                  {"Content-Type": "application/n-triples"}, (200, 201, 204))
        except (StartFailed, ScenarioFailed, OSError, TimeoutError) as exc:
            bench.oxigraph_error = str(exc)[:500]


async def _count(bench: Bench, url: str) -> tuple[float, int]:
    started = time.monotonic()
    document = await bench.get_json(url, {"query": AGGREGATE}, {"Accept": ACCEPT_JSON})
    seconds = time.monotonic() - started
    return seconds, int(document["results"]["bindings"][0]["n"]["value"])


async def _minimal_handler(bench: Bench) -> Service:
    """The minimal handler (bench/queryref.py) over the data, bulk-loaded into a fresh store of its own."""
    bench.log("query: bulk-loading the data for the minimal handler")
    store_dir = bench.workdir / MINIMAL_STORE
    await bulk_load_reference(bench, store_dir)
    return bench.procs.python_module("queryref", "bench.queryref", "--store", str(store_dir))


async def query(bench: Bench) -> None:
    name = "Oxigraph server"
    selective = bench.report.add(Row("query.selective", "3 query: selective SELECT/s (c=8)", "req/s", None, name,
                                     goal=Goal("ratio_at_least", 0.7)))
    versus = bench.report.add(Row("query.selective_vs_minimal", "3 query: selective SELECT/s vs minimal handler",
                                  "req/s", None, MINIMAL, goal=Goal("ratio_at_least", 0.8)))
    aggregate = bench.report.add(Row("query.aggregate", "3 query: COUNT(*) latency (lower is better)", "s", None,
                                     name, goal=INFO))
    costs = CostRows.add(bench.report, "query", "3 query (selective)", "request", commands_reference=None,
                         cpu_reference=MINIMAL)
    await _ensure_data(bench)
    if bench.oxigraph_error:
        selective.reference_error = aggregate.reference_error = bench.oxigraph_error
    minimal: Service | None = None
    try:
        minimal = await _minimal_handler(bench)
    except (StartFailed, ScenarioFailed, OSError, TimeoutError) as exc:
        versus.reference_error = str(exc)[:500]
        costs.reference_failed(versus.reference_error)
    try:
        await _query_runs(bench, minimal, selective, versus, aggregate, costs)
    finally:
        if minimal is not None:
            bench.procs.stop(minimal)
        shutil.rmtree(bench.workdir / MINIMAL_STORE, ignore_errors=True)
    costs.commands.note = (f"{COMMANDS} during our selective run ÷ requests answered (the references use no "
                           "Redis)")
    costs.cpu.note = (f"{CPU} of our server's process during its selective run ÷ requests answered; the minimal "
                      "handler's process during its run")


async def _query_runs(bench: Bench, minimal: Service | None, selective: Row, versus: Row, aggregate: Row,
                      costs: CostRows) -> None:
    subjects = query_subjects(bench.data, min(2000, bench.data.subjects), bench.options.seed)
    texts = [quote(SELECTIVE.format(subject=s), safe="") for s in subjects]
    ours_spec = LoadSpec(port=bench.server.port, targets=[f"/{bench.query_repo}/sparql?query={t}" for t in texts],
                         headers={"Accept": ACCEPT_JSON}, concurrency=8, duration=bench.options.duration)
    await _same_answers(bench, subjects[0], minimal)
    figures: dict[str, list[float]] = {"ours": [], "ref": [], "minimal": [], "ours_agg": [], "ref_agg": []}
    latencies: dict[str, list[str]] = {"ours": [], "ref": [], "minimal": []}

    def record(key: str, result: dict[str, Any]) -> None:
        figures[key].append(float(result["rate"]))
        latencies[key].append(f"{result['p50_ms']:.2f}/{result['p99_ms']:.2f}")

    for rep in range(bench.options.repetitions):
        bench.log(f"query {rep + 1}/{bench.options.repetitions}: ours, selective, {bench.options.duration:g} s")
        result, spent = await _measured_load(bench, ours_spec, "ours", bench.server_pid)
        record("ours", result)
        costs.ours(spent, int(result["count"]))
        if bench.oxigraph is not None:
            bench.log("query: Oxigraph server, selective")
            ref_spec = dataclasses.replace(ours_spec, port=bench.oxigraph.port,
                                           targets=[f"/query?query={t}" for t in texts])
            ref = await run_load(ref_spec, bench.generator)
            _check(ref, None, "Oxigraph")
            record("ref", ref)
        if minimal is not None:
            bench.log("query: minimal aiohttp + pyoxigraph handler, selective")
            minimal_spec = dataclasses.replace(ours_spec, port=minimal.port,
                                               targets=[f"/query?query={t}" for t in texts])
            ref, spent = await _measured_load(bench, minimal_spec, "minimal handler", minimal.pid)
            record("minimal", ref)
            costs.reference(spent, int(ref["count"]))
        await _aggregate_rep(bench, figures)
        selective.ours = versus.ours = Figure.of(figures["ours"])
        selective.reference, versus.reference = Figure.of(figures["ref"]), Figure.of(figures["minimal"])
        aggregate.ours, aggregate.reference = Figure.of(figures["ours_agg"]), Figure.of(figures["ref_agg"])
    selective.note = (f"p50/p99 ms per repetition: ours {', '.join(latencies['ours'])}; "
                      f"Oxigraph {', '.join(latencies['ref']) or '—'}")
    versus.note = (f"{MINIMAL}: GET → store.query() on the event loop → its SPARQL JSON; p50/p99 ms per "
                   f"repetition {', '.join(latencies['minimal']) or '—'}")


async def _aggregate_rep(bench: Bench, figures: dict[str, list[float]]) -> None:
    bench.log("query: COUNT(*), ours and Oxigraph server")
    seconds, n = await _count(bench, f"{bench.server.base}/{bench.query_repo}/sparql")
    if n != bench.data.triples:
        raise ScenarioFailed(f"our repository holds {n} triples, not {bench.data.triples}")
    figures["ours_agg"].append(seconds)
    if bench.oxigraph is not None:
        seconds, n = await _count(bench, f"{bench.oxigraph.base}/query")
        if n != bench.data.triples:
            raise ScenarioFailed(f"Oxigraph server holds {n} triples, not {bench.data.triples}")
        figures["ref_agg"].append(seconds)


async def _same_answers(bench: Bench, subject: str, minimal: Service | None) -> None:
    """Every server answers the selective query alike (a check, not a measurement)."""
    text = SELECTIVE.format(subject=subject)
    ours = await bench.get_json(f"{bench.server.base}/{bench.query_repo}/sparql", {"query": text},
                                {"Accept": ACCEPT_JSON})
    if not ours["results"]["bindings"]:
        raise ScenarioFailed(f"our repository has nothing about <{subject}>")
    for who, server in (("Oxigraph", bench.oxigraph), ("the minimal handler", minimal)):
        if server is not None:
            ref = await bench.get_json(f"{server.base}/query", {"query": text}, {"Accept": ACCEPT_JSON})
            if len(ref["results"]["bindings"]) != len(ours["results"]["bindings"]):
                raise ScenarioFailed(f"ours and {who} disagree about <{subject}>")
