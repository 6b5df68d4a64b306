"""The import reference, run in a fresh process: `python -m bench.bulkload STORE_DIR FILE`.

Opens an empty on-disk pyoxigraph Store and bulk-loads the N-Triples file into it; prints JSON with the time
that took (open + bulk_load + flush, the interpreter's start-up and imports excluded), the store's size, and the
process's RSS before the load and at its peak (VmHWM), in KiB.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyoxigraph as ox


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main(argv: list[str]) -> int:
    store_dir, path = argv
    rss_before = _status_kib("VmRSS")
    started = time.perf_counter()
    store = ox.Store(store_dir)
    store.bulk_load(path=path, format=ox.RdfFormat.N_TRIPLES)
    store.flush()
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "triples": len(store), "rss_before_kib": rss_before, "peak_kib": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
