"""Queries answered on the event loop (store/inline.py): which ones, and that they answer exactly as a store thread
would — same bytes, same account slot, same errors — and that anything larger goes to a store thread."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest

from graphstore_async import formats
from graphstore_async.errors import RepositoryNotFound, SyntaxProblem, TooManyQueries
from graphstore_async.formats import Format
from graphstore_async.settings import Settings
from graphstore_async.store import QueryLimits, Source
from graphstore_async.store.embedded import EmbeddedStore
from graphstore_async.store.inline import INLINE_BYTES, single_pattern
from graphstore_async.store.limits import StorePools
from graphstore_async.store.parsing import RDF, RESULTS
from graphstore_async.store.streams import ThreadStream, Whole

EX = "http://example.org/"
MANY = 2_000  # properties of ex:many: an answer well past INLINE_BYTES

CHEAP = [
    "SELECT ?p ?o WHERE { <http://example.org/bench/s/1> ?p ?o }",
    "PREFIX ex: <http://example.org/> SELECT * { ex:s ?p ?o . }",
    "select ?o where { ?s a ?o } limit 5",
    'ASK { ?s ?p "x"@en }',
    'SELECT ?s { ?s <p> "1"^^<http://www.w3.org/2001/XMLSchema#integer> }',
    "CONSTRUCT WHERE { <s> ?p ?o }",
    "CONSTRUCT { ?o <q> ?p } WHERE { <s> ?p ?o }",
    "SELECT * { ?s ?p 1.5 }",
    "BASE <http://e/> SELECT * { <s> ?p ?o }",
    "SELECT ?z { ?s ?p ?o }",
    "ASK { ?s ?p true }",
    "SELECT ?p?o{<s>?p?o}",
]
NOT_CHEAP = [
    "SELECT DISTINCT ?p { ?s ?p ?o }",  # reads every entry for a few distinct values
    "SELECT ?p { ?s ?p ?s }", "SELECT ?p { ?s ?p $s }", "SELECT * { _:b ?p _:b }",  # a repeated variable filters
    "SELECT * { <s> ?p ?o ; ?q ?r }", "SELECT * { <s> ?p ?o . <t> ?q ?r }",  # joins
    "SELECT * { <s> <p>/<q> ?o }", "SELECT * { <s> <p>* ?o }", "SELECT * { <s> ^<p> ?o }",  # paths
    "SELECT * { ?s ?p ?o FILTER(?o > 1) }", "SELECT * { ?s ?p ?o OPTIONAL { ?o ?q ?r } }",
    "SELECT * { ?s ?p ?o } ORDER BY ?o", "SELECT * { ?s ?p ?o } OFFSET 10", "SELECT * { ?s ?p ?o } GROUP BY ?s",
    "SELECT * { ?s ?p ?o } LIMIT 1 OFFSET 2", "SELECT * { ?s ?p ?o } VALUES ?s { <a> }",
    "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", "SELECT * FROM <g> { ?s ?p ?o }",
    "CONSTRUCT { <a> <b> <c> } WHERE { ?s ?p ?o }",  # one triple, written once, for a scan of everything
    "CONSTRUCT { ?s <b> <c> } WHERE { ?s ?p ?o }", "CONSTRUCT { ?s ?p ?o }", "DESCRIBE <s>",
    "SELECT * { GRAPH ?g { ?s ?p ?o } }", "SELECT * { { ?s ?p ?o } }", "SELECT * { [] ?p ?o }",
    "SELECT * { << <a> <b> <c> >> ?p ?o }", "SELECT * { ?s ?p ( 1 2 ) }", "SELECT * { ?s A ?o }",
    "SELECT * { ?s ?p ?o SERVICE <http://example.org/> { ?a ?b ?c } }", "ASK { ?s ?p ?o } LIMIT 1",
    "SELECT * { ?s ?p ?o } # a comment", "SELECT * { ?s ?p 'single quotes' }", "ASK {}", "", "SELECT",
    "SELECT * { ?s ?p ?o }" + " " * 3000,  # long texts are not looked at
]


@pytest.mark.parametrize("text", CHEAP)
def test_single_pattern_accepts_one_triple_pattern(text: str) -> None:
    assert single_pattern(text)


@pytest.mark.parametrize("text", NOT_CHEAP)
def test_single_pattern_refuses_what_it_cannot_bound(text: str) -> None:
    assert not single_pattern(text)


@pytest.fixture
def pools() -> Iterator[StorePools]:
    with StorePools.create(Settings(store_threads=2)) as made:
        yield made


async def filled(path: Path, pools: StorePools, settings: Settings | None = None) -> EmbeddedStore:
    """A store with a few properties of ex:s and MANY of ex:many."""
    store = EmbeddedStore.opener(pools, settings or Settings())(path)
    lines = [f'<{EX}s> <{EX}p{i}> "value {i}"@en .\n' for i in range(20)]
    lines += [f'<{EX}many> <{EX}p> "a longer value, number {i}" .\n' for i in range(MANY)]
    body = path.with_name(path.name + ".nt")
    body.write_text("".join(lines))
    await store.load([Source(body, formats.N_TRIPLES)], graph=None, replace=False)
    return store


def engine_answer(store: EmbeddedStore, text: str, fmt: Format) -> bytes:
    result = store._ox.query(text)
    written = result.serialize(format=RDF[fmt] if isinstance(result, ox.QueryTriples) else RESULTS[fmt])
    assert isinstance(written, bytes)
    return written


async def body_of(stream: object) -> bytes:
    assert isinstance(stream, Whole | ThreadStream)
    return b"".join([chunk async for chunk in stream])


@pytest.mark.parametrize(("text", "fmt"), [
    (f"SELECT ?p ?o WHERE {{ <{EX}s> ?p ?o }}", formats.SPARQL_JSON),
    (f"SELECT * WHERE {{ <{EX}s> ?p ?o }}", formats.SPARQL_XML),
    (f"SELECT * WHERE {{ <{EX}s> ?p ?o }}", formats.CSV),
    (f"ASK {{ <{EX}s> ?p ?o }}", formats.SPARQL_JSON),
    (f"CONSTRUCT WHERE {{ <{EX}s> ?p ?o }}", formats.N_TRIPLES),
    (f"SELECT * WHERE {{ <{EX}nobody> ?p ?o }}", formats.TSV),
], ids=["select-json", "select-xml", "select-csv", "ask", "construct", "empty"])
async def test_cheap_query_is_answered_whole_as_the_engine_writes_it(tmp_path: Path, pools: StorePools, text: str,
                                                                     fmt: Format) -> None:
    store = await filled(tmp_path / "store", pools)
    body = await store.query(text, format=fmt, limits=QueryLimits(30, "alice", 2))
    assert isinstance(body, Whole), "a cheap query is answered on the loop"
    assert await body_of(body) == engine_answer(store, text, fmt)
    assert store._calls.running == 0 and store._slots is not None and store._slots.taken("alice") == 0


async def test_cheap_query_with_a_large_answer_streams_from_a_store_thread(tmp_path: Path,
                                                                          pools: StorePools) -> None:
    store = await filled(tmp_path / "store", pools)
    text = f"SELECT ?o WHERE {{ <{EX}many> ?p ?o }}"
    expected = engine_answer(store, text, formats.SPARQL_JSON)
    assert len(expected) > INLINE_BYTES
    body = await store.query(text, format=formats.SPARQL_JSON, limits=QueryLimits(30, "alice", 2))
    assert isinstance(body, ThreadStream) and body.whole is None
    assert await body_of(body) == expected


async def test_query_that_is_not_cheap_runs_on_a_store_thread(tmp_path: Path, pools: StorePools) -> None:
    store = await filled(tmp_path / "store", pools)
    text = f"SELECT ?p ?o WHERE {{ <{EX}s> ?p ?o }} ORDER BY ?p"
    body = await store.query(text, format=formats.SPARQL_JSON)
    assert isinstance(body, ThreadStream)
    assert body.whole == engine_answer(store, text, formats.SPARQL_JSON)  # small: whole once started


async def test_cheap_query_with_a_syntax_error_reports_it_as_any_query(tmp_path: Path, pools: StorePools) -> None:
    store = await filled(tmp_path / "store", pools)
    text = "SELECT * WHERE { undeclared:s ?p ?o }"
    assert single_pattern(text)
    with pytest.raises(SyntaxProblem) as raised:
        await store.query(text, format=formats.SPARQL_JSON)
    assert raised.value.status == 400
    assert store._calls.running == 0


async def test_cheap_query_waits_for_its_account_slot(tmp_path: Path, pools: StorePools) -> None:
    store = await filled(tmp_path / "store", pools, Settings(max_queries_per_account=1))
    assert store._slots is not None
    taken = await store._slots.take("alice", wait_s=0, deadline=None, limit_s=None)  # alice's one slot is busy
    text = f"SELECT ?p ?o WHERE {{ <{EX}s> ?p ?o }}"
    with pytest.raises(TooManyQueries):
        await store.query(text, format=formats.SPARQL_JSON, limits=QueryLimits(30, "alice", 0.05))
    other = await store.query(text, format=formats.SPARQL_JSON, limits=QueryLimits(30, "bob", 0.05))
    assert isinstance(other, Whole)  # another account's share
    waiting = asyncio.create_task(store.query(text, format=formats.SPARQL_JSON, limits=QueryLimits(30, "alice", 5)))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    taken()
    assert isinstance(await asyncio.wait_for(waiting, 2), Whole)
    assert store._slots.taken("alice") == 0


async def test_cheap_query_on_a_dropped_store_is_not_found(tmp_path: Path, pools: StorePools) -> None:
    store = await filled(tmp_path / "store", pools)
    closed: list[bool] = []
    await store.retire(lambda: closed.append(True))
    with pytest.raises(RepositoryNotFound):
        await store.query(f"SELECT ?p ?o WHERE {{ <{EX}s> ?p ?o }}", format=formats.SPARQL_JSON,
                          limits=QueryLimits(30, "alice", 2))
    assert closed == [True]
    assert store._slots is not None and store._slots.taken("alice") == 0
