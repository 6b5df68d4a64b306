"""Scenario 2, acceptance throughput, and scenario 3, query throughput: load from a separate process.

Acceptance: notify-mode 1-triple POSTs (no Asynchronous-Location) at concurrency 32, a fixed count; the bare
reference handler (one Redis LPUSH, 202) gets the same requests from the same generator. Our worker runs the
queued tasks in the same process meanwhile, as it does in production; between repetitions we wait for the
queue to drain.

Query: a selective SELECT (one subject's properties, the subject varied per request) at concurrency 8 for a
fixed duration, ours and Oxigraph server, each holding the data; and a whole-store COUNT(*), one at a time.
"""

from __future__ import annotations

import dataclasses
import time
from urllib.parse import quote

from bench.context import ACCEPT_JSON, Bench, ScenarioFailed
from bench.data import query_subjects
from bench.loadgen import LoadSpec, run_load
from bench.processes import StartFailed
from bench.report import INFO, Figure, Goal, Row

TRIPLE = '<http://example.org/bench/accept/{i}> <http://example.org/bench/p> "{i}" .'
SELECTIVE = "SELECT ?p ?o WHERE {{ <{subject}> ?p ?o }}"
AGGREGATE = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


async def acceptance(bench: Bench) -> None:
    name = "bare aiohttp + LPUSH"
    rate = bench.report.add(Row("acceptance.rate", "2 acceptance: notify submissions/s (c=32)", "req/s", None, name,
                                goal=Goal("ratio_at_least", 0.5)))
    p50 = bench.report.add(Row("acceptance.p50", "2 acceptance: latency p50", "ms", None, name))
    p99 = bench.report.add(Row("acceptance.p99", "2 acceptance: latency p99", "ms", None, name))
    await bench.create_repo("bench/accept")
    spec = LoadSpec(port=bench.server.port, method="POST",
                    targets=["/bench/accept/service?graph=http://example.org/bench/accept"],
                    headers={"Content-Type": "application/n-triples", "Accept-Asynchronous": "notify"},
                    body=TRIPLE, concurrency=32, count=bench.options.acceptance_count, expect=(202,))
    try:
        reference = bench.procs.python_module("refserver", "bench.refserver", "--redis-url",
                                              f"redis://127.0.0.1:{bench.redis.port}/0", "--key", "bench:reference")
    except StartFailed as exc:
        reference = None
        rate.reference_error = str(exc)[:500]
    ours: dict[str, list[float]] = {"rate": [], "p50": [], "p99": []}
    refs: dict[str, list[float]] = {"rate": [], "p50": [], "p99": []}
    drains: list[float] = []
    try:
        for rep in range(bench.options.repetitions):
            bench.log(f"acceptance {rep + 1}/{bench.options.repetitions}: ours, {spec.count} submissions")
            result = await run_load(spec, bench.generator)
            _check(result, spec.count, "ours")
            for key, field in (("rate", "rate"), ("p50", "p50_ms"), ("p99", "p99_ms")):
                ours[key].append(float(result[field]))
            drains.append(await bench.drain())
            if reference is not None:
                bench.log("acceptance: reference (bare aiohttp handler + one LPUSH)")
                ref = await run_load(dataclasses.replace(spec, port=reference.port), bench.generator)
                _check(ref, spec.count, "reference")
                for key, field in (("rate", "rate"), ("p50", "p50_ms"), ("p99", "p99_ms")):
                    refs[key].append(float(ref[field]))
            for row, key in ((rate, "rate"), (p50, "p50"), (p99, "p99")):
                row.ours, row.reference = Figure.of(ours[key]), Figure.of(refs[key])
    finally:
        if reference is not None:
            bench.procs.stop(reference)
    rate.note = (f"{spec.count} submissions per repetition; our worker then took {min(drains):.1f}–"
                 f"{max(drains):.1f} s more to run the queued tasks")


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


async def query(bench: Bench) -> None:
    name = "Oxigraph server"
    selective = bench.report.add(Row("query.selective", "3 query: selective SELECT/s (c=8)", "req/s", None, name,
                                     goal=Goal("ratio_at_least", 0.7)))
    aggregate = bench.report.add(Row("query.aggregate", "3 query: COUNT(*) latency (lower is better)", "s", None,
                                     name, goal=INFO))
    await _ensure_data(bench)
    if bench.oxigraph_error:
        selective.reference_error = aggregate.reference_error = bench.oxigraph_error
    subjects = query_subjects(bench.data, min(2000, bench.data.subjects), bench.options.seed)
    texts = [quote(SELECTIVE.format(subject=s), safe="") for s in subjects]
    ours_spec = LoadSpec(port=bench.server.port, targets=[f"/{bench.query_repo}/sparql?query={t}" for t in texts],
                         headers={"Accept": ACCEPT_JSON}, concurrency=8, duration=bench.options.duration)
    await _same_answers(bench, subjects[0])
    figures: dict[str, list[float]] = {"ours": [], "ref": [], "ours_agg": [], "ref_agg": []}
    latencies: dict[str, list[str]] = {"ours": [], "ref": []}
    for rep in range(bench.options.repetitions):
        bench.log(f"query {rep + 1}/{bench.options.repetitions}: ours, selective, {bench.options.duration:g} s")
        result = await run_load(ours_spec, bench.generator)
        _check(result, None, "ours")
        figures["ours"].append(float(result["rate"]))
        latencies["ours"].append(f"{result['p50_ms']:.2f}/{result['p99_ms']:.2f}")
        if bench.oxigraph is not None:
            bench.log("query: Oxigraph server, selective")
            ref_spec = dataclasses.replace(ours_spec, port=bench.oxigraph.port,
                                           targets=[f"/query?query={t}" for t in texts])
            ref = await run_load(ref_spec, bench.generator)
            _check(ref, None, "Oxigraph")
            figures["ref"].append(float(ref["rate"]))
            latencies["ref"].append(f"{ref['p50_ms']:.2f}/{ref['p99_ms']:.2f}")
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
        selective.ours, selective.reference = Figure.of(figures["ours"]), Figure.of(figures["ref"])
        aggregate.ours, aggregate.reference = Figure.of(figures["ours_agg"]), Figure.of(figures["ref_agg"])
    selective.note = (f"p50/p99 ms per repetition: ours {', '.join(latencies['ours'])}; "
                      f"Oxigraph {', '.join(latencies['ref']) or '—'}")


async def _same_answers(bench: Bench, subject: str) -> None:
    """Both servers answer the selective query alike (a check, not a measurement)."""
    text = SELECTIVE.format(subject=subject)
    ours = await bench.get_json(f"{bench.server.base}/{bench.query_repo}/sparql", {"query": text},
                                {"Accept": ACCEPT_JSON})
    if not ours["results"]["bindings"]:
        raise ScenarioFailed(f"our repository has nothing about <{subject}>")
    if bench.oxigraph is not None:
        ref = await bench.get_json(f"{bench.oxigraph.base}/query", {"query": text}, {"Accept": ACCEPT_JSON})
        if len(ref["results"]["bindings"]) != len(ours["results"]["bindings"]):
            raise ScenarioFailed(f"ours and Oxigraph disagree about <{subject}>")
