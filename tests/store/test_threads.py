"""The store's read threads (store/threads.py): an Executor, bounded, kept, and told of the work it drops."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from graphstore_async.store.threads import Threads


def test_calls_run_on_at_most_max_threads_which_are_kept() -> None:
    pool = Threads(2, "test-read")
    seen: set[str] = set()
    running, most = 0, 0
    lock, done = threading.Lock(), threading.Semaphore(0)

    def job() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            seen.add(threading.current_thread().name)
        time.sleep(0.01)
        with lock:
            running -= 1
        done.release()

    try:
        for _ in range(20):
            pool.call(job)
        for _ in range(20):
            assert done.acquire(timeout=5)
        assert most == 2 and seen == {"test-read_0", "test-read_1"}
    finally:
        pool.shutdown()


def test_submit_gives_a_future_with_the_result_or_the_error() -> None:
    with Threads(1, "test-read") as pool:
        assert pool.submit(lambda a, b: a + b, 2, b=3).result(timeout=5) == 5
        failing = pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(timeout=5)
        assert pool.submit(lambda: "still there").result(timeout=5) == "still there"  # the thread lives on


def test_a_call_that_raises_does_not_end_its_thread() -> None:
    with Threads(1, "test-read") as pool:
        pool.call(lambda: [][0])
        assert pool.submit(threading.current_thread).result(timeout=5).name == "test-read_0"


def test_shutdown_drops_what_has_not_started_and_says_so() -> None:
    pool = Threads(1, "test-read")
    started, release = threading.Event(), threading.Event()
    dropped: list[int] = []
    ran: list[int] = []

    def blocker() -> None:
        started.set()
        release.wait(5)

    pool.call(blocker)
    assert started.wait(5)
    for number in range(3):
        pool.call(lambda number=number: ran.append(number), dropped=lambda number=number: dropped.append(number))
    queued = pool.submit(lambda: ran.append(-1))
    pool.shutdown(wait=False, cancel_futures=True)  # while the blocker still runs
    assert dropped == [0, 1, 2] and queued.cancelled()
    with pytest.raises(RuntimeError):
        pool.call(lambda: None)
    release.set()
    pool.shutdown(wait=True)  # again: waits for the thread, which ends
    assert ran == []
    with pytest.raises(CancelledError):
        queued.result(timeout=1)


def test_max_threads_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Threads(0, "test-read")
