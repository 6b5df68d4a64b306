"""Figures, rows and the report: a median with min and max per figure, a ratio to the reference measured in
the same run, the goal, whether it was met; printed as one table and written as JSON with the machine's facts.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

GoalKind = Literal["ratio_at_least", "ratio_above", "at_least", "at_most", "info"]


@dataclass(frozen=True)
class Figure:
    """Repeated measurements of one quantity: the median, min and max of them."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Figure | None:
        return cls(tuple(values)) if values else None

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def as_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.min, "max": self.max, "values": list(self.values)}


@dataclass(frozen=True)
class Goal:
    kind: GoalKind
    value: float = 0.0

    def text(self, unit: str) -> str:
        if self.kind == "ratio_at_least":
            return f"≥ {self.value:g}×"
        if self.kind == "ratio_above":
            return f"> {self.value:g}×"
        if self.kind == "at_least":
            return f"≥ {self.value:,.0f} {unit}"
        if self.kind == "at_most":
            return f"≤ {self.value:,.0f} {unit}"
        return "informational"


INFO = Goal("info")


@dataclass
class Row:
    key: str
    scenario: str
    unit: str
    ours: Figure | None
    reference_name: str | None = None
    reference: Figure | None = None
    goal: Goal = INFO
    note: str = ""
    reference_error: str = ""

    @property
    def ratio(self) -> float | None:
        """ours / reference, by medians."""
        if self.ours is None or self.reference is None or self.reference.median == 0:
            return None
        return self.ours.median / self.reference.median

    @property
    def met(self) -> str:
        kind = self.goal.kind
        if self.ours is None:
            return "not measured"
        if kind == "info":
            return "info"
        if kind in ("at_least", "at_most"):
            median = self.ours.median
            return "yes" if (median >= self.goal.value if kind == "at_least" else median <= self.goal.value) else "no"
        ratio = self.ratio
        if ratio is None:
            return "missing reference"
        return "yes" if (ratio >= self.goal.value if kind == "ratio_at_least" else ratio > self.goal.value) else "no"

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "scenario": self.scenario, "unit": self.unit,
                "ours": self.ours.as_json() if self.ours else None, "reference_name": self.reference_name,
                "reference": self.reference.as_json() if self.reference else None, "ratio": self.ratio,
                "goal": self.goal.text(self.unit), "goal_kind": self.goal.kind, "goal_value": self.goal.value,
                "met": self.met, "note": self.note, "reference_error": self.reference_error}


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def as_json(self) -> dict[str, Any]:
        return {"machine": self.facts, "rows": [row.as_json() for row in self.rows]}

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n")

    def table(self) -> str:
        header = ("scenario", "ours (median, min–max)", "reference (median, min–max)", "ratio", "goal", "met")
        lines = [header] + [(
            row.scenario,
            _figure_text(row.ours, row.unit),
            (f"{row.reference_name}: " if row.reference_name else "")
            + (_figure_text(row.reference, row.unit) if row.reference else ("missing" if row.reference_name else "—")),
            f"{row.ratio:.2f}×" if row.ratio is not None else "—",
            row.goal.text(row.unit),
            row.met,
        ) for row in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        out = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |" for line in lines]
        out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        notes = [f"* {row.scenario}: {row.note}" for row in self.rows if row.note]
        notes += [f"* {row.scenario}: reference missing: {row.reference_error}" for row in self.rows
                  if row.reference_error]
        return "\n".join(out + ([""] + notes if notes else []))


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3g}"


def _figure_text(figure: Figure | None, unit: str) -> str:
    if figure is None:
        return "—"
    if len(figure.values) == 1:
        return f"{_number(figure.median)} {unit}"
    return f"{_number(figure.median)} {unit} ({_number(figure.min)}–{_number(figure.max)})"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def machine_facts(sizes: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(), "cpu_model": _cpu_model(), "memory_mib": _memory_total_mib(),
        "load_average_at_start": list(os.getloadavg()), "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {name: _version(name) for name in
                     ("graphstore-async", "pyoxigraph", "oxigraph", "aiohttp", "rdflib", "arq", "redis")},
        "sizes": sizes, "settings": settings,
    }
