"""A large N-Triples or N-Quads body is stored in blocks of whole lines, each parsed alone by the engine's bulk_load
(writes.py `_write_lines`): what is stored is exactly what the engine's own one-transaction load of the whole body
stores — blank nodes included, whose labels are local to the body and so must not be split between two blocks
(parsing.py `shared_labels`, `kept_back`). Checked for each target, with blocks small enough that labels cross
them, also when too many labels are shared to track (every labelled line kept back) and when the lines kept back
are too many to hold (read again); and a write that fails while blocks are being stored leaves the store as it was.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest

from graphstore_async import formats
from graphstore_async.store import Source, parsing, writes
from graphstore_async.store.embedded import EmbeddedStore
from graphstore_async.store.parsing import kept_back, line_blocks, shared_labels
from graphstore_async.targets import DATASET, Target

G = "http://example.org/g"
EX = "http://example.org/"


def body(path: Path, count: int, *, quads: bool = False, line_end: str = "\n", seed: int = 7) -> Path:
    """`count` lines of every kind: labels used far apart and side by side, two labels on a line, labels with
    dots, a label in a literal and in a comment (not blank nodes), language tags to normalize, triple terms."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        far, near = f"_:far{rng.randrange(count // 4 + 1)}", f"_:near{i // 3}"
        graph = f" <{EX}g{i % 3}>" if quads and i % 2 else ""
        lines.append([
            f'<{EX}s{i}> <{EX}p> "lit _:notablank{i} \\u00e9 \\"q\\""@EN-gb{graph} .',
            f"{far} <{EX}p> {near}{graph} .",
            f'{near} <{EX}q> "{i}"^^<http://www.w3.org/2001/XMLSchema#integer>{graph} .',
            f"<{EX}s{i}> <{EX}é/p> {far}{graph}. # a comment with _:comment{i}",
            "# a line with only a comment _:far1",
            f"_:self{i} <{EX}r> _:self{i}{graph} .",
            f'<{EX}s{i}> <{EX}says> <<( {far} <{EX}p> "t" )>>{graph} .',
            f"_:a.b{i % 7} <{EX}p> _:a.b{i % 5}.",
        ][rng.randrange(8)])
    path.write_bytes((line_end.join(lines) + line_end).encode())
    return path


def canonical(quads: Iterator[Any]) -> set[str]:
    dataset = ox.Dataset(quads)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    return {str(quad) for quad in dataset}


def expected(path: Path, fmt: formats.Format, target: Target) -> set[str]:
    reference = ox.Store()
    options: dict[str, Any] = {"path": str(path), "format": parsing.RDF[fmt]}
    if not target.dataset:
        options["to_graph"] = ox.DefaultGraph() if target.graph is None else ox.NamedNode(target.graph)
    reference.load(**options)
    return canonical(iter(reference))


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(2)
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
async def store(tmp_path: Path, executor: ThreadPoolExecutor) -> AsyncIterator[EmbeddedStore]:
    opened = EmbeddedStore(tmp_path / "store", executor, transactional_load_bytes=0)  # every load in batches
    yield opened
    await opened.close()


async def put(store: EmbeddedStore, path: Path, fmt: formats.Format, target: Target) -> Any:
    if target.dataset:
        return await store.load_dataset([Source(path, fmt)], replace=True)
    return await store.load([Source(path, fmt)], graph=target.graph, replace=True)


def assert_same(stored: set[str], wanted: set[str]) -> None:
    assert stored == wanted, (f"missing: {sorted(wanted - stored)[:5]}, unexpected: {sorted(stored - wanted)[:5]} "
                              f"({len(stored)} stored, {len(wanted)} expected)")


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize(("fmt", "target"), [(formats.N_TRIPLES, Target()), (formats.N_TRIPLES, Target(G)),
                                             (formats.N_QUADS, DATASET)], ids=["default", "named", "dataset"])
async def test_a_body_in_blocks_is_stored_as_the_engine_loads_it_whole(
    store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: formats.Format, target: Target,
    line_end: str,
) -> None:
    monkeypatch.setattr(writes, "BLOCK_BYTES", 2_000)  # ~25 lines a block: labels cross blocks
    path = body(tmp_path / "body", 3_000, quads=fmt is formats.N_QUADS, line_end=line_end)
    result = await put(store, path, fmt, target)
    assert result.statements == sum(1 for _ in ox.parse(path=str(path), format=parsing.RDF[fmt]))
    assert_same(canonical(iter(store._ox)), expected(path, fmt, target))
    if target.graph is not None:
        assert await store.named_graphs() == [G]


@pytest.mark.parametrize(("shared_limit", "block_bytes"), [(0, 2_000), (1_000_000, 300)],
                         ids=["too-many-shared-labels", "too-many-lines-kept-back"])
async def test_a_body_with_labels_shared_everywhere_is_stored_as_the_engine_loads_it_whole(
    store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_limit: int, block_bytes: int,
) -> None:
    monkeypatch.setattr(parsing, "SHARED_LABELS_LIMIT", shared_limit)
    monkeypatch.setattr(writes, "BLOCK_BYTES", block_bytes)
    path = body(tmp_path / "body.nt", 2_000)
    await put(store, path, formats.N_TRIPLES, Target(G))
    assert_same(canonical(iter(store._ox)), expected(path, formats.N_TRIPLES, Target(G)))


async def test_the_same_label_in_two_bodies_names_two_nodes(store: EmbeddedStore, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writes, "BLOCK_BYTES", 200)
    line = f'_:b1 <{EX}p> "shared label" .\n'
    first = tmp_path / "first.nt"
    first.write_text(line + "".join(f'<{EX}s{i}> <{EX}p> "{i}" .\n' for i in range(20)) + line)
    second = tmp_path / "second.nt"
    second.write_text(line)
    await store.load([Source(first, formats.N_TRIPLES), Source(second, formats.N_TRIPLES)], graph=G, replace=True)
    blank = {str(q.subject) for q in store._ox.quads_for_pattern(None, None, None, ox.NamedNode(G))
             if isinstance(q.subject, ox.BlankNode)}
    assert len(blank) == 2  # one for each body; the first body's two lines name one node


async def test_a_write_that_fails_while_blocks_are_stored_is_put_back(
    store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = tmp_path / "old.nt"
    old.write_text("".join(f'<{EX}s{i}> <{EX}p> "old {i}" .\n' for i in range(500)))
    await put(store, old, formats.N_TRIPLES, Target(G))
    before = canonical(iter(store._ox))
    monkeypatch.setattr(writes, "BLOCK_BYTES", 2_000)
    blocks = 0
    real = writes.kept_back

    def failing(block: bytes, shared: frozenset[bytes] | None) -> tuple[bytes, bytes]:
        nonlocal blocks
        blocks += 1
        if blocks == 6:  # blocks are being stored on the loaders' threads meanwhile
            raise OSError("No space left on device")
        return real(block, shared)

    monkeypatch.setattr(writes, "kept_back", failing)
    with pytest.raises(OSError, match="No space left"):
        await put(store, body(tmp_path / "new.nt", 3_000), formats.N_TRIPLES, Target(G))
    assert canonical(iter(store._ox)) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("store.")) == []


def test_blocks_end_at_line_ends_and_make_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "lines"
    data = b"a\nbb\r\nccc\rdddd\n" * 50 + b"a line much longer than a block " * 20 + b"\nlast, no end"
    path.write_bytes(data)
    blocks = list(line_blocks(path, 16))
    assert b"".join(blocks) == data
    assert all(block.endswith((b"\n", b"\r")) for block in blocks[:-1])
    assert list(line_blocks(path, 16)) == blocks  # the same blocks every time: labels are found per block


@pytest.mark.parametrize(("text", "labels"), [
    (b"_:b1 <p> _:b2 .", {b"_:b1", b"_:b2"}),
    (b"<s> <p> _:b.", {b"_:b"}),  # the dot ends the statement
    (b"_:a.b <p> _:a..b .", {b"_:a.b", b"_:a..b"}),
    ("_:é·x <p> _:x-y_z:w .".encode(), {"_:é·x".encode(), b"_:x-y_z:w"}),
    (b'<s> <p> <<( _:t <p> "o" )>> .', {b"_:t"}),
])
def test_labels_are_found_exactly(text: bytes, labels: set[bytes]) -> None:
    assert set(parsing._LABEL.findall(text)) == labels


def test_labels_in_more_than_one_block_are_shared() -> None:
    blocks = [b"_:a <p> _:b .\n_:b <p> _:c .\n", b"_:c <p> _:d .\n", b"<s> <p> <o> .\n", b"_:a <p> _:e .\n"]
    assert shared_labels(blocks) == {b"_:a", b"_:c"}


def test_lines_with_shared_labels_are_kept_back_with_every_line_of_their_labels() -> None:
    block = (b"<s> <p> _:local .\n"
             b"_:shared <p> _:tied .\n"
             b"_:tied <p> _:tied2 .\n"
             b"<s> <p> _:tied2 .\r\n"
             b'<s> <p> "no label" .\n'
             b"_:local <p> <o> .\n")
    alone, together = kept_back(block, frozenset({b"_:shared"}))
    assert together == b"_:shared <p> _:tied .\n_:tied <p> _:tied2 .\n<s> <p> _:tied2 .\r\n"
    assert alone == b'<s> <p> _:local .\n<s> <p> "no label" .\n_:local <p> <o> .\n'
    assert kept_back(block, frozenset()) == (block, b"")
    assert kept_back(block, None) == (b'<s> <p> "no label" .\n', block.replace(b'<s> <p> "no label" .\n', b""))
