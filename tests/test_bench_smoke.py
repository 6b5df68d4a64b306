"""The benchmark at tiny sizes, as a smoke test: it runs to the end and reports every row. No speed is asserted
(the figures of a 2,000-triple run on a busy test machine mean nothing)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROWS = {
    "import.async_nt", "import.async_nt_vs_oxigraph", "import.sync_nt", "import.async_turtle", "import.async_gzip",
    "memory.import", "acceptance.rate", "acceptance.p50", "acceptance.p99", "acceptance.redis_commands",
    "acceptance.server_cpu", "query.selective", "query.selective_vs_minimal", "query.aggregate",
    "query.redis_commands", "query.server_cpu", "notify.throughput", "notify.throughput_vs_arq",
    "notify.redis_commands", "notify.server_cpu", "notify.cost",
    "import.growth_20k", "memory.growth_20k",  # --quick: one growth size, 20,000 triples
}
SMOKE_TIMEOUT_S = 150


def _numeric(figure: object) -> bool:
    return (isinstance(figure, dict) and all(isinstance(figure[k], int | float) and math.isfinite(figure[k])
                                              for k in ("median", "min", "max")))


@pytest.mark.timeout(SMOKE_TIMEOUT_S + 30)
def test_bench_runs_at_tiny_sizes(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # Its own session, so that on a time-out the servers it started go down with it.
    with subprocess.Popen(
        [sys.executable, "-m", "bench", "--triples", "2000", "--repetitions", "1", "--duration", "1", "--quick",
         "--json", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as bench:
        try:
            stdout, stderr = bench.communicate(timeout=SMOKE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(bench.pid, signal.SIGKILL)
            stdout, stderr = bench.communicate()
            pytest.fail(f"the benchmark did not finish in {SMOKE_TIMEOUT_S} s:\n{stdout[-4000:]}\n{stderr[-4000:]}")
    assert bench.returncode == 0, f"stdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-4000:]}"
    assert "| scenario" in stdout  # the table

    results = json.loads(out.read_text())
    rows = {row["key"]: row for row in results["rows"]}
    assert set(rows) == ROWS
    for key, row in rows.items():
        assert _numeric(row["ours"]), key
        assert row["met"] in ("yes", "no", "info", "missing reference"), key
        if row["reference_name"]:  # measured, or said to be missing (a reference that could not start)
            assert _numeric(row["reference"]) or row["reference_error"], key
            assert isinstance(row["ratio"], float) or row["reference_error"], key

    machine = results["machine"]
    assert isinstance(machine["cpu_count"], int)
    assert machine["python"] and machine["date"]
    for package in ("pyoxigraph", "aiohttp", "rdflib", "arq"):
        assert machine["versions"][package], package
    assert machine["sizes"]["triples"] == 2000
    assert machine["sizes"]["ntriples_bytes"] > 0
