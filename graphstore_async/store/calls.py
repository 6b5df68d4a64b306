"""The calls running on one store's threads, and how a store stops taking them.

A store counts its calls (running on a store thread, or waiting for one) and its open result streams. A dropped
repository's store is retired: it takes no new call, its streams are abandoned, and it is closed when its last
call has returned — a query past its limit may still run in the engine, and RocksDB lets go of the store's files
only when the engine is gone. A store closed because the server stops takes no new call either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from graphstore_async.errors import RepositoryNotFound, StoreUnavailable
from graphstore_async.store.streams import ThreadStream

Closed = Callable[[], None]  # what to do once a retired store has no call left


class Calls:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._streams: set[ThreadStream] = set()
        self._dropped = False
        self._stopping = False
        self._when_closed: Closed | None = None  # after a retirement, until the last call has returned

    def enter(self) -> None:
        """One call more; RepositoryNotFound once retired, StoreUnavailable once closed."""
        with self._lock:
            if self._dropped:
                raise RepositoryNotFound("the repository has been dropped")
            if self._stopping:
                raise StoreUnavailable("the store is closed: the server is stopping")
            self._count += 1

    def leave(self) -> Closed | None:
        """One call fewer; what to do now if it was a retired store's last (once)."""
        with self._lock:
            self._count -= 1
            return self._last_call_ended()

    @property
    def running(self) -> int:
        with self._lock:
            return self._count

    @property
    def alone(self) -> bool:
        """Whether the caller's call is the only one running."""
        with self._lock:
            return self._count <= 1

    def streaming(self, stream: ThreadStream) -> None:
        with self._lock:
            self._streams.add(stream)

    def streamed(self, stream: ThreadStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def retire(self, closed: Closed) -> tuple[list[ThreadStream], Closed | None]:
        """No new call from now on; the streams to abandon, and `closed` if no call runs (else the last call's
        `leave` returns it)."""
        with self._lock:
            self._dropped, self._when_closed = True, closed
            return list(self._streams), self._last_call_ended()

    def stop(self) -> list[ThreadStream]:
        """The server is stopping: no new call; the streams to abandon."""
        with self._lock:
            self._stopping = True
            return list(self._streams)

    def _last_call_ended(self) -> Closed | None:
        closed, self._when_closed = (self._when_closed, None) if self._count == 0 else (None, self._when_closed)
        return closed
