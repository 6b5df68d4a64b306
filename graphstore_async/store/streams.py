"""A bridge from a blocking writer in a worker thread to an async byte stream, with back-pressure and a deadline.

A store serializes into a file-like object in its thread; the event loop reads chunks as the client takes them.
At most `window` chunks are in flight, so a slow client holds back the serializer instead of filling memory.

A stream is abandoned when its reader closes it, when its deadline passes (the reader gets the `expired` error),
or when its store is dropped (`abandon(error)`). The reader is free at once; the writer's next write raises
ReaderGone, which ends the thread. A writer that produces its output lazily (pyoxigraph's serialize of a SELECT
or CONSTRUCT computes solutions as it writes them) therefore stops within one write; one that computes
everything before its first write (COUNT, ORDER BY, GROUP BY) runs until the engine returns, then stops.

Each hand-over from the thread to the loop wakes the loop (a write to its self-pipe), and a small result (one
subject's properties) is dominated by those wake-ups, not by the engine: so the last chunk, the end of the stream
and `on_end` travel together in one hand-over, and a result that ends within its first chunk is known to the
reader as `whole` once `start()` returns — the server sends it as one body instead of a chunked stream.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any

from graphstore_async.store.threads import Threads

CHUNK_BYTES = 64 * 1024
WINDOW = 8


class ReaderGone(Exception):
    """Raised in the writer thread when nobody reads the stream any more."""


class _Pipe:
    """The writable end, used in the worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], slots: threading.Semaphore):
        self._loop = loop
        self._queue = queue
        self._slots = slots
        self._buffer = bytearray()
        self.abandoned = False

    def write(self, data: bytes) -> int:
        if self.abandoned:
            raise ReaderGone()
        self._buffer += data
        if len(self._buffer) >= CHUNK_BYTES:
            self.send(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def flush(self) -> None:
        """Nothing: the serializer flushes once, at its end, which `finish` hands over with the end itself."""

    def send(self, item: object) -> None:
        self._room()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def finish(self, deliver: Callable[[_Last], None]) -> None:
        """The rest of the output and the end, to the loop in one hand-over: `deliver(last)` runs there."""
        self._room()
        last = _Last(bytes(self._buffer))
        self._buffer.clear()
        self._loop.call_soon_threadsafe(deliver, last)

    def _room(self) -> None:
        """Wait for room in the window (the reader takes a chunk), or ReaderGone once it stopped reading."""
        while not self._slots.acquire(timeout=0.25):
            if self.abandoned:
                raise ReaderGone()
        if self.abandoned:
            raise ReaderGone()


class _Last:
    """The last item of a stream: the output's last bytes (maybe none), then the end."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class ThreadStream:
    """The readable end: `await start()` runs the writer until its first chunk (or its error), then iterate.

    `deadline` (a loop.time()) bounds the whole stream: past it the reader gets `expired()`. `on_end` is called
    once when the writer is done with the store: on the loop with the stream's last bytes (or the writer's
    error) when the writer returned (its thread does nothing more with the store), else from the writer's thread
    when it has ended (the reader gone), or at once when the writer will never run. `whole`, once `start()` has
    returned, is the whole output if it ended within the first chunk (None: iterate)."""

    def __init__(self, executor: Executor, writer: Callable[[_Pipe], None], *, deadline: float | None = None,
                 expired: Callable[[], BaseException] | None = None, on_end: Callable[[], None] | None = None) -> None:
        self._executor = executor
        self._writer = writer
        self._deadline = deadline
        self._expired = expired or TimeoutError
        self._on_end = on_end
        self._ended_on_loop = False  # set in the writer's thread before it hands its end to the loop
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._slots = threading.Semaphore(WINDOW)
        self._pipe: _Pipe | None = None
        self._first: object = None
        self.whole: bytes | None = None

    async def start(self) -> ThreadStream:
        loop = asyncio.get_running_loop()
        self._pipe = _Pipe(loop, self._queue, self._slots)
        try:
            if isinstance(self._executor, Threads):  # the cheap way in (threads.py)
                self._executor.call(self._call, dropped=self._thread_ended)
            else:
                future = self._executor.submit(self._run, self._pipe)
                future.add_done_callback(lambda _: self._thread_ended())
        except BaseException:
            if self._on_end is not None:
                self._on_end()
            raise
        try:
            self._first = await self._next()
        except BaseException:  # an error, the deadline, or the caller cancelled: the writer must not go on
            self.abandon()
            raise
        if isinstance(self._first, _Last):
            self.whole = self._first.data
        return self

    def _call(self) -> None:
        assert self._pipe is not None
        try:
            self._run(self._pipe)
        finally:
            self._thread_ended()

    def _run(self, pipe: _Pipe) -> None:
        if pipe.abandoned:  # given up while it waited for a thread: do not start the work at all
            return
        try:
            self._writer(pipe)
        except ReaderGone:
            return
        except BaseException as exc:  # delivered to the reader (raised there), with the end
            if not pipe.abandoned:
                self._end_on_loop(functools.partial(pipe._loop.call_soon_threadsafe, self._delivered, exc))
            return
        self._end_on_loop(lambda: pipe.finish(self._delivered))

    def _end_on_loop(self, hand_over: Callable[[], object]) -> None:
        """In the writer's thread, once it is done with the store: its end goes to the loop with what it hands
        over, or, if that fails, is told from this thread (_thread_ended)."""
        self._ended_on_loop = self._on_end is not None
        try:
            hand_over()
        except (ReaderGone, RuntimeError):  # the reader is gone, or the loop is closed
            self._ended_on_loop = False

    def _delivered(self, last: _Last | BaseException) -> None:
        """On the loop: the writer returned (or raised); its last bytes (or its error) are queued, and its end is
        told."""
        self._queue.put_nowait(last)
        if self._on_end is not None:
            self._on_end()

    def _thread_ended(self) -> None:
        if not self._ended_on_loop and self._on_end is not None:
            self._on_end()

    async def _next(self) -> object:
        if self._deadline is None:
            item = await self._queue.get()
        elif asyncio.get_running_loop().time() >= self._deadline:  # chunks may be waiting: get() would not wait
            self.abandon()
            raise self._expired()
        else:
            try:
                async with asyncio.timeout_at(self._deadline):
                    item = await self._queue.get()
            except TimeoutError:
                self.abandon()
                raise self._expired() from None
        self._slots.release()
        if isinstance(item, BaseException):
            raise item
        return item

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        item = self._first
        while not isinstance(item, _Last):
            assert isinstance(item, bytes)
            yield item
            item = await self._next()
        if item.data:
            yield item.data

    def abandon(self, error: BaseException | None = None) -> None:
        """Stop reading: the writer stops at its next write; a reader waiting for a chunk gets `error`."""
        if self._pipe is not None:
            self._pipe.abandoned = True
        self._slots.release(WINDOW)  # a writer waiting for room wakes up, and sees it is abandoned
        if error is not None:
            self._queue.put_nowait(error)

    async def aclose(self) -> None:
        """Stop the writer, if it still runs. Its thread is not waited for: a writer inside the engine (which
        cannot be interrupted) ends only when the engine returns, and `on_end` says when."""
        self.abandon()


class Whole:
    """A stream whose output is all there already (a small answer computed at once): one chunk."""

    def __init__(self, data: bytes) -> None:
        self.whole = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        if self.whole:
            yield self.whole

    async def aclose(self) -> None:
        pass
