"""A replacing load shows the old graph or the new one, never a mix, and a crash leaves one of them (store level).

A replace is one SPARQL update when it is small, and otherwise is written in batches while readers are given a
checkpoint of the store as it was (embedded.py `_isolated`, checkpoints.py). Each way is checked here: the result
is exactly the new content; readers see exactly the old one until it commits, even when the live store holds
none of the old graph or all of the new one; a write that fails half-way is put back; a process killed at any
point of the write (a real SIGKILL, in a child process) leaves the old content, or the new once it committed,
when the store is opened again.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
from rdflib import Graph
from rdflib.compare import graph_diff, isomorphic, to_isomorphic

from graphstore_async import formats
from graphstore_async.errors import StoreUnavailable
from graphstore_async.store import Source, embedded, writes
from graphstore_async.store.checkpoints import Checkpoint
from graphstore_async.store.embedded import EmbeddedStore
from graphstore_async.targets import DATASET, GraphName, Target

G = "http://example.org/g"
OTHER = "http://example.org/other"
SMALL = (300, 400)  # old and new statements: one update (at most REPLACE_IN_ONE_UPDATE together)
LARGE = (3_000, 2_500)  # in batches, under a checkpoint
# Beside the graph: nothing, a little (the store is cleared and the rest copied back), or much (the old graph's
# statements are removed one batch at a time).
BESIDE = {"alone": 0, "beside-little": 7, "beside-much": 1_000}


def ntriples(path: Path, count: int, tag: str) -> Path:
    """`count` statements, none with a blank node (so that N-Triples lines compare exactly)."""
    with path.open("w") as out:
        for i in range(count):
            out.write(f'<http://example.org/s{i}> <http://example.org/p{i % 5}> "{tag} {i}" .\n')
    return path


def lines(path: Path) -> set[str]:
    return set(path.read_text().splitlines())


async def dumped(store: EmbeddedStore, graph: GraphName) -> set[str]:
    stream = await store.dump(format=formats.N_TRIPLES, target=Target(graph))
    return set(b"".join([chunk async for chunk in stream]).decode().splitlines())


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "."))


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(4)
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
async def store(tmp_path: Path, executor: ThreadPoolExecutor) -> AsyncIterator[EmbeddedStore]:
    opened = EmbeddedStore(tmp_path / "store", executor)
    yield opened
    await opened.close()


@pytest.fixture
def removals(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The named graphs whose statements were removed one batch at a time."""
    removed: list[Any] = []
    real = writes.remove_statements

    def counted(store: Any, graph: Any) -> None:
        removed.append(graph)
        real(store, graph)

    monkeypatch.setattr(writes, "remove_statements", counted)
    return removed


async def beside(store: EmbeddedStore, tmp_path: Path, layout: str) -> None:
    if BESIDE[layout]:
        await store.load([Source(ntriples(tmp_path / "other.nt", BESIDE[layout], "other"), formats.N_TRIPLES)],
                         graph=OTHER, replace=False)


