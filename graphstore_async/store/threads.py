"""A bounded pool of store threads: a ThreadPoolExecutor that costs less per call.

A selective query is answered by the engine in tens of microseconds, and then the hand-over to a thread and back is
most of what a query costs the event loop: ThreadPoolExecutor's way in (a Future with its Condition, a work item,
the idle semaphore) and asyncio.wrap_future's way back (done callbacks copying the state between two futures)
are ~30 us of Python each time, against ~5 us for a job put on a SimpleQueue and its answer sent back with one
`call_soon_threadsafe`. `Threads` is an Executor (`submit` gives a Future, for every caller that wants one), and
has `call`, the cheap way in, for a caller that needs no Future: store/streams.py, whose writer hands its own
output to the loop. A job that will never run (the pool shut down with `cancel_futures`) has its `dropped` called
instead, so that whoever waits for it is told. (Measured on the 2-core VM, 8 callers at once: a hop there and back
cost the loop 27-42 us through ThreadPoolExecutor and wrap_future, 3-9 us this way.)

Its threads are not daemons, as ThreadPoolExecutor's are not: a thread still inside the engine holds up the
interpreter's exit, and `serve` decides how long to wait for it (supervisor.exit_unless_threads_busy). An idle
thread ends at `shutdown`, or, if nobody shuts the pool down, within IDLE_CHECK_S of the interpreter's exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")
IDLE_CHECK_S = 2.0  # an idle thread looks this often whether the interpreter is exiting (see _work)


class _Job:
    __slots__ = ("dropped", "fn")

    def __init__(self, fn: Callable[[], object], dropped: Callable[[], object] | None) -> None:
        self.fn = fn
        self.dropped = dropped


class Threads(Executor):
    """At most `max_threads` threads, started as jobs need them (one per job until then) and kept."""

    def __init__(self, max_threads: int, name: str) -> None:
        if max_threads <= 0:
            raise ValueError("max_threads must be greater than 0")
        self._max = max_threads
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a job and not yet promised one
        self._shut = False

    def call(self, fn: Callable[[], object], *, dropped: Callable[[], object] | None = None) -> None:
        """Run `fn()` on one of the threads (its exceptions are the caller's to catch: they are dropped); if the
        pool is shut down before it runs, `dropped()` is called instead. RuntimeError once shut down."""
        job = _Job(fn, dropped)
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new work after shutdown")
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            self._jobs.put(job)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self.call(run, dropped=future.cancel)
        return future

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            try:
                job = jobs.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                if threading.main_thread().is_alive():
                    continue
                job = None  # the interpreter is exiting and nobody shut the pool down: it would wait for us
            if job is None:
                return
            try:
                job.fn()
            except BaseException:  # a job handles its own errors; one that did not must not end the thread
                pass
            del job  # nothing of the job's (a query's result) outlives it on this thread
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new job; with `cancel_futures`, the jobs not started are dropped (their `dropped` called); with
        `wait`, wait for every thread to end (a job inside the engine may run long)."""
        with self._lock:
            if not self._shut:
                self._shut = True
                dropped: list[_Job] = []
                if cancel_futures:
                    while True:
                        try:
                            job = self._jobs.get_nowait()
                        except queue.Empty:
                            break
                        if job is not None:
                            dropped.append(job)
                for _ in self._threads:
                    self._jobs.put(None)
            else:
                dropped = []
            threads = list(self._threads)
        for job in dropped:
            if job.dropped is not None:
                job.dropped()
        if wait:
            for thread in threads:
                thread.join()
