"""A query's time limit, its account's slots, and the retirement of a dropped store, on the embedded store itself
(real pyoxigraph on disk, no server): what stops at the deadline, and what runs on until the engine returns."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from runaway import CROSS_COUNT, CROSS_SELECT, RUNAWAY_TRIPLES, busy_store_threads, triples, wait_until_idle

from graphstore_async import formats
from graphstore_async.errors import QueryTimeout, RepositoryNotFound, TooManyQueries
from graphstore_async.settings import Settings
from graphstore_async.store import QueryLimits, Source
from graphstore_async.store.embedded import EmbeddedStore
from graphstore_async.store.limits import AccountSlots, StorePools

LIMIT_S = 1.0


@pytest.fixture
def pools() -> Iterator[StorePools]:
    with StorePools.create(Settings(store_threads=4)) as made:
        yield made


async def filled(path: Path, pools: StorePools) -> EmbeddedStore:
    """A store at `path` with the runaway queries' triples."""
    store = EmbeddedStore.opener(pools, Settings())(path)
    body = path.with_name(path.name + ".nt")
    body.write_bytes(triples())
    await store.load([Source(body, formats.N_TRIPLES)], graph=None, replace=False)
    return store


async def test_count_past_its_limit_times_out_and_its_thread_runs_until_the_engine_returns(
        tmp_path: Path, pools: StorePools) -> None:
    store = await filled(tmp_path / "store", pools)
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as raised:
        await store.query(CROSS_COUNT, format=formats.CSV, limits=QueryLimits(LIMIT_S, "alice"))
    assert LIMIT_S <= time.monotonic() - started < LIMIT_S + 1.0
    assert raised.value.problem()["type"].endswith("/query-timeout") and raised.value.status == 503
    assert busy_store_threads() == 1, "the engine cannot be interrupted: its thread runs on"
    await wait_until_idle()
    assert store._calls.running == 0  # the store's count of calls, and the account's slot, came back with the thread


async def test_select_past_its_limit_stops_its_thread_at_the_next_write(tmp_path: Path, pools: StorePools) -> None:
    """Solutions are computed as they are written: once abandoned, the writer's next write ends the engine."""
    store = await filled(tmp_path / "store", pools)
    started = time.monotonic()
    body = await store.query(CROSS_SELECT, format=formats.CSV, limits=QueryLimits(LIMIT_S, "alice"))
    read = 0
    with pytest.raises(QueryTimeout):
        async for chunk in body:
            read += len(chunk)
            await asyncio.sleep(0.01)  # a slow reader (chunks wait for it): the whole result would take minutes
    assert read > 0 and LIMIT_S <= time.monotonic() - started < LIMIT_S + 1.0
    assert await wait_until_idle(5.0) < 0.5


async def test_reader_that_goes_away_stops_a_select(tmp_path: Path, pools: StorePools) -> None:
    store = await filled(tmp_path / "store", pools)
    body = await store.query(CROSS_SELECT, format=formats.CSV)
    async for _ in body:
        break
    await body.aclose()
    assert await wait_until_idle(5.0) < 0.5


async def test_query_that_waited_for_a_thread_past_its_deadline_never_runs(tmp_path: Path) -> None:
    with StorePools.create(Settings(store_threads=1)) as one:
        store = await filled(tmp_path / "store", one)
        with pytest.raises(QueryTimeout):  # takes the only read thread for a few seconds
            await store.query(CROSS_COUNT, format=formats.CSV, limits=QueryLimits(0.2))
        with pytest.raises(QueryTimeout):  # waits in the pool's queue, and is given up there
            await store.query(CROSS_COUNT, format=formats.CSV, limits=QueryLimits(0.2))
        busy_for = await wait_until_idle()
        await asyncio.sleep(0.3)
        assert busy_store_threads() == 0, "the second query ran after all"
        assert store._calls.running == 0
        assert busy_for > 0.5


async def test_account_takes_at_most_its_slots_and_waits_in_turn() -> None:
    slots = AccountSlots(2)
    first = await slots.take("alice", wait_s=0, deadline=None, limit_s=None)
    second = await slots.take("alice", wait_s=0, deadline=None, limit_s=None)
    other = await slots.take("bob", wait_s=0, deadline=None, limit_s=None)  # another account's share
    with pytest.raises(TooManyQueries) as refused:
        await slots.take("alice", wait_s=0.05, deadline=None, limit_s=None)
    assert refused.value.headers["Retry-After"] and refused.value.status == 503
    loop = asyncio.get_running_loop()
    with pytest.raises(QueryTimeout):  # the query's own limit comes first
        await slots.take("alice", wait_s=10, deadline=loop.time() + 0.05, limit_s=0.05)
    waiting = asyncio.create_task(slots.take("alice", wait_s=5, deadline=None, limit_s=None))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    threading.Thread(target=first).start()  # given back from a store thread
    third = await asyncio.wait_for(waiting, 2)
    first()  # a second call gives nothing back
    await asyncio.sleep(0.01)
    assert slots.taken("alice") == 2
    for release in (second, third, other):
        release()
    await asyncio.sleep(0.01)
    assert slots.taken("alice") == 0 and slots.taken("bob") == 0


async def test_cancelled_waiter_takes_no_slot() -> None:
    slots = AccountSlots(1)
    release = await slots.take("alice", wait_s=0, deadline=None, limit_s=None)
    waiting = asyncio.create_task(slots.take("alice", wait_s=5, deadline=None, limit_s=None))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release()
    await asyncio.sleep(0.01)
    assert slots.taken("alice") == 0


async def test_retired_store_closes_when_its_last_query_returns(tmp_path: Path, pools: StorePools) -> None:
    """Drop while a COUNT runs: its reader ends at once, new work is refused, and once the engine has returned
    the store is closed, RocksDB's lock on the path released (the path opens again in this process)."""
    path = tmp_path / "store"
    store = await filled(path, pools)
    running = asyncio.create_task(store.query(CROSS_COUNT, format=formats.CSV))
    await asyncio.sleep(0.3)
    reopened: list[int] = []
    closed = threading.Event()

    def when_closed() -> None:
        reopened.append(len(ox.Store(str(path))))  # "lock hold by current process" while the old one is open
        closed.set()

    await store.retire(when_closed)
    with pytest.raises(RepositoryNotFound):
        await asyncio.wait_for(running, 1)
    with pytest.raises(RepositoryNotFound):
        await store.size()
    assert not closed.is_set(), "closed while the engine still ran"
    await wait_until_idle()
    assert await asyncio.to_thread(closed.wait, 10)
    assert reopened == [RUNAWAY_TRIPLES]


async def test_retired_idle_store_closes_at_once(tmp_path: Path, pools: StorePools) -> None:
    path = tmp_path / "store"
    store = await filled(path, pools)
    assert await store.size() == RUNAWAY_TRIPLES
    closed = threading.Event()
    await store.retire(closed.set)
    assert await asyncio.to_thread(closed.wait, 5)
    assert len(ox.Store(str(path))) == RUNAWAY_TRIPLES
