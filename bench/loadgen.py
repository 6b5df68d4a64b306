"""Driving load from a separate process: wrk (with a generated Lua script) when it is installed, else our
Python generator (bench/load.py). Both take the same spec and give the same results, so every figure and its
reference in one run come from the same generator.

wrk is preferred: it is C and spends a fraction of the CPU the Python generator does, which matters on a
2-core machine where the generator shares the cores with the servers under test. For a fixed count, the Lua
script prints DONE at the count-th answer and stops its thread; we then interrupt wrk (SIGINT), which ends the
run and prints the totals (the interruption adds a millisecond or so to the duration).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.processes import HOST, find_binary

WRK_TIMEOUT_S = "60s"  # one request; our server answers slowly while it imports


class LoadFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class LoadSpec:
    port: int
    targets: list[str]
    method: str = "GET"
    headers: dict[str, str] | None = None
    body: str | None = None  # "{i}" replaced by the request's number
    concurrency: int = 8
    count: int | None = None
    duration: float | None = None
    expect: tuple[int, ...] = (200,)
    limit_s: float = 300.0  # a fixed count must be done by then

    def as_json(self) -> str:
        return json.dumps({"port": self.port, "targets": self.targets, "method": self.method,
                           "headers": self.headers or {}, "body": self.body, "concurrency": self.concurrency,
                           "count": self.count, "duration": self.duration, "expect": list(self.expect)})


def backend(choice: str = "auto") -> str:
    """'wrk' or 'python'."""
    if choice == "python":
        return "python"
    if find_binary("wrk") is not None:
        return "wrk"
    if choice == "wrk":
        raise LoadFailed("wrk is not installed (Debian package wrk)")
    return "python"


async def run_load(spec: LoadSpec, generator: str) -> dict[str, Any]:
    results = await (_run_wrk(spec) if generator == "wrk" else _run_python(spec))
    if results["count"] == 0:
        raise LoadFailed(f"no request succeeded: {results}")
    return results


async def _run_python(spec: LoadSpec) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    bound = spec.duration + 60 if spec.duration is not None else spec.limit_s
    try:
        out, err = await asyncio.wait_for(process.communicate(spec.as_json().encode()), timeout=bound)
    except TimeoutError:
        raise LoadFailed(f"the load generator did not finish in {bound} s") from None
    finally:
        kill(process)
    if process.returncode != 0:
        raise LoadFailed(f"the load generator failed ({process.returncode}): {err.decode()[-2000:]}")
    results: dict[str, Any] = json.loads(out)
    return results


def kill(process: asyncio.subprocess.Process) -> None:
    """Kill a child that is still running (a time-out, or the run is being interrupted): none outlives us."""
    if process.returncode is None:
        try:
            process.kill()
        except ProcessLookupError:
            pass


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def lua_script(spec: LoadSpec) -> str:
    targets = ",\n".join(_lua_string(t) for t in spec.targets)
    headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in (spec.headers or {}).items())
    parts = "nil" if spec.body is None else "{" + ", ".join(_lua_string(p) for p in spec.body.split("{i}")) + "}"
    return f"""
local targets = {{
{targets}
}}
local method = {_lua_string(spec.method)}
local headers = {{ {headers} }}
local parts = {parts}
local limit = {spec.count or 0}
local issued = 0
local answered = 0

request = function()
  local i = issued
  issued = issued + 1
  local body = nil
  if parts ~= nil then body = table.concat(parts, tostring(i)) end
  return wrk.format(method, targets[(i % #targets) + 1], headers, body)
end

if limit > 0 then
  response = function(status, hdrs, body)
    answered = answered + 1
    if answered == limit then
      io.write("DONE\\n")
      io.flush()
      wrk.thread:stop()
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


async def _run_wrk(spec: LoadSpec) -> dict[str, Any]:
    binary = find_binary("wrk")
    assert binary is not None
    seconds = spec.duration if spec.duration is not None else spec.limit_s
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(lua_script(spec))
        script.flush()
        argv = [binary, "-t1", f"-c{spec.concurrency}", f"-d{max(1, round(seconds))}s", "--timeout",
                WRK_TIMEOUT_S, "-s", script.name, f"http://{HOST}:{spec.port}/"]
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        lines: list[bytes] = []
        try:
            async with asyncio.timeout(seconds + 60):
                while line := await process.stdout.readline():
                    if line.strip() == b"DONE":
                        process.send_signal(signal.SIGINT)
                    lines.append(line)
                err = await process.stderr.read()
                await process.wait()
        except TimeoutError:
            raise LoadFailed(f"wrk did not finish in {seconds + 60} s") from None
        finally:
            kill(process)
    summary = next((json.loads(line) for line in reversed(lines) if line.startswith(b'{"requests"')), None)
    if process.returncode != 0 or summary is None:
        raise LoadFailed(f"wrk failed ({process.returncode}): {err.decode()[-1000:]} {b''.join(lines)[-1000:]!r}")
    if spec.count is not None and not any(line.strip() == b"DONE" for line in lines):
        raise LoadFailed(f"wrk ran out of time before {spec.count} answers: {summary}")
    duration = summary["duration_us"] / 1e6
    errors = summary["status_errors"] + summary["socket_errors"]
    count = summary["requests"] - summary["status_errors"]
    return {"count": count, "errors": errors, "statuses": {"non-2xx": summary["status_errors"]},
            "error_sample": "", "duration": duration, "rate": count / duration if duration else 0.0,
            "p50_ms": summary["p50_us"] / 1000, "p99_ms": summary["p99_us"] / 1000,
            "started": started, "ended": started + duration}
