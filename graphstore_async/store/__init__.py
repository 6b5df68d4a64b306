"""The storage boundary: what the server asks of a store, whichever store it is.

Every method is a coroutine and none blocks the event loop. Graphs are named by IRI; `None` is the default graph.
Bodies go in as spooled files (`Source`) and come out as `ByteStream`s, so an implementation over HTTP against
another SPARQL 1.1 store (upload the file, stream the response) fits the same protocol as embedded Oxigraph.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from graphstore_async.formats import Format
from graphstore_async.targets import DATASET, GraphName, Target

Progress = Callable[[int], None]
BeforeWrite = Callable[[], bool]  # asked from a thread just before the first change; False: stop, change nothing


@dataclass(frozen=True)
class Dataset:
    """A protocol-specified dataset (default-graph-uri / named-graph-uri, or using-… for updates)."""

    default_graphs: tuple[str, ...] = ()
    named_graphs: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.default_graphs or self.named_graphs)


@dataclass(frozen=True)
class QueryLimits:
    """What bounds one query: its time limit (from the moment it is asked: waiting for a slot, evaluation and
    streaming its result), and whose share of the store's query threads it takes."""

    timeout_s: float | None = None  # None: no time limit
    account: str | None = None  # None: not counted against any account's share
    slot_wait_s: float | None = None  # the longest wait for a slot (then TooManyQueries); None: until the deadline


@dataclass(frozen=True)
class Source:
    """A spooled RDF body: a file, its format and the base IRI for its relative IRIs."""

    path: Path
    format: Format
    base_iri: str | None = None


@dataclass(frozen=True)
class LoadResult:
    created: bool  # the target graph did not exist before
    statements: int  # statements read from the sources
    removed: int = 0  # statements a replacing load removed


class ByteStream(Protocol):
    """Serialized output, already started: errors that happen before the first byte have been raised."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Store(Protocol):
    async def query(
        self, query: str, *, format: Format, dataset: Dataset | None = None, base_iri: str | None = None,
        limits: QueryLimits | None = None,
    ) -> ByteStream:
        """Run a query and stream its result in `format` (a results format for SELECT/ASK, RDF otherwise), within
        `limits`: QueryTimeout once its time limit has passed (before or while its result streams),
        TooManyQueries when no slot of its account's came free in time."""
        ...

    async def check(self, text: str, *, update: bool) -> None:
        """Raise SyntaxProblem if a query (or an update) does not parse; run nothing against the data."""
        ...

    async def update(self, update: str, *, base_iri: str | None = None) -> None:
        """Run a SPARQL update atomically."""
        ...

    async def load(self, sources: Sequence[Source], *, graph: GraphName, replace: bool,
                   progress: Progress | None = None, blank_node_scope: str | None = None,
                   before_write: BeforeWrite | None = None) -> LoadResult:
        """Read every source into `graph` (replacing its content when `replace`), all or nothing: a source that
        does not parse raises SyntaxProblem and leaves the store unchanged. `progress` is called, from any
        thread, with the number of statements read so far. With a `blank_node_scope` (letters and digits),
        blank nodes are named from it and their order of appearance, so loading the same sources again with
        the same scope adds nothing: a merge that can be repeated. `before_write` is asked after every source
        has been validated and before anything is written; False raises Cancelled, with nothing written."""
        ...

    async def load_dataset(self, sources: Sequence[Source], *, replace: bool, progress: Progress | None = None,
                           blank_node_scope: str | None = None, before_write: BeforeWrite | None = None) -> LoadResult:
        """Read quads (their own graphs kept) into the store, all or nothing; `blank_node_scope` as for `load`
        (a blank node naming a graph too)."""
        ...

    async def dump(self, *, format: Format, target: Target = DATASET) -> ByteStream:
        """Stream one graph (GraphNotFound if it does not exist), or the whole dataset."""
        ...

    async def graph_exists(self, graph: GraphName) -> bool: ...

    async def named_graphs(self) -> list[str]: ...

    async def clear_graph(self, graph: GraphName) -> None: ...

    async def remove_graph(self, graph: GraphName) -> int | None:
        """Remove a graph: how many statements it held, or None if it did not exist (the default graph always
        exists, and is cleared)."""
        ...

    async def size(self, target: Target = DATASET) -> int: ...

    async def close(self) -> None: ...

    async def retire(self, closed: Callable[[], None]) -> None:
        """The repository is dropped: refuse new work, end the streams still reading the store (their readers get
        RepositoryNotFound), close the store once its last running call has returned, then call `closed` (from a
        thread: it may remove the store's files)."""
        ...