@pytest.fixture
def checkpoints_taken(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    taken: list[Path] = []
    take = Checkpoint.take

    def counted(path: Path, live: Any) -> Checkpoint:
        taken.append(path)
        return take(path, live)

    monkeypatch.setattr(Checkpoint, "take", staticmethod(counted))
    return taken


async def put(store: EmbeddedStore, source: Path, target: str) -> Any:
    """Replace the named graph G, the default graph or the whole dataset (target: named, default, dataset)."""
    if target == "dataset":
        return await store.load_dataset([Source(source, formats.N_QUADS)], replace=True)
    return await store.load([Source(source, formats.N_TRIPLES)], graph=G if target == "named" else None,
                            replace=True)


def graph_of(target: str) -> GraphName:
    return G if target == "named" else None


@pytest.mark.parametrize("target", ["named", "default", "dataset"])
@pytest.mark.parametrize("layout", list(BESIDE))
@pytest.mark.parametrize("sizes", [SMALL, LARGE], ids=["one-update", "batches"])
async def test_replace_leaves_exactly_the_new_content(store: EmbeddedStore, tmp_path: Path,
                                                      checkpoints_taken: list[Path], removals: list[Any],
                                                      target: str, layout: str, sizes: tuple[int, int]) -> None:
    old, new = ntriples(tmp_path / "old.nt", sizes[0], "old"), ntriples(tmp_path / "new.nt", sizes[1], "new")
    await put(store, old, target)
    await beside(store, tmp_path, layout)
    checkpoints_taken.clear()
    result = await put(store, new, target)
    kept = BESIDE[layout] and target != "dataset"
    assert (result.created, result.statements) == (False, sizes[1])
    assert result.removed == sizes[0] + (BESIDE[layout] if target == "dataset" else 0)
    assert len(checkpoints_taken) == (0 if sizes is SMALL else 1)
    assert len(removals) == (sizes is LARGE and target == "named" and layout == "beside-much")
    assert await dumped(store, graph_of(target)) == lines(new)
    if kept:
        assert await dumped(store, OTHER) == lines(tmp_path / "other.nt")
    assert await store.named_graphs() == ([G] if target == "named" else []) + ([OTHER] if kept else [])
    assert leftovers(tmp_path / "store") == []


async def test_a_replace_of_the_only_graph_with_statements_keeps_the_empty_graphs(store: EmbeddedStore,
                                                                                 tmp_path: Path) -> None:
    old, new = ntriples(tmp_path / "old.nt", LARGE[0], "old"), ntriples(tmp_path / "new.nt", LARGE[1], "new")
    await put(store, old, "named")
    await store.update(f"CREATE GRAPH <{OTHER}>")  # empty: clearing the store (the cheap way here) must keep it
    await put(store, new, "named")
    assert await store.named_graphs() == [G, OTHER]
    assert await dumped(store, G) == lines(new)


@pytest.mark.parametrize("layout", ["beside-little", "beside-much"])
@pytest.mark.parametrize("pause_after", ["empty", "add"], ids=["old-graph-removed", "new-graph-written"])
async def test_readers_see_the_old_graph_until_a_replace_in_batches_commits(
    store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pause_after: str, layout: str,
) -> None:
    old, new = ntriples(tmp_path / "old.nt", LARGE[0], "old"), ntriples(tmp_path / "new.nt", LARGE[1], "new")
    await put(store, old, "named")
    await beside(store, tmp_path, layout)
    size = LARGE[0] + BESIDE[layout]
    reached, go_on = threading.Event(), threading.Event()
    real = getattr(embedded, pause_after)

    def paused(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        reached.set()
        assert go_on.wait(30)

    monkeypatch.setattr(embedded, pause_after, paused)
    loading = asyncio.create_task(put(store, new, "named"))
    try:
        assert await asyncio.to_thread(reached.wait, 30)
        assert await store.size(Target(G)) == LARGE[0]
        assert await store.size(DATASET) == size
        assert await dumped(store, G) == lines(old)
        assert await store.named_graphs() == [G, OTHER]
        assert await store.graph_exists(G)
    finally:
        go_on.set()
    await loading
    assert await dumped(store, G) == lines(new)
    assert await store.size(DATASET) == LARGE[1] + BESIDE[layout]


@pytest.mark.parametrize(("target", "layout"), [("named", "beside-little"), ("named", "beside-much"),
                                                ("default", "beside-little"), ("dataset", "alone")])
async def test_a_replace_that_fails_half_way_is_put_back(store: EmbeddedStore, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, target: str,
                                                         layout: str) -> None:
    old, new = ntriples(tmp_path / "old.nt", LARGE[0], "old"), ntriples(tmp_path / "new.nt", LARGE[1], "new")
    await put(store, old, target)
    await beside(store, tmp_path, layout)
    before = await dumped(store, graph_of(target))
    real = embedded.add

    def failing(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)  # all of the new content is in the store: it must all go again
        raise OSError("No space left on device")

    monkeypatch.setattr(embedded, "add", failing)
    with pytest.raises(OSError, match="No space left"):
        await put(store, new, target)
    assert await dumped(store, graph_of(target)) == before
    assert await store.size(DATASET) == LARGE[0] + BESIDE[layout]
    if BESIDE[layout]:
        assert await dumped(store, OTHER) == lines(tmp_path / "other.nt")
    assert leftovers(tmp_path / "store") == []
    monkeypatch.setattr(embedded, "add", real)
    await put(store, new, target)  # the store is writable, and what readers see, again
    assert await dumped(store, graph_of(target)) == lines(new)


CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    from graphstore_async import formats
    from graphstore_async.store import Source, embedded
    from graphstore_async.store.checkpoints import Checkpoint

    store_path, body, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def killed_after(real):
        def call(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        return call

    if point == "commit":
        Checkpoint.commit = killed_after(Checkpoint.commit)
    else:
        setattr(embedded, point, killed_after(getattr(embedded, point)))

    async def main():
        store = embedded.EmbeddedStore(store_path, ThreadPoolExecutor(2))
        await store.load([Source(body, formats.N_TRIPLES)], graph=sys.argv[4], replace=True)

    asyncio.run(main())
""")


@pytest.mark.parametrize(("point", "outcome"), [("empty", "old"), ("add", "old"), ("commit", "new")],
                         ids=["killed-after-removing", "killed-after-writing", "killed-after-committing"])
@pytest.mark.parametrize("layout", list(BESIDE))
async def test_a_process_killed_during_a_replace_leaves_old_or_new(tmp_path: Path, executor: ThreadPoolExecutor,
                                                                   point: str, outcome: str, layout: str) -> None:
    path = tmp_path / "store"
    old, new = ntriples(tmp_path / "old.nt", LARGE[0], "old"), ntriples(tmp_path / "new.nt", LARGE[1], "new")
    store = EmbeddedStore(path, executor)
    await put(store, old, "named")
    await beside(store, tmp_path, layout)
    await store.close()
    child = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", CHILD, str(path), str(new), point, G],
                                    capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    assert any(name.startswith("store.checkpoint-") for name in leftovers(path))  # what the crash left
    store = EmbeddedStore(path, executor)
    try:
        assert await dumped(store, G) == lines(old if outcome == "old" else new)
        assert await store.named_graphs() == ([G, OTHER] if BESIDE[layout] else [G])
        if BESIDE[layout]:
            assert await dumped(store, OTHER) == lines(tmp_path / "other.nt")
        assert leftovers(path) == []
    finally:
        await store.close()


@pytest.mark.parametrize("cut_after", ["discarding", "restoring"])
async def test_a_recovery_cut_short_is_finished_when_the_store_opens(tmp_path: Path, executor: ThreadPoolExecutor,
                                                                     cut_after: str) -> None:
    path = tmp_path / "store"
    old, new = ntriples(tmp_path / "old.nt", 50, "old"), ntriples(tmp_path / "new.nt", 60, "new")
    live = ox.Store(str(path))
    live.load(path=str(old), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(G))
    checkpoint = Checkpoint.take(path, live)
    live.clear()
    live.load(path=str(new), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(G))
    Checkpoint.take(path, live).commit()  # a committed checkpoint left behind: to be removed
    del live, checkpoint
    (marker,) = tmp_path.glob("store.checkpoint-*.armed")
    path.rename(tmp_path / "store.discarded")  # the first step of a recovery
    if cut_after == "restoring":  # and the second
        marker.with_name(marker.name.removesuffix(".armed")).rename(path)
    store = EmbeddedStore(path, executor)  # after the crash
    try:
        assert await dumped(store, G) == lines(old)
        assert leftovers(path) == []
    finally:
        await store.close()


async def test_a_store_open_while_a_write_runs_is_not_rolled_back_by_another_opening(
    store: EmbeddedStore, tmp_path: Path, executor: ThreadPoolExecutor,
) -> None:
    old = ntriples(tmp_path / "old.nt", 50, "old")
    await put(store, old, "named")
    running = Checkpoint.take(tmp_path / "store", store._ox)  # armed, as while a write runs
    with pytest.raises(StoreUnavailable):  # RocksDB's lock: and the checkpoint is left alone
        EmbeddedStore(tmp_path / "store", executor)
    assert await dumped(store, G) == lines(old)
    assert [name for name in leftovers(tmp_path / "store") if name.endswith(".armed")]
    running.commit()


async def test_a_small_replace_keeps_every_kind_of_term(store: EmbeddedStore, tmp_path: Path,
                                                        checkpoints_taken: list[Path]) -> None:
    body = tmp_path / "terms.ttl"
    body.write_text(textwrap.dedent("""
        @prefix ex: <http://example.org/> .
        ex:a ex:p "quote \\" backslash \\\\ newline \\n tab \\t é"@en, "1"^^ex:type, 3, 4.5, true ;
             ex:q _:b1, [ ex:r "anonymous" ] ;
             ex:r <http://example.org/é?q=1#f> .
        _:b1 ex:r "shared label" .
    """))
    await put(store, ntriples(tmp_path / "old.nt", 20, "old"), "named")
    await store.load([Source(body, formats.TURTLE)], graph=G, replace=True)
    assert checkpoints_taken == []  # one update
    expected = Graph().parse(body, format="turtle")
    stored = Graph().parse(data="\n".join(await dumped(store, G)), format="nt")
    assert isomorphic(stored, expected), "\n".join(str(part.serialize(format="nt")) for part in
                                                   graph_diff(to_isomorphic(stored), to_isomorphic(expected))[1:])


async def test_a_small_replace_keeps_triple_terms_and_directions(store: EmbeddedStore, tmp_path: Path,
                                                                 checkpoints_taken: list[Path]) -> None:
    body = tmp_path / "rdf12.ttl"
    body.write_text('@prefix ex: <http://example.org/> .\n'
                    'ex:a ex:says <<( ex:s ex:p <<( ex:t ex:p "deep" )>> )>> ; ex:label "rtl"@ar--rtl .\n')
    await store.load([Source(body, formats.TURTLE)], graph=G, replace=True)
    assert checkpoints_taken == []
    reference = ox.Store()
    reference.load(path=str(body), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(G))
    assert await dumped(store, G) == set(reference.dump(format=ox.RdfFormat.N_TRIPLES,
                                                        from_graph=ox.NamedNode(G)).decode().splitlines())


async def test_a_small_replace_with_an_empty_body_makes_an_empty_graph(store: EmbeddedStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty.nt"
    empty.write_text("")
    result = await store.load([Source(empty, formats.N_TRIPLES)], graph=G, replace=True)
    assert result.created
    assert await store.named_graphs() == [G]
    assert await store.size(Target(G)) == 0


async def test_a_dataset_with_a_blank_node_graph_is_replaced_in_batches(store: EmbeddedStore, tmp_path: Path,
                                                                        checkpoints_taken: list[Path]) -> None:
    await put(store, ntriples(tmp_path / "old.nt", 20, "old"), "dataset")
    body = tmp_path / "blank.trig"  # SPARQL cannot name a graph by a blank node: no one update for this
    body.write_text('_:g { <http://example.org/a> <http://example.org/b> "in a blank node graph" }\n'
                    '<http://example.org/a> <http://example.org/b> "default" .\n')
    result = await store.load_dataset([Source(body, formats.TRIG)], replace=True)
    assert (result.statements, result.removed, len(checkpoints_taken)) == (2, 20, 1)
    assert await store.size(DATASET) == 2
    assert await store.size(Target(None)) == 1


@pytest.mark.parametrize("scoped", [False, True], ids=["unscoped", "blank-node-scope"])
async def test_a_large_merge_is_all_or_nothing_too(store: EmbeddedStore, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, scoped: bool) -> None:
    await put(store, ntriples(tmp_path / "old.nt", 50, "old"), "named")
    before = await dumped(store, G)
    real: Callable[..., None] = embedded.add

    def failing(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise OSError("I/O error")

    monkeypatch.setattr(embedded, "add", failing)
    with pytest.raises(OSError):  # more than one batch of scoped quads, or more than one transaction otherwise
        await store.load([Source(ntriples(tmp_path / "more.nt", writes.BATCH + 10, "more"), formats.N_TRIPLES),
                          Source(ntriples(tmp_path / "more2.nt", 10, "more2"), formats.N_TRIPLES)],
                         graph=G, replace=False, blank_node_scope="t1" if scoped else None)
    assert await dumped(store, G) == before
