"""Scenario 6, cost growth: what an import costs as it grows (--growth-sizes; 100k, 1M and 10M triples by
default). For each size: our async PUT of the N-Triples (Accept-Asynchronous: notify) into a fresh repository,
from the first byte sent to the notification's arrival, against pyoxigraph's bulk_load of the same file into an
empty on-disk store in a fresh process; and our server's RSS growth during the import (its peak, VmRSS sampled
every 50 ms, minus its RSS just before) against the bulk_load process's own (its peak minus its start).

Each size's file is generated like the main data (bench/data.py: same seed, same shape), streamed to disk, and
deleted once that size is done, with our repository and the reference's store. A size equal to the main data's
(--triples) takes the import scenario's figures when that scenario ran, instead of importing the size again.
"""

from __future__ import annotations

import shutil

from bench.context import Bench, ImportFigures, ScenarioFailed
from bench.data import write_ntriples
from bench.processes import RssSampler, rss_kib
from bench.report import Figure, Goal, Row
from bench.scenarios_import import NT, bulk_load_reference, ours_async


def size_name(triples: int) -> str:
    """The rows' name for a size: 100000 → "100k", 1000000 → "1m", 2500 → "2500"."""
    for suffix, unit in (("m", 1_000_000), ("k", 1000)):
        if triples % unit == 0:
            return f"{triples // unit}{suffix}"
    return str(triples)


async def run(bench: Bench) -> None:
    sizes = bench.options.growth_sizes
    rates = {n: bench.report.add(Row(f"import.growth_{size_name(n)}", f"6 growth: async PUT of {n:,} triples",
                                     "triples/s", None, "pyoxigraph bulk_load", goal=Goal("ratio_at_least", 0.8)))
             for n in sizes}
    memory = {n: bench.report.add(Row(f"memory.growth_{size_name(n)}", f"6 growth: server RSS growth, {n:,} triples",
                                      "MiB", None, "bulk_load process peak − start", goal=Goal("at_most", 100)))
              for n in sizes}
    for n in sizes:
        kept = _kept(bench, n)
        figures = kept or ImportFigures(n)
        try:
            if kept is None:
                await _measure(bench, figures)
        finally:
            for row, ours, reference in ((rates[n], figures.ours, figures.bulk),
                                         (memory[n], figures.grown_mib, figures.bulk_grown_mib)):
                row.ours, row.reference, row.reference_error = Figure.of(ours), Figure.of(reference), figures.bulk_error
        memory[n].note = "VmRSS every 50 ms during the import: its peak − the RSS just before"
        if kept is not None:
            rates[n].note = memory[n].note = "the import scenario's async N-Triples imports: same data, same measure"


def _kept(bench: Bench, triples: int) -> ImportFigures | None:
    """The import scenario's figures, when it ran at this size."""
    kept = bench.nt_import
    return kept if kept is not None and kept.triples == triples and kept.ours else None


async def _measure(bench: Bench, figures: ImportFigures) -> None:
    n, name = figures.triples, size_name(figures.triples)
    directory = bench.workdir / "growth"
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.nt"
    bench.log(f"growth {name}: generating {n:,} triples")
    # In the loop's own thread: nothing else runs meanwhile, and SIGTERM interrupts it at once (the interpreter
    # would wait for a thread to finish writing, up to half a minute at 10M triples).
    write_ntriples(path, n, bench.options.seed)
    try:
        for rep in range(bench.options.growth_repetitions):
            progress = f"{name} {rep + 1}/{bench.options.growth_repetitions}"
            bench.log(f"growth {progress}: ours, async N-Triples")
            repo = f"bench/growth-{name}-{rep}"
            before_kib = rss_kib(bench.server_pid)
            with RssSampler(bench.server_pid) as sampler:
                seconds = await ours_async(bench, repo, path, {"Content-Type": NT}, f"growth-{name}-{rep}", n)
            figures.ours.append(n / seconds)
            figures.grown_mib.append(max(0, sampler.peak_kib - before_kib) / 1024)
            await bench.drop_repo(repo)

            bench.log(f"growth {progress}: pyoxigraph bulk_load (fresh process)")
            store_dir = directory / f"bulk-{name}-{rep}"
            try:
                seconds, grown_mib = await bulk_load_reference(bench, store_dir, path, n)
                figures.bulk.append(n / seconds)
                figures.bulk_grown_mib.append(grown_mib)
            except (ScenarioFailed, OSError, TimeoutError) as exc:
                figures.bulk_error = str(exc)[:500]
            finally:
                shutil.rmtree(store_dir, ignore_errors=True)
    finally:
        path.unlink(missing_ok=True)
