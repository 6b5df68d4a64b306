"""ThreadStream (store/streams.py): a small output is whole at start, a large one streams in chunks, and the writer's
end is told once, whichever way it ends and whichever pool runs it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import pytest

from graphstore_async.store.streams import CHUNK_BYTES, ThreadStream, Whole
from graphstore_async.store.threads import Threads


@pytest.fixture(params=["threads", "thread-pool-executor"])
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    made: Executor = Threads(2, "test-read") if request.param == "threads" else ThreadPoolExecutor(2)
    yield made
    made.shutdown(wait=True)


class Ends:
    """An on_end that counts its calls and remembers the thread of the first."""

    def __init__(self) -> None:
        self.calls = 0
        self.thread: str | None = None
        self.called = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.thread = self.thread or threading.current_thread().name
        self.called.set()

    async def wait(self) -> None:
        assert await asyncio.to_thread(self.called.wait, 5)
        await asyncio.sleep(0.05)  # a second call, if there were one, would have come by now


def writing(*pieces: bytes, then: BaseException | None = None) -> Callable[[Any], None]:
    def write(out: Any) -> None:
        for piece in pieces:
            out.write(piece)
        out.flush()  # as pyoxigraph does at its end: no hand-over of its own
        if then is not None:
            raise then

    return write


async def test_small_output_is_whole_once_started_and_ends_on_the_loop(executor: Executor) -> None:
    ends = Ends()
    stream = await ThreadStream(executor, writing(b"a" * 100, b"b" * 100), on_end=ends).start()
    assert stream.whole == b"a" * 100 + b"b" * 100
    assert b"".join([chunk async for chunk in stream]) == stream.whole
    await ends.wait()
    assert ends.calls == 1 and ends.thread == threading.current_thread().name  # with the last bytes, no extra wake-up


async def test_large_output_streams_in_chunks(executor: Executor) -> None:
    ends = Ends()
    pieces = [bytes([65 + i % 26]) * 10_000 for i in range(30)]
    stream = await ThreadStream(executor, writing(*pieces), on_end=ends).start()
    assert stream.whole is None
    chunks = [chunk async for chunk in stream]
    assert b"".join(chunks) == b"".join(pieces)
    assert len(chunks) > 1 and all(len(chunk) >= CHUNK_BYTES for chunk in chunks[:-1])
    await ends.wait()
    assert ends.calls == 1


async def test_empty_output_is_whole_and_empty(executor: Executor) -> None:
    stream = await ThreadStream(executor, writing()).start()
    assert stream.whole == b"" and [chunk async for chunk in stream] == []


async def test_writer_error_is_raised_by_start_and_its_end_told_once(executor: Executor) -> None:
    ends = Ends()
    with pytest.raises(ValueError, match="broken"):
        await ThreadStream(executor, writing(b"x", then=ValueError("broken")), on_end=ends).start()
    assert ends.calls == 1 and ends.thread == threading.current_thread().name  # told with the error, on the loop
    await ends.wait()
    assert ends.calls == 1


async def test_reader_that_goes_away_ends_the_writer_and_its_end_is_told_once(executor: Executor) -> None:
    ends = Ends()
    more = threading.Event()

    def endless(out: Any) -> None:
        while True:
            out.write(b"x" * CHUNK_BYTES)
            more.set()

    stream = await ThreadStream(executor, endless, on_end=ends).start()
    assert stream.whole is None
    await stream.aclose()
    await ends.wait()
    assert ends.calls == 1 and ends.thread != threading.current_thread().name  # from the writer's thread


async def test_whole_is_one_chunk() -> None:
    assert [chunk async for chunk in Whole(b"answer")] == [b"answer"]
    assert [chunk async for chunk in Whole(b"")] == []
