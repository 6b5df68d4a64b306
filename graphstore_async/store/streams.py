"""A bridge from a blocking writer in a worker thread to an async byte stream, with back-pressure.

A store serializes into a file-like object in its thread; the event loop reads chunks as the client takes them.
At most `window` chunks are in flight, so a slow client holds back the serializer instead of filling memory, and
a client that goes away makes the writer's next write raise, which ends the thread.
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
    """The readable end: `await start()` runs the writer until its first chunk (or its error), then iterate."""

    def __init__(self, executor: Executor, writer: Callable[[_Pipe], None]) -> None:
        self._executor = executor
        self._writer = writer
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._slots = threading.Semaphore(WINDOW)
        self._pipe: _Pipe | None = None
        self._first: object = None
        self._future: asyncio.Future[None] | None = None

    async def start(self) -> ThreadStream:
        loop = asyncio.get_running_loop()
        self._pipe = _Pipe(loop, self._queue, self._slots)
        self._future = loop.run_in_executor(self._executor, self._run, self._pipe)
        self._first = await self._next()
        return self

    def _run(self, pipe: _Pipe) -> None:
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
        item = await self._queue.get()
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

    async def aclose(self) -> None:
        """Stop the writer (if still running) and wait for its thread to end."""
        if self._pipe is not None:
            self._pipe.abandoned = True
        self._slots.release(WINDOW)
        if self._future is not None:
            await asyncio.shield(self._future)
