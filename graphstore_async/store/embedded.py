"""The embedded store: pyoxigraph (RocksDB) on disk, one per repository.

Blocking calls run on the store pools (limits.py: reads, writes, syntax checks), never on the event loop. Writes
to one store are serialized by an asyncio lock: a load in batches must not race another writer. A query runs
within its QueryLimits: a slot of its account's, and a deadline past which its stream is abandoned (streams.py
says what then stops and what runs on).

A store counts the calls running on its threads (calls.py): a dropped repository's store is retired, and closes
when its last call has returned.

Loads are all-or-nothing: every source is parsed once to validate it (and count its statements) before anything
is written. Then a small load is one transaction (`load`, `extend`, or for a small replace one SPARQL update), and
any other is stored in batches (writes.py: N-Triples and N-Quads in blocks of lines, two `bulk_load`s at once;
other formats with `bulk_extend`), which keeps memory flat whatever the size of the import, while readers see a
checkpoint of the store as it was, to which a crash rolls it back (`_isolated`, checkpoints.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, TypeVar

import pyoxigraph as ox

from graphstore_async.errors import (
    Cancelled,
    GraphNotFound,
    QueryTimeout,
    RepositoryNotFound,
    StoreUnavailable,
    UpdateFailed,
)
from graphstore_async.formats import Format
from graphstore_async.settings import Settings
from graphstore_async.store import (
    BeforeWrite,
    ByteStream,
    Dataset,
    LoadResult,
    Progress,
    QueryLimits,
    Source,
)
from graphstore_async.store.calls import Calls
from graphstore_async.store.checkpoints import Checkpoint
from graphstore_async.store.inline import answer, single_pattern
from graphstore_async.store.limits import AccountSlots, Release, StorePools
from graphstore_async.store.parsing import DEFAULT_BODY_DEPTH, RDF, parse_options, sparql_syntax_problem, validate
from graphstore_async.store.querying import count, node, outside, query_options, query_writer
from graphstore_async.store.streams import ThreadStream, Whole
from graphstore_async.store.writes import BATCH, add, empty, put_back, replace_in_one_update
from graphstore_async.targets import DATASET, GraphName, Target

T = TypeVar("T")
log = logging.getLogger(__name__)

# A replace of at most this many statements, removed and added, is one SPARQL update (one transaction, ~2 KiB a
# statement in memory, ~75 us a statement); a larger one is written in batches under a checkpoint (_isolated),
# which costs a fixed ~150 ms (mostly RocksDB flushing its memtables) and is the faster way past this size.
REPLACE_IN_ONE_UPDATE = 2_000
READERS_SETTLE_S = 0.05  # see _isolated
COPY_REST_RATIO = 4  # removing a statement costs ~4 times what copying one does (bulk_extend)


class EmbeddedStore:
    def __init__(self, path: Path, pools: StorePools | Executor, *, transactional_load_bytes: int = 8 * 1024**2,
                 max_body_depth: int = DEFAULT_BODY_DEPTH, slots: AccountSlots | None = None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        Checkpoint.recover(path)  # a write that a crash cut short is rolled back
        self._path = path
        try:
            self._ox = ox.Store(str(path))
        except (OSError, RuntimeError) as exc:  # RocksDB's messages name files: logged, never sent
            log.error("cannot open the store at %s: %s", path, exc)
            raise StoreUnavailable("the repository's store cannot be opened; the failure is logged") from exc
        self._pools = pools if isinstance(pools, StorePools) else StorePools.single(pools)
        self._slots = slots
        self._write_lock = asyncio.Lock()
        self._transactional_load_bytes = transactional_load_bytes
        self._max_body_depth = max_body_depth
        self._calls = Calls()

    @classmethod
    def opener(cls, pools: StorePools | Executor, settings: Settings) -> Callable[[Path], EmbeddedStore]:
        """How a server, a worker or the CLI opens a repository's store: with the settings' bounds, and one share
        of query slots per account for all the stores it opens."""
        slots = AccountSlots(settings.max_queries_per_account)

        def open_store(path: Path) -> EmbeddedStore:
            return cls(path, pools, transactional_load_bytes=settings.transactional_load_bytes,
                       max_body_depth=settings.max_body_depth, slots=slots)

        return open_store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Work that writes to the store (or must not run beside a write: it holds the write lock), on the write
        pool."""
        return await asyncio.wrap_future(self._submit(self._pools.writes, fn, *args))

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._submit(self._pools.reads, fn, *args))

    def _submit(self, pool: Executor, fn: Callable[..., T], *args: Any) -> Future[T]:
        self._calls.enter()
        try:
            future = pool.submit(fn, *args)
        except BaseException:
            self._leave()
            raise
        future.add_done_callback(lambda _: self._leave())  # also when it is cancelled before it started
        return future

    def _leave(self) -> None:
        closed = self._calls.leave()
        if closed is not None:
            self._close_dropped(closed)

    async def retire(self, closed: Callable[[], None]) -> None:
        """The repository is dropped (calls.py): no new call; its streams end now; closed after its last call."""
        streams, closed_now = self._calls.retire(closed)
        for stream in streams:  # their readers stop now; their threads at their next write
            stream.abandon(RepositoryNotFound("the repository was dropped while this query ran"))
        if closed_now is not None:  # nothing runs on it: closed (and its files removed) before the drop returns
            await asyncio.to_thread(self._closing(closed_now))

    def _close_dropped(self, closed: Callable[[], None]) -> None:
        """On a thread of its own: removing a store's files takes a while, and this may be called on the loop."""
        threading.Thread(target=self._closing(closed), name="store-close", daemon=True).start()

    def _closing(self, closed: Callable[[], None]) -> Callable[[], None]:
        """Close the engine (the last reference to it goes, so RocksDB releases its lock), then `closed`."""
        def close() -> None:
            try:
                del self._ox
                closed()
            except Exception:
                log.exception("closing a dropped store failed")

        return close

    # -- queries -----------------------------------------------------------------------------------------------

    async def query(
        self, query: str, *, format: Format, dataset: Dataset | None = None, base_iri: str | None = None,
        limits: QueryLimits | None = None,
    ) -> ByteStream:
        kwargs = query_options(dataset, base_iri)
        write = query_writer(lambda: self._ox, query, format, kwargs)
        inline = ((lambda: answer(self._ox, query, format, kwargs)) if not dataset and single_pattern(query)
                  else None)
        return await self._limited_stream(write, limits or QueryLimits(), inline=inline)

    async def _limited_stream(self, write: Callable[[Any], None], limits: QueryLimits, *,
                              inline: Callable[[], bytes | None] | None = None) -> ThreadStream | Whole:
        """A query's stream on the read pool: in a slot of its account's, abandoned at its deadline. The slot and
        the store's count of calls are given back when the thread ends, which for a query past its limit is when
        the engine returns (it cannot be interrupted). `inline` is tried first, on the loop and in the same slot:
        its answer, if it has one, is the whole stream (a query known to be cheap: inline.py)."""
        timeout_s = limits.timeout_s or None
        deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        release = None
        if self._slots is not None and limits.account is not None:
            release = await self._slots.take(limits.account, wait_s=limits.slot_wait_s, deadline=deadline,
                                             limit_s=timeout_s)
        if inline is not None:
            try:
                whole = self._on_loop(inline)
            except BaseException:
                if release is not None:
                    release()
                raise
            if whole is not None:
                if release is not None:
                    release()
                return Whole(whole)

        def expired() -> QueryTimeout:
            return QueryTimeout(f"the query did not finish within its time limit of {timeout_s:g} s; its answer is "
                                "abandoned", timeout_s=timeout_s)

        return await self._stream(write, deadline=deadline, expired=expired, release=release)

    def _on_loop(self, answer: Callable[[], bytes | None]) -> bytes | None:
        """`answer()`, counted as one of the store's calls while it runs (so not on a retired or closed store)."""
        self._calls.enter()
        try:
            return answer()
        finally:
            self._leave()

    async def _stream(self, write: Callable[[Any], None], *, deadline: float | None = None,
                      expired: Callable[[], Exception] | None = None, release: Release | None = None) -> ThreadStream:
        """A ThreadStream on the read pool, counted as one of the store's calls (and `release`d) until its thread
        ends."""
        try:
            self._calls.enter()
        except BaseException:
            if release is not None:
                release()
            raise

        def ended() -> None:
            self._calls.streamed(stream)
            if release is not None:
                release()
            self._leave()

        stream = ThreadStream(self._pools.reads, write, deadline=deadline, expired=expired, on_end=ended)
        self._calls.streaming(stream)
        return await stream.start()

    async def check(self, text: str, *, update: bool) -> None:
        def parse() -> None:
            scratch = ox.Store()  # in memory and empty: parsing is all the work there is
            try:
                if update:
                    scratch.update(text)
                else:
                    scratch.query(text)
            except SyntaxError as exc:
                raise sparql_syntax_problem(exc, "update" if update else "query") from exc
            except (RuntimeError, ValueError):  # it parsed; evaluating it on an empty store is not the point
                pass

        await asyncio.wrap_future(self._pools.checks.submit(parse))  # a scratch store: not one of this store's calls

    async def update(self, update: str, *, base_iri: str | None = None) -> None:
        def run() -> None:
            try:
                self._ox.update(update, base_iri=base_iri)
            except SyntaxError as exc:
                raise sparql_syntax_problem(exc, "update") from exc
            except (RuntimeError, ValueError) as exc:  # e.g. CLEAR GRAPH (not SILENT) of a graph that is not there
                raise UpdateFailed(f"the update failed, and changed nothing: {exc}") from exc

        async with self._write_lock:
            await self._run(run)

    # -- loading -----------------------------------------------------------------------------------------------

    async def load(self, sources: Sequence[Source], *, graph: GraphName, replace: bool,
                   progress: Progress | None = None, blank_node_scope: str | None = None,
                   before_write: BeforeWrite | None = None) -> LoadResult:
        async with self._write_lock:
            return await self._run(self._load, sources, graph, replace, False, progress, blank_node_scope,
                                   before_write)

    async def load_dataset(self, sources: Sequence[Source], *, replace: bool, progress: Progress | None = None,
                           blank_node_scope: str | None = None, before_write: BeforeWrite | None = None) -> LoadResult:
        async with self._write_lock:
            return await self._run(self._load, sources, None, replace, True, progress, blank_node_scope,
                                   before_write)

    def _load(self, sources: Sequence[Source], graph: GraphName, replace: bool, dataset: bool,
              progress: Progress | None, blank_node_scope: str | None, before_write: BeforeWrite | None,
              ) -> LoadResult:
        statements = 0
        for source in sources:
            statements += validate(source, progress=progress, before=statements, max_body_depth=self._max_body_depth)
        if before_write is not None and not before_write():
            raise Cancelled("the import was cancelled before it wrote anything")
        live, target = self._ox, node(graph)  # `live` is written; readers may be given a checkpoint of it
        created = graph is not None and not live.contains_named_graph(target)
        removed = (len(live) if dataset else 0 if created else self._count(graph)) if replace else 0
        result = LoadResult(created=created, statements=statements, removed=removed)
        small = sum(source.path.stat().st_size for source in sources) <= self._transactional_load_bytes
        if replace and small and removed + statements <= REPLACE_IN_ONE_UPDATE:
            quads = itertools.chain.from_iterable(ox.parse(**parse_options(source), rename_blank_nodes=True)
                                                  for source in sources)
            if replace_in_one_update(live, quads, None if dataset else target):
                return result
        elif not replace and small and (len(sources) <= 1 if blank_node_scope is None else statements <= BATCH):
            add(live, sources, target, dataset, True, blank_node_scope)  # one transaction
            return result
        # Anything else commits more than once: readers see a checkpoint meanwhile, and a crash rolls back to it.
        # A named graph's statements are removed one by one, unless the rest of the store is much smaller: then
        # clearing it all and copying the rest back from the checkpoint is the faster way (writes.py).
        copy_rest = (replace and graph is not None
                     and outside(live, target, removed // COPY_REST_RATIO + 1) * COPY_REST_RATIO <= removed)
        everything = dataset or copy_rest

        def write(store: Any, before: Any) -> None:
            if replace:
                empty(store, target, dataset=dataset, copy_rest_from=before if copy_rest else None)
            add(store, sources, target, dataset, small, blank_node_scope)

        self._isolated(write, None if everything else target)
        return result

    def _isolated(self, write: Callable[[Any, Any], None], scope: Any) -> None:
        """Run `write(store, checkpoint)`, which commits more than once, on the live store while readers are given
        a checkpoint of it as it was (checkpoints.py): they see all of the write or none of it, and so does the
        store after a crash. If the write fails, `scope` (a graph, or None: everything) is put back as it was."""
        self._sweep_checkpoints()
        live = self._ox
        checkpoint = Checkpoint.take(self._path, live)
        self._ox = checkpoint.store
        # A reader that took the live store just before has taken its engine snapshot (repeatable read) within
        # microseconds of that; the write waits a little longer before it changes anything.
        time.sleep(READERS_SETTLE_S)
        try:
            write(live, checkpoint.store)
        except Exception as exc:
            try:
                put_back(live, checkpoint.store, scope)
                checkpoint.commit()
            except Exception:
                # Left armed: readers keep the state before the write (and writers find a read-only store) until
                # the next start rolls the store back to it.
                log.exception("a write into %s failed, and putting back what it changed failed too", self._path)
                raise StoreUnavailable("the write failed and the repository could not be put back as it was; it "
                                       "is read-only until the server restarts") from exc
            self._ox = live
            self._sweep_checkpoints()
            raise
        checkpoint.commit()
        self._ox = live
        self._sweep_checkpoints()

    def _sweep_checkpoints(self) -> None:
        """Remove committed checkpoints once no other call on the store could be reading one."""
        if self._calls.alone:  # this one
            Checkpoint.sweep(self._path)

    # -- graphs ------------------------------------------------------------------------------------------------

    async def dump(self, *, format: Format, target: Target = DATASET) -> ByteStream:
        if target.dataset:
            options: dict[str, Any] = {}
        else:
            if not await self.graph_exists(target.graph):
                raise GraphNotFound(f"there is no {target.describe()} in this repository", graph=target.graph)
            options = {"from_graph": node(target.graph)}

        def write(out: Any) -> None:
            self._ox.dump(out, RDF[format], **options)

        return await self._stream(write)

    async def graph_exists(self, graph: GraphName) -> bool:
        if graph is None:
            return True
        node = ox.NamedNode(graph)
        return await self._read(lambda: self._ox.contains_named_graph(node))  # no bound method: see _close_dropped

    async def named_graphs(self) -> list[str]:
        def names() -> list[str]:
            return sorted(g.value for g in self._ox.named_graphs() if isinstance(g, ox.NamedNode))

        return await self._read(names)

    async def clear_graph(self, graph: GraphName) -> None:
        async with self._write_lock:
            await self._run(lambda: self._ox.clear_graph(node(graph)))

    async def remove_graph(self, graph: GraphName) -> int | None:
        def remove() -> int | None:
            target = node(graph)
            if graph is not None and not self._ox.contains_named_graph(target):
                return None
            removed = self._count(graph)
            self._ox.remove_graph(target)
            return removed

        async with self._write_lock:
            return await self._run(remove)

    async def size(self, target: Target = DATASET) -> int:
        if target.dataset:
            return await self._read(lambda: len(self._ox))
        return await self._read(self._count, target.graph)

    def _count(self, graph: GraphName) -> int:
        return count(self._ox, graph)

    async def close(self) -> None:
        """The server is stopping: flush, refuse new work, end the streams (a query inside the engine keeps its
        thread, and the engine, until it returns), and let the engine go."""
        async with self._write_lock:
            await self._run(lambda: self._ox.flush())
            streams = self._calls.stop()
        for stream in streams:
            stream.abandon(StoreUnavailable("the server is stopping"))
        del self._ox

