"""What every scenario shares: the options, the running processes, the data, one HTTP session, one connection
for looking at Redis, the report; and the few steps they all take (create a repository, send a file, wait for a
notification, drain a queue).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.costs import RedisLook
from bench.data import Dataset
from bench.processes import Processes, Service
from bench.report import Report

ACCEPT_JSON = "application/sparql-results+json"


class ScenarioFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Options:
    triples: int
    repetitions: int
    import_repetitions: int
    duration: float
    quick: bool
    seed: int
    acceptance_count: int
    notifications: int
    cost_calls: int
    growth_sizes: tuple[int, ...]
    growth_repetitions: int
    scenarios: tuple[str, ...]
    generator: str
    json_path: Path
    profile_dir: Path | None
    profile_format: str = "flamegraph"


@dataclass
class ImportFigures:
    """One size's async N-Triples imports (ours, notify mode) and pyoxigraph bulk_loads of the same file: the
    import scenario keeps its own, so that the growth scenario need not import that size again."""

    triples: int
    ours: list[float] = field(default_factory=list)  # triples/s
    bulk: list[float] = field(default_factory=list)  # triples/s
    grown_mib: list[float] = field(default_factory=list)  # our server's peak RSS − its RSS before the import
    bulk_grown_mib: list[float] = field(default_factory=list)  # the bulk_load process's peak − its start
    bulk_error: str = ""


@dataclass
class Bench:
    options: Options
    procs: Processes
    workdir: Path
    data: Dataset
    redis: Service
    redis_prefix: str
    receiver: Service
    server: Service
    server_pid: int  # the process that serves (and runs the worker): the supervisor's child
    look: RedisLook
    http: aiohttp.ClientSession
    generator: str  # "wrk" or "python"
    report: Report
    query_repo: str | None = None  # a repository of ours holding the data
    oxigraph: Service | None = None  # an Oxigraph server holding the data
    oxigraph_error: str = ""
    nt_import: ImportFigures | None = None  # the import scenario's, at data.triples

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def notify_url(self, path: str) -> str:
        return f"{self.receiver.base}{path}"

    def import_timeout_s(self, triples: int | None = None) -> float:
        """How long an import of `triples` (default: the data's) may take: bounded, and generous even for a slow
        machine."""
        return 120.0 + (self.data.triples if triples is None else triples) / 4000

    # -- HTTP steps --------------------------------------------------------------------------------------------

    async def create_repo(self, name: str) -> None:
        async with self.http.put(f"{self.server.base}/{name}") as response:
            if response.status not in (201, 204):
                raise ScenarioFailed(f"PUT /{name}: {response.status} {await response.text()}")

    async def drop_repo(self, name: str) -> None:
        async with self.http.delete(f"{self.server.base}/{name}") as response:
            if response.status != 204:
                raise ScenarioFailed(f"DELETE /{name}: {response.status} {await response.text()}")

    async def send_file(self, url: str, path: Path, headers: dict[str, str], expect: tuple[int, ...],
                        timeout_s: float | None = None) -> tuple[float, float, str]:
        """PUT a file (streamed); (monotonic time before its first byte, time of the answer, answer body)."""
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.import_timeout_s())
        with path.open("rb") as body:
            started = time.monotonic()
            async with self.http.put(url, data=body, headers=headers, timeout=timeout) as response:
                text = await response.text()
                answered = time.monotonic()
        if response.status not in expect:
            raise ScenarioFailed(f"PUT {url}: {response.status} {text[:500]}")
        return started, answered, text

    async def receiver_stats(self, path: str) -> dict[str, Any]:
        async with self.http.get(f"{self.receiver.base}/_bench/stats", params={"path": path}) as response:
            stats: dict[str, Any] = await response.json()
            return stats

    async def wait_notifications(self, path: str, count: int, timeout_s: float) -> dict[str, Any]:
        """The receiver's stats for `path` once `count` notifications arrived there; ScenarioFailed at timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = await self.receiver_stats(path)
            if stats["count"] >= count:
                return stats
            if time.monotonic() > deadline:
                raise ScenarioFailed(f"{stats['count']} of {count} notifications at {path} after {timeout_s:.0f} s")
            await asyncio.sleep(0.05)

    async def drain(self, queue: str | None = None, timeout_s: float = 300.0) -> float:
        """Wait until every job of a queue has run (default: our task queue) — it is empty and no job is in
        progress; how long that took."""
        started = time.monotonic()
        name = queue or f"{self.redis_prefix}:queue"
        while True:
            queued = await self.look.queued(name)
            if queued == 0 and not await self.look.in_progress():
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise ScenarioFailed(f"{name} did not drain in {timeout_s} s ({queued} queued)")
            await asyncio.sleep(0.1)

    async def get_json(self, url: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.import_timeout_s())
        async with self.http.get(url, params=params, headers=headers, timeout=timeout) as response:
            if response.status != 200:
                raise ScenarioFailed(f"GET {url}: {response.status} {(await response.text())[:500]}")
            return await response.json(content_type=None)
