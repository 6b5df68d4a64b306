"""What a scenario costs besides time: the Redis commands run (INFO commandstats) and a process's CPU time
(utime + stime from /proc/PID/stat: every thread of the process), as deltas over a window, per task or request.

Redis counts every command it executes, whoever sent it: each command a Lua script runs counts once, besides the
EVALSHA that ran the script, and MULTI and EXEC count besides the commands of their transaction. So the count is
of commands Redis ran, not of round trips; and every client's commands are in it, an idle server's polling too.
Only the bench's own looking is left out — INFO itself (by name), and the ZCARD and SCAN of `RedisLook.queued`
and `RedisLook.in_progress`, which it counts as it sends them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bench.processes import HOST
from bench.report import INFO, Figure, Goal, Report, Row

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# What the rows' notes say is counted.
COMMANDS = "Redis commands run (INFO commandstats: each one a Lua script runs, MULTI and EXEC too)"
CPU = "utime + stime (/proc/PID/stat)"


def cpu_s(pid: int) -> float:
    """A process's CPU time so far, user + system, in seconds (a clock tick's resolution: 10 ms here)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()  # the command's name may hold spaces, never ")"
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # fields 14 and 15 of proc(5)


class RedisLook:
    """The bench's one connection for looking at its Redis, and the count of the commands it sent (but INFO)."""

    def __init__(self, port: int) -> None:
        # No CLIENT SETINFO on connecting: nothing is sent but what is counted here.
        self.client = Redis(host=HOST, port=port, lib_name=None, lib_version=None)
        self.own = 0

    async def commands(self) -> int:
        """Commands Redis has run since it started, less the bench's own."""
        stats = await self.client.info("commandstats")
        return sum(int(value["calls"]) for name, value in stats.items() if name != "cmdstat_info") - self.own

    async def queued(self, queue: str) -> int:
        self.own += 1
        return int(await self.client.zcard(queue))

    async def in_progress(self) -> bool:
        """Whether any arq job is marked in progress (by any worker, on any queue)."""
        cursor = 0
        while True:
            self.own += 1
            cursor, keys = await self.client.scan(cursor, match="arq:in-progress:*", count=1000)
            if keys:
                return True
            if cursor == 0:
                return False

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass(frozen=True)
class Usage:
    commands: int
    cpu_s: float
    at: float  # time.monotonic()

    def __sub__(self, start: Usage) -> Usage:
        return Usage(self.commands - start.commands, self.cpu_s - start.cpu_s, self.at - start.at)


async def usage(look: RedisLook, pid: int) -> Usage:
    """Redis's command count and process `pid`'s CPU time now; subtract two to get a window's."""
    return Usage(await look.commands(), cpu_s(pid), time.monotonic())


@dataclass
class CostRows:
    """A scenario's two cost rows — Redis commands and server CPU per task or request — for ours and a reference
    measured alike."""

    commands: Row
    cpu: Row
    ours_commands: list[float] = field(default_factory=list)
    ours_cpu_us: list[float] = field(default_factory=list)
    reference_commands: list[float] = field(default_factory=list)
    reference_cpu_us: list[float] = field(default_factory=list)

    @classmethod
    def add(cls, report: Report, key: str, label: str, per: str, *, commands_reference: str | None,
            cpu_reference: str | None, commands_goal: Goal = INFO) -> CostRows:
        unit = {"request": "req"}.get(per, per)  # as in req/s
        return cls(
            report.add(Row(f"{key}.redis_commands", f"{label}: Redis commands per {per}", f"commands/{unit}", None,
                           commands_reference, goal=commands_goal)),
            report.add(Row(f"{key}.server_cpu", f"{label}: server CPU per {per}", f"µs/{unit}", None,
                           cpu_reference)))

    def ours(self, spent: Usage, count: int) -> None:
        self.ours_commands.append(spent.commands / count)
        self.ours_cpu_us.append(spent.cpu_s / count * 1e6)
        self.commands.ours, self.cpu.ours = Figure.of(self.ours_commands), Figure.of(self.ours_cpu_us)

    def reference(self, spent: Usage, count: int) -> None:
        """The reference's figures (its Redis commands only when they are a reference: it uses Redis)."""
        if self.commands.reference_name:
            self.reference_commands.append(spent.commands / count)
            self.commands.reference = Figure.of(self.reference_commands)
        self.reference_cpu_us.append(spent.cpu_s / count * 1e6)
        self.cpu.reference = Figure.of(self.reference_cpu_us)

    def reference_failed(self, error: str) -> None:
        for row in (self.commands, self.cpu):
            if row.reference_name:
                row.reference_error = error


def idle_rate(spent: Usage) -> str:
    """A window's commands and CPU per second, as text for a note."""
    seconds = max(spent.at, 1e-9)
    return f"{spent.commands / seconds:,.0f} Redis commands/s and {spent.cpu_s / seconds * 1000:.0f} ms CPU/s"
