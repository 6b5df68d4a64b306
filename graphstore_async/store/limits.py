"""What bounds the store's work: its thread pools, and each account's share of the threads that run queries.

Reads (queries, exports, sizes), writes (updates, loads) and the syntax checks of acceptance run on three
bounded pools, so that a pool full of long queries never holds up a write, a submission's check, or the event
loop. Within the read pool an account runs at most `max_queries_per_account` queries at once. A query takes its
slot before it starts and gives it back when its store thread ends, not when its request ends: pyoxigraph cannot
interrupt a query, so a query abandoned at its time limit keeps its thread until the engine returns, and the
slot is what stops one account from filling the pool with such threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

from graphstore_async.errors import QueryTimeout, TooManyQueries
from graphstore_async.settings import Settings
from graphstore_async.store.threads import Threads

RETRY_AFTER_S = 5
Release = Callable[[], None]  # gives a slot back: from any thread, and only the first call counts


@dataclass(frozen=True)
class StorePools:
    reads: Executor
    writes: Executor
    checks: Executor

    @classmethod
    def create(cls, settings: Settings) -> StorePools:
        return cls(Threads(settings.store_threads, "store-read"),  # queries: the cheap way in (threads.py)
                   ThreadPoolExecutor(settings.write_threads, thread_name_prefix="store-write"),
                   ThreadPoolExecutor(settings.check_threads, thread_name_prefix="store-check"))

    @classmethod
    def single(cls, executor: Executor) -> StorePools:
        """One executor for everything (the CLI's offline load, where nothing runs beside it)."""
        return cls(executor, executor, executor)

    def shutdown(self, *, wait: bool = True) -> None:
        """Drop the work not started yet; with `wait`, wait for every thread (a query inside the engine may run
        for long after its deadline)."""
        for pool in (self.checks, self.writes, self.reads):
            pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> StorePools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


@dataclass
class AccountSlots:
    """At most `per_account` slots per account; a waiter is handed a slot in turn as one is given back."""

    per_account: int
    _taken: dict[str, int] = field(default_factory=dict)
    _waiting: dict[str, deque[asyncio.Future[None]]] = field(default_factory=dict)

    def taken(self, account: str) -> int:
        return self._taken.get(account, 0)

    async def take(self, account: str, *, wait_s: float | None, deadline: float | None,
                   limit_s: float | None) -> Release:
        """A slot of `account`'s, waiting at most `wait_s` (then TooManyQueries; None: no bound of its own) and
        never past `deadline`, a loop.time() (then QueryTimeout: the query's time limit, `limit_s`, passed while
        it waited)."""
        loop = asyncio.get_running_loop()
        if self.taken(account) < self.per_account and not self._waiting.get(account):
            self._taken[account] = self.taken(account) + 1
            return self._release_for(account, loop)
        until = None if wait_s is None else loop.time() + wait_s
        by_deadline = deadline is not None and (until is None or deadline <= until)
        if by_deadline:
            until = deadline
        turn: asyncio.Future[None] = loop.create_future()
        queue = self._waiting.setdefault(account, deque())
        queue.append(turn)
        try:
            async with asyncio.timeout_at(until):
                await turn
        except TimeoutError:
            if not turn.done() or turn.cancelled():
                if by_deadline:
                    raise QueryTimeout(f"the query did not get one of its account's {self.per_account} query slots "
                                       f"within its time limit of {limit_s:g} s", timeout_s=limit_s) from None
                raise TooManyQueries(
                    f"account {account} runs {self.per_account} queries already (the most it may run at once), and "
                    f"none ended within {wait_s:g} s; try again later", account=account,
                    headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        except BaseException:
            if turn.done() and not turn.cancelled():  # handed a slot as it was being cancelled: give it back
                self._give_back(account)
            raise
        finally:
            if turn in queue:
                queue.remove(turn)
            if not queue:
                self._waiting.pop(account, None)
        return self._release_for(account, loop)

    def _release_for(self, account: str, loop: asyncio.AbstractEventLoop) -> Release:
        once = threading.Lock()

        def release() -> None:
            if not once.acquire(blocking=False):
                return
            if asyncio._get_running_loop() is loop:  # on the loop already (a stream's end): no wake-up needed
                self._give_back(account)
                return
            try:
                loop.call_soon_threadsafe(self._give_back, account)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        return release

    def _give_back(self, account: str) -> None:
        """On the loop: hand the slot to the next waiter, or free it."""
        for turn in self._waiting.get(account, ()):
            if not turn.done():
                turn.set_result(None)  # the slot passes to it: still taken
                return
        left = self.taken(account) - 1
        if left > 0:
            self._taken[account] = left
        else:
            self._taken.pop(account, None)
