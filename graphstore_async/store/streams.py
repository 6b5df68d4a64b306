"""A bridge from a blocking writer in a worker thread to an async byte stream, with back-pressure and a deadline.

A store serializes into a file-like object in its thread; the event loop reads chunks as the client takes them.
At most `window` chunks are in flight, so a slow client holds back the serializer instead of filling memory.

A stream is abandoned when its reader closes it, when its deadline passes (the reader gets the `expired` error),
or when its store is dropped (`abandon(error)`). The reader is free at once; the writer's next write raises
ReaderGone, which ends the thread. A writer that produces its output lazily (pyoxigraph's serialize of a SELECT
or CONSTRUCT computes solutions as it writes them) therefore stops within one write; one that computes
everything before its first write (COUNT, ORDER BY, GROUP BY) runs until the engine returns, then stops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any

CHUNK_BYTES = 64 * 1024
WINDOW = 8
_END = object()


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
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            self.send(bytes(self._buffer))
            self._buffer.clear()

    def send(self, item: object) -> None:
        while not self._slots.acquire(timeout=0.25):
            if self.abandoned:
                raise ReaderGone()
        if self.abandoned:
            raise ReaderGone()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


class ThreadStream:
    """The readable end: `await start()` runs the writer until its first chunk (or its error), then iterate.

    `deadline` (a loop.time()) bounds the whole stream: past it the reader gets `expired()`. `on_end` is called
    once, from whichever thread, when the writer's thread has ended (or the writer will never run)."""

    def __init__(self, executor: Executor, writer: Callable[[_Pipe], None], *, deadline: float | None = None,
                 expired: Callable[[], BaseException] | None = None, on_end: Callable[[], None] | None = None) -> None:
        self._executor = executor
        self._writer = writer
        self._deadline = deadline
        self._expired = expired or TimeoutError
        self._on_end = on_end
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._slots = threading.Semaphore(WINDOW)
        self._pipe: _Pipe | None = None
        self._first: object = None

    async def start(self) -> ThreadStream:
        loop = asyncio.get_running_loop()
        self._pipe = _Pipe(loop, self._queue, self._slots)
        try:
            future = self._executor.submit(self._run, self._pipe)
        except BaseException:
            if self._on_end is not None:
                self._on_end()
            raise
        if self._on_end is not None:
            on_end = self._on_end
            future.add_done_callback(lambda _: on_end())
        try:
            self._first = await self._next()
        except BaseException:  # an error, the deadline, or the caller cancelled: the writer must not go on
            self.abandon()
            raise
        return self

    def _run(self, pipe: _Pipe) -> None:
        if pipe.abandoned:  # given up while it waited for a thread: do not start the work at all
            return
        try:
            self._writer(pipe)
            pipe.flush()
            pipe.send(_END)
        except ReaderGone:
            pass
        except BaseException as exc:  # delivered to the reader, raised there
            if not pipe.abandoned:
                pipe._loop.call_soon_threadsafe(self._queue.put_nowait, exc)

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
        while item is not _END:
            assert isinstance(item, bytes)
            yield item
            item = await self._next()

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
