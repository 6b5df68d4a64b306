"""Runaway queries for the time-limit tests, and a way to see the store threads they leave running.

A 3-way cross product COUNT over RUNAWAY_TRIPLES triples (27M solutions) takes the engine 2-3 s on one free core of
a fast day (8M took 0.67 s on 2026-12-02, too little for the tests' limits; 2-4 s on a slow day), all of it before
its first output, so pyoxigraph cannot be stopped: it runs far past the 1-1.5 s limits of the
tests, and ends by itself a few seconds later. Tests wait for those threads (wait_until_idle) before they end, so
that none is left to slow down the tests after them.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import aiohttp

from graphstore_async.store.streams import ThreadStream

RUNAWAY_TRIPLES = 300
CROSS_COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
CROSS_SELECT = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"  # streamed: it stops when its reader goes
IDLE_TIMEOUT_S = 60.0


def triples(count: int = RUNAWAY_TRIPLES) -> bytes:
    return "".join(f'<http://example.org/s{i}> <http://example.org/p> "{i}" .\n' for i in range(count)).encode()


async def fill(http: aiohttp.ClientSession, repo_url: str, headers: dict[str, str] | None = None,
               count: int = RUNAWAY_TRIPLES) -> None:
    """Make the repository at `repo_url` (if it is not there) and put `count` triples in its default graph."""
    async with http.put(repo_url, headers=headers) as response:
        assert response.status in (201, 204), await response.text()
    async with http.put(f"{repo_url}/service?default", data=triples(count),
                        headers={**(headers or {}), "Content-Type": "application/n-triples"}) as response:
        assert response.status in (201, 204), await response.text()


def busy_store_threads() -> int:
    """Threads of this process (the servers of the tests run in it) inside a store stream's writer: evaluating a
    query in the engine, or writing its result."""
    frames, frame = sys._current_frames(), None
    try:
        busy = 0
        for thread in threading.enumerate():
            frame = frames.get(thread.ident or -1)
            while frame is not None:
                if frame.f_code is ThreadStream._run.__code__:
                    busy += 1
                    break
                frame = frame.f_back
        return busy
    finally:
        # Frames of other threads must not outlive this call: a frame kept here (in a cycle with this one's)
        # would keep a query's result alive, to be dropped later on this thread, which pyoxigraph refuses.
        del frames, frame


async def wait_until_idle(timeout_s: float = IDLE_TIMEOUT_S) -> float:
    """Wait until no store thread runs a query; how long that took."""
    started = time.monotonic()
    while busy_store_threads():
        assert time.monotonic() - started < timeout_s, f"store threads still busy after {timeout_s} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started
