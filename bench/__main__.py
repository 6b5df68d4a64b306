"""`python -m bench`: run the benchmarks, print one table, write bench/results/latest.json.

    python -m bench                       # the default run: 1M triples, 3 repetitions, 10 s query runs,
                                          # imports of 100k, 1M and 10M triples for the growth rows
    python -m bench --quick               # small sizes (make bench-quick); growth at 20k triples only
    python -m bench --triples 2000 --repetitions 1 --duration 1 --quick --json OUT   # the smoke test's run
    python -m bench --scenarios notify,query --quick              # some scenarios only

Scenarios: import (1, and 5: memory), acceptance (2), query (3), notify (4), growth (6: import cost by size).
Every figure is ours against a reference measured in the same run; acceptance, query and notify also report
Redis commands and server CPU per request or task (bench/costs.py).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.context import Options
from bench.runner import SCENARIOS, run

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triples", type=int, help="triples in the generated data (default 1,000,000; "
                        "100,000 with --quick)")
    parser.add_argument("--repetitions", type=int, help="repetitions of each figure (default 3; 1 with --quick)")
    parser.add_argument("--import-repetitions", type=int,
                        help="repetitions of the import scenario, the slowest (default: --repetitions)")
    parser.add_argument("--duration", type=float, help="seconds of each query run (default 10; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes and counts")
    parser.add_argument("--acceptance-count", type=int, help="submissions per acceptance run (5,000; quick 1,000)")
    parser.add_argument("--notifications", type=int, help="tasks per notification run (2,000; quick 500)")
    parser.add_argument("--cost-calls", type=int, help="calls per notification-cost run (2,000; quick 300)")
    parser.add_argument("--growth-sizes", help="comma-separated triple counts of the growth scenario's imports "
                        "(default 100000,1000000,10000000; quick 20000); a size equal to --triples takes the "
                        "import scenario's figures when it ran")
    parser.add_argument("--growth-repetitions", type=int,
                        help="repetitions of each growth size (default 1: the 10M import is the slowest step)")
    parser.add_argument("--seed", type=int, default=42, help="the data's random seed")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, from {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk when installed (auto), or our Python one")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the results ({RESULTS})")
    parser.add_argument("--py-spy", type=Path, metavar="DIR", dest="profile_dir",
                        help="record the server with py-spy during each scenario, one file per scenario in DIR")
    parser.add_argument("--py-spy-format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph",
                        help="py-spy's output format (raw: collapsed stacks, one line each)")
    return parser


def options_from(argv: Sequence[str] | None = None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    quick = bool(args.quick)

    def pick(value: int | float | None, default: int | float, quick_default: int | float) -> int | float:
        return value if value is not None else (quick_default if quick else default)

    triples = int(pick(args.triples, 1_000_000, 100_000))
    repetitions = int(pick(args.repetitions, 3, 1))
    scenarios = tuple(name.strip() for name in args.scenarios.split(",") if name.strip())
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown or not scenarios:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    for name in ("triples", "repetitions", "import_repetitions", "acceptance_count", "notifications", "cost_calls",
                 "growth_repetitions"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    import_repetitions = args.import_repetitions or repetitions
    growth_sizes = _sizes(parser, args.growth_sizes or ("20000" if quick else "100000,1000000,10000000"))
    return Options(
        triples=triples, repetitions=repetitions, import_repetitions=import_repetitions,
        duration=float(pick(args.duration, 10.0, 2.0)), quick=quick, seed=args.seed,
        acceptance_count=int(pick(args.acceptance_count, 5000, 1000)),
        notifications=int(pick(args.notifications, 2000, 500)), cost_calls=int(pick(args.cost_calls, 2000, 300)),
        growth_sizes=growth_sizes, growth_repetitions=args.growth_repetitions or 1,
        scenarios=scenarios, generator=args.generator, json_path=args.json, profile_dir=args.profile_dir,
        profile_format=args.py_spy_format,
    )


def _sizes(parser: argparse.ArgumentParser, text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(dict.fromkeys(int(item.replace("_", "")) for item in text.split(",") if item.strip()))
    except ValueError:
        parser.error(f"--growth-sizes must be comma-separated integers, not {text!r}")
    if not sizes or min(sizes) < 1:
        parser.error("--growth-sizes needs at least one size, each at least 1")
    return sizes


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the runner's finally, which stops every process


def main(argv: Sequence[str] | None = None) -> int:
    options = options_from(argv)
    signal.signal(signal.SIGTERM, _terminated)
    report, ok = asyncio.run(run(options))
    print()
    print(report.table())
    report.write_json(options.json_path)
    print(f"\nresults: {options.json_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
