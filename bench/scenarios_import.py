"""Scenario 1, import, and scenario 5, memory (sampled during our imports).

Each repetition, interleaved so that drift hits ours and the references alike:
  ours, async: PUT of the N-Triples file with Accept-Asynchronous: notify into a fresh repository, from the
      first byte sent to the notification's arrival at the receiver;
  pyoxigraph Store.bulk_load of the same file into an empty on-disk store, in a fresh process;
  Oxigraph server's HTTP PUT /store?default into an empty store, to its answer;
  ours, synchronous PUT; ours, async Turtle; ours, async gzip (Content-Encoding: gzip).
The async N-Triples figures — ours, bulk_load's, and our RSS growth over its value before each import — are kept
(Bench.nt_import) as the growth scenario's (6) at this size. `ours_async` and `bulk_load_reference` serve it too.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from bench.context import Bench, ImportFigures, ScenarioFailed
from bench.loadgen import kill
from bench.processes import RssSampler, Service, StartFailed, rss_kib
from bench.report import INFO, Figure, Goal, Row

NT = "application/n-triples"
NOTIFY = "Accept-Asynchronous"


async def bulk_load_reference(bench: Bench, store_dir: Path, path: Path | None = None,
                              triples: int | None = None) -> tuple[float, float]:
    """Seconds pyoxigraph's bulk_load of an N-Triples file of `triples` (default: the data's) takes in a fresh
    process, and the MiB its RSS grew by."""
    path, triples = path or bench.data.ntriples, triples or bench.data.triples
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bulkload", str(store_dir), str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=bench.import_timeout_s(triples))
    finally:
        kill(process)
    if process.returncode != 0:
        raise ScenarioFailed(f"bench.bulkload failed: {err.decode()[-1000:]}")
    result = json.loads(out)
    if result["triples"] != triples:
        raise ScenarioFailed(f"bulk_load stored {result['triples']} triples, not {triples}")
    return float(result["seconds"]), max(0, result["peak_kib"] - result["rss_before_kib"]) / 1024


async def oxigraph_put(bench: Bench, location: Path) -> tuple[Service, float]:
    """A fresh Oxigraph server, and the seconds its PUT /store?default of the N-Triples file took."""
    server = bench.procs.oxigraph(location)
    try:
        started, answered, _ = await bench.send_file(f"{server.base}/store?default", bench.data.ntriples,
                                                     {"Content-Type": NT}, (200, 201, 204))
    except BaseException:
        bench.procs.stop(server)
        raise
    return server, answered - started


async def ours_async(bench: Bench, repo: str, path: Path, headers: dict[str, str], tag: str,
                     triples: int | None = None) -> float:
    """Seconds from the first byte of an async PUT of `triples` (default: the data's) to the arrival of its
    notification (which must say the import completed, with that many statements added)."""
    triples = triples or bench.data.triples
    await bench.create_repo(repo)
    location = f"/n/{tag}"
    timeout_s = bench.import_timeout_s(triples)
    started, _, _ = await bench.send_file(
        f"{bench.server.base}/{repo}/service?default", path,
        {**headers, NOTIFY: "notify", "Asynchronous-Location": bench.notify_url(location)}, (202,), timeout_s)
    stats = await bench.wait_notifications(location, 1, timeout_s)
    if "Completed" not in stats["body"] or str(triples) not in stats["body"]:
        raise ScenarioFailed(f"the import {tag} did not complete: {stats['body'][:1000]}")
    return float(stats["first"]) - started


async def ours_sync(bench: Bench, repo: str) -> float:
    await bench.create_repo(repo)
    started, answered, _ = await bench.send_file(f"{bench.server.base}/{repo}/service?default",
                                                 bench.data.ntriples, {"Content-Type": NT}, (200, 201, 204))
    return answered - started


async def run(bench: Bench) -> None:
    n = bench.data.triples
    rate = "triples/s"
    bulk_name, oxi_name = "pyoxigraph bulk_load", "Oxigraph server PUT"
    rows = {key: bench.report.add(row) for key, row in {
        "nt": Row("import.async_nt", "1 import: async PUT N-Triples (notify)", rate, None, bulk_name,
                  goal=Goal("ratio_at_least", 0.8)),
        "vs_oxigraph": Row("import.async_nt_vs_oxigraph", "1 import: async PUT N-Triples vs Oxigraph", rate, None,
                           oxi_name, goal=Goal("ratio_above", 1.0)),
        "sync": Row("import.sync_nt", "1 import: synchronous PUT N-Triples", rate, None, oxi_name, goal=INFO),
        "ttl": Row("import.async_turtle", "1 import: async PUT Turtle", rate, None, bulk_name, goal=INFO),
        "gzip": Row("import.async_gzip", "1 import: async PUT N-Triples, gzip", rate, None, bulk_name, goal=INFO),
        "memory": Row("memory.import", "5 memory: server peak RSS − idle, imports", "MiB", None,
                      "bulk_load process peak − start", goal=Goal("at_most", 100)),
    }.items()}
    ours: dict[str, list[float]] = {key: [] for key in ("sync", "ttl", "gzip", "memory")}
    nt = bench.nt_import = ImportFigures(n)  # also the growth scenario's figures at this size
    oxigraph: list[float] = []
    idle_kib = rss_kib(bench.server_pid)
    peaks: dict[str, list[float]] = {key: [] for key in ("nt", "sync", "ttl", "gzip")}
    for rep in range(bench.options.import_repetitions):
        progress = f"{rep + 1}/{bench.options.import_repetitions}"
        bench.log(f"import {progress}: ours, async N-Triples")
        before_kib = rss_kib(bench.server_pid)
        with RssSampler(bench.server_pid) as sampler:
            seconds = await ours_async(bench, f"bench/nt{rep}", bench.data.ntriples, {"Content-Type": NT}, f"nt{rep}")
        peaks["nt"].append(sampler.peak_kib)
        nt.grown_mib.append(max(0, sampler.peak_kib - before_kib) / 1024)
        nt.ours.append(n / seconds)
        rows["nt"].ours = rows["vs_oxigraph"].ours = Figure.of(nt.ours)
        if bench.query_repo is None:
            bench.query_repo = f"bench/nt{rep}"  # kept for the query scenario
        else:
            await bench.drop_repo(f"bench/nt{rep}")

        bench.log(f"import {progress}: pyoxigraph bulk_load (fresh process)")
        store_dir = bench.workdir / f"bulk{rep}"
        try:
            seconds, grown_mib = await bulk_load_reference(bench, store_dir)
            nt.bulk.append(n / seconds)
            nt.bulk_grown_mib.append(grown_mib)
        except (ScenarioFailed, OSError, TimeoutError) as exc:
            nt.bulk_error = str(exc)[:500]
            for key in ("nt", "ttl", "gzip", "memory"):
                rows[key].reference_error = nt.bulk_error
        finally:
            shutil.rmtree(store_dir, ignore_errors=True)
        rows["nt"].reference = rows["ttl"].reference = rows["gzip"].reference = Figure.of(nt.bulk)
        rows["memory"].reference = Figure.of(nt.bulk_grown_mib)

        bench.log(f"import {progress}: Oxigraph server PUT (empty store)")
        await _oxigraph_rep(bench, rep, oxigraph, rows["vs_oxigraph"], rows["sync"])

        bench.log(f"import {progress}: ours, synchronous PUT")
        with RssSampler(bench.server_pid) as sampler:
            ours["sync"].append(n / await ours_sync(bench, f"bench/sync{rep}"))
        peaks["sync"].append(sampler.peak_kib)
        await bench.drop_repo(f"bench/sync{rep}")
        for key, path, headers in (("ttl", bench.data.turtle, {"Content-Type": "text/turtle"}),
                                   ("gzip", bench.data.gzipped, {"Content-Type": NT, "Content-Encoding": "gzip"})):
            bench.log(f"import {progress}: ours, async {key}")
            with RssSampler(bench.server_pid) as sampler:
                ours[key].append(n / await ours_async(bench, f"bench/{key}{rep}", path, headers, f"{key}{rep}"))
            peaks[key].append(sampler.peak_kib)
            await bench.drop_repo(f"bench/{key}{rep}")
        ours["memory"].append(max(0, max(p[-1] for p in peaks.values()) - idle_kib) / 1024)
        for key in ("sync", "ttl", "gzip", "memory"):
            rows[key].ours = Figure.of(ours[key])
    by_kind = ", ".join(f"{key} {(max(values) - idle_kib) / 1024:.0f}" for key, values in peaks.items() if values)
    rows["memory"].note = (f"idle RSS {idle_kib / 1024:.0f} MiB before the first import; VmRSS sampled every 50 ms "
                           f"during each of our imports; peak − idle by import, MiB: {by_kind}")


async def _oxigraph_rep(bench: Bench, rep: int, figures: list[float], row: Row, sync_row: Row) -> None:
    """One Oxigraph PUT into a fresh server; the last one stays up (with the data) for the query scenario."""
    location = bench.workdir / f"oxigraph{rep}"
    try:
        server, seconds = await oxigraph_put(bench, location)
    except (StartFailed, ScenarioFailed, OSError, TimeoutError) as exc:
        row.reference_error = sync_row.reference_error = bench.oxigraph_error = str(exc)[:500]
        return
    figures.append(bench.data.triples / seconds)
    row.reference = sync_row.reference = Figure.of(figures)
    if bench.oxigraph is not None:
        old = bench.oxigraph
        bench.procs.stop(old)
        shutil.rmtree(bench.workdir / f"oxigraph{rep - 1}", ignore_errors=True)
    bench.oxigraph = server
