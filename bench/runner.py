"""The run: generate the data, start every process, run the scenarios, stop everything (whatever happens),
print the table and write the JSON. Scenarios that need a process of their own (a reference server, the bare arq
worker) start it through the same `Processes`, so the runner's `finally` stops it too.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench import scenarios_growth, scenarios_import, scenarios_load, scenarios_notify
from bench.context import Bench, Options
from bench.costs import RedisLook
from bench.data import generate
from bench.loadgen import backend
from bench.processes import Processes, find_binary, rss_kib, serving_pid
from bench.report import Report, machine_facts

Scenario = Callable[[Bench], Awaitable[None]]
SCENARIOS: dict[str, list[Scenario]] = {
    "import": [scenarios_import.run],  # scenario 5 (memory) is sampled during it
    "acceptance": [scenarios_load.acceptance],
    "query": [scenarios_load.query],
    "notify": [scenarios_notify.throughput, scenarios_notify.cost],
    "growth": [scenarios_growth.run],  # after import, whose figures it takes at the data's size
}


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def run(options: Options) -> tuple[Report, bool]:
    """The report, and whether every scenario ran to the end."""
    report = Report()
    workdir = Path(tempfile.mkdtemp(prefix="gsa-bench-"))
    procs = Processes(workdir)
    look: RedisLook | None = None
    ok = True
    try:
        started = time.monotonic()
        _log(f"generating {options.triples:,} triples in {workdir}")
        data = generate(workdir / "data", options.triples, options.seed)
        _log(f"data ready in {time.monotonic() - started:.1f} s: {data.sizes()}")
        generator = backend(options.generator)
        redis = procs.redis()
        receiver = procs.python_module("receiver", "bench.receiver")
        prefix = f"bench-{uuid.uuid4().hex[:12]}"
        server = procs.graphstore(f"redis://127.0.0.1:{redis.port}/0", [f"127.0.0.1:{receiver.port}"], prefix)
        server_pid = serving_pid(server.pid)
        look = RedisLook(redis.port)
        report.facts = machine_facts(data.sizes(), {
            "repetitions": options.repetitions, "import_repetitions": options.import_repetitions,
            "duration_s": options.duration, "acceptance_count": options.acceptance_count,
            "notifications": options.notifications, "cost_calls": options.cost_calls, "quick": options.quick,
            "growth_sizes": list(options.growth_sizes), "growth_repetitions": options.growth_repetitions,
            "load_generator": generator, "seed": options.seed})
        _log(f"processes up: redis :{redis.port}, receiver :{receiver.port}, graphstore-async :{server.port} "
             f"(pid {server.pid}, serving pid {server_pid}, idle RSS {rss_kib(server_pid) / 1024:.0f} MiB); "
             f"load generator: {generator}")
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=True) as http:
            bench = Bench(options, procs, workdir, data, redis, prefix, receiver, server, server_pid, look, http,
                          generator, report)
            for name in options.scenarios:
                for scenario in SCENARIOS[name]:
                    ok = await _one(bench, name, scenario) and ok
        report.facts["wall_clock_s"] = round(time.monotonic() - started, 1)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
        if look is not None:
            with contextlib.suppress(Exception):  # its Redis is gone: nothing to say goodbye to
                await look.aclose()
    return report, ok


async def _one(bench: Bench, name: str, scenario: Scenario) -> bool:
    profiler = _start_profiler(bench.options, f"{name}-{scenario.__name__}", bench.server_pid)
    try:
        await scenario(bench)
        return True
    except Exception as exc:  # one scenario failing must not lose the others' figures
        _log(f"scenario {name} ({scenario.__name__}) failed: {exc}")
        traceback.print_exc(file=sys.stderr)
        bench.report.facts.setdefault("failures", []).append(f"{name}/{scenario.__name__}: {exc}"[:2000])
        return False
    finally:
        _stop_profiler(profiler)


def _start_profiler(options: Options, name: str, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server for the length of one scenario (--py-spy DIR)."""
    directory, fmt = options.profile_dir, options.profile_format
    if directory is None:
        return None
    binary = find_binary("py-spy")
    if binary is None:
        _log("py-spy is not installed (pip install py-spy): no profile")
        return None
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / f"{name}.{ {'flamegraph': 'svg', 'raw': 'txt', 'speedscope': 'json'}[fmt]}"
    _log(f"py-spy recording pid {pid} to {output}")
    return subprocess.Popen([binary, "record", "--pid", str(pid), "--threads", "--nonblocking",
                             "-r", "200", "-f", fmt, "-o", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_profiler(process: subprocess.Popen[bytes] | None) -> None:
    if process is None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
