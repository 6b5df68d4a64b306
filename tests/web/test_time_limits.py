"""Time limits over real HTTP: a runaway query answers 503 query-timeout at its limit, a task fails with it, the
`timeout` parameter asks for less (never more), an account runs at most max_queries_per_account queries, and one
account's runaway queries hold up neither another account nor the event loop. Every test waits for the store
threads its runaway queries leave (runaway.py) before it ends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from conftest import Running, StartServer
from helpers import assert_problem
from runaway import CROSS_COUNT, CROSS_SELECT, busy_store_threads, fill, wait_until_idle

from graphstore_async.auth import new_token, token_entry

ALICE, BOB = new_token(), new_token()
ACCOUNTS = "[accounts.alice]\n[accounts.bob]\n" + token_entry("alice", ALICE) + token_entry("bob", BOB)
CSV = {"Accept": "text/csv"}
PROMPT_S = 5.0  # "promptly": generous, while a runaway query would take the engine several seconds more


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ask(http: aiohttp.ClientSession, running: Running, repo: str, token: str | None = None,
              query: str = "ASK {}", **params: str) -> tuple[int, dict[str, Any], float]:
    """GET a query: its status, its JSON body (result or problem), and how long it took."""
    started = time.monotonic()
    async with http.get(running.repo_url("/sparql", repo=repo), params={"query": query, **params},
                        headers={"Accept": "application/sparql-results+json",
                                 **(bearer(token) if token else {})}) as response:
        body = await response.json(content_type=None)
        return response.status, {**body, "_headers": dict(response.headers)}, time.monotonic() - started


def timed_out(body: dict[str, Any], limit_s: float) -> None:
    assert body["type"].endswith("/query-timeout") and body["status"] == 503, body
    assert body["timeout_s"] == limit_s and f"time limit of {limit_s:g} s" in body["detail"], body


@pytest.fixture
async def runaway_server(start_server: StartServer, http: aiohttp.ClientSession) -> Running:
    running = await start_server(query_timeout_s=1)
    await fill(http, running.repo_url())
    return running


async def test_runaway_query_answers_query_timeout_at_its_limit(runaway_server: Running,
                                                                http: aiohttp.ClientSession) -> None:
    for send in ("GET", "POST form", "POST direct"):
        started = time.monotonic()
        if send == "GET":
            request = http.get(runaway_server.repo_url("/sparql"), params={"query": CROSS_COUNT}, headers=CSV)
        elif send == "POST form":
            request = http.post(runaway_server.repo_url("/sparql"), data={"query": CROSS_COUNT}, headers=CSV)
        else:
            request = http.post(runaway_server.repo_url("/sparql"), data=CROSS_COUNT,
                                headers={**CSV, "Content-Type": "application/sparql-query"})
        async with request as response:
            body = await assert_problem(response, 503, "time limit")
        assert 1.0 <= time.monotonic() - started < 3.0, send
        timed_out(body, 1)
        assert busy_store_threads() >= 1, "the engine cannot be interrupted: its thread runs on"
        await wait_until_idle()
    status, _, _ = await ask(http, runaway_server, "test/repo")  # the slot came back with the thread
    assert status == 200


async def test_result_still_streaming_at_the_limit_is_cut_off(runaway_server: Running,
                                                              http: aiohttp.ClientSession) -> None:
    """Past the limit while its result streams, the answer cannot become a problem any more: the connection is
    cut before the body's end (no client takes the part for the whole), and the engine stops at its next write."""
    started = time.monotonic()
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(runaway_server.repo_url("/sparql"), params={"query": CROSS_SELECT},
                            headers=CSV) as response:
            assert response.status == 200
            async for _ in response.content.iter_chunked(1 << 16):
                await asyncio.sleep(0.001)
    assert 1.0 <= time.monotonic() - started < 3.0
    assert await wait_until_idle(5) < 1
    status, _, _ = await ask(http, runaway_server, "test/repo")
    assert status == 200


async def test_timeout_parameter_asks_for_less_and_is_capped(start_server: StartServer,
                                                             http: aiohttp.ClientSession) -> None:
    roomy = await start_server()  # query_timeout_s 30 by default
    await fill(http, roomy.repo_url())
    status, body, took = await ask(http, roomy, "test/repo", query=CROSS_COUNT, timeout="1")
    assert status == 503 and took < 3.0, (status, took)
    timed_out(body, 1)
    await wait_until_idle()
    # A view runs within the same limits, with `timeout` among its arguments.
    async with http.put(roomy.repo_url("/cross"), data=CROSS_COUNT,
                        headers={"Content-Type": "application/sparql-query"}) as response:
        assert response.status == 201
    started = time.monotonic()
    async with http.get(roomy.repo_url("/cross.csv"), params={"timeout": "0.5"}) as response:
        timed_out(await assert_problem(response, 503), 0.5)
    assert time.monotonic() - started < 2.5
    await wait_until_idle()
    tight = await start_server(query_timeout_s=1)
    await fill(http, tight.repo_url())
    status, body, took = await ask(http, tight, "test/repo", query=CROSS_COUNT, timeout="600")
    assert status == 503 and took < 3.0, (status, took)
    timed_out(body, 1)  # capped by the setting
    await wait_until_idle()
    status, body, _ = await ask(http, tight, "test/repo", query="ASK { ?s ?p ?o }", timeout="600")
    assert status == 200 and body["boolean"] is True


@pytest.mark.parametrize("value", ["abc", "0", "0.0", "-1", "1e3", "inf", "nan", " 5", "5 ", "1.", "1,5", "٣",
                                   "1234567890", ""])
async def test_bad_timeout_is_400(start_server: StartServer, http: aiohttp.ClientSession, value: str) -> None:
    running = await start_server()
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    async with http.get(running.repo_url("/sparql"), params={"query": "ASK {}", "timeout": value}) as response:
        body = await assert_problem(response, 400, "timeout must be a number of seconds")
    assert body["parameter"] == "timeout"
    async with http.put(running.repo_url("/ask"), data="ASK {}",
                        headers={"Content-Type": "application/sparql-query"}) as response:
        assert response.status == 201
    async with http.get(running.repo_url("/ask"), params={"timeout": value}) as response:
        await assert_problem(response, 400, "timeout must be a number of seconds")


async def test_timeout_twice_or_on_an_update_is_400(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server()
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    async with http.get(running.repo_url("/sparql"),
                        params=[("query", "ASK {}"), ("timeout", "1"), ("timeout", "2")]) as response:
        await assert_problem(response, 400, "more than once")
    insert = "INSERT DATA { <http://example.org/s> <http://example.org/p> 1 }"
    async with http.post(running.repo_url("/sparql"), data={"update": insert, "timeout": "5"}) as response:
        await assert_problem(response, 400, "timeout applies to queries")
    status, body, _ = await ask(http, running, "test/repo", query="ASK { ?s ?p ?o }")
    assert status == 200 and body["boolean"] is False  # the update was not carried out


async def test_runaway_queries_of_one_account_hold_up_no_other_account(start_server: StartServer,
                                                                       http: aiohttp.ClientSession) -> None:
    """Six runaway queries from alice (her share is 4): four run to their limit, two find no slot. Meanwhile bob's
    `ASK {}` on his own repository and /health answer at once. Alice's share stays taken until the engine has
    returned for her four, which then end by themselves."""
    running = await start_server(config=ACCOUNTS, query_timeout_s=1, query_slot_wait_s=0.3)
    await fill(http, running.repo_url(repo="alice/big"), bearer(ALICE))
    async with http.put(running.repo_url(repo="bob/small"), headers=bearer(BOB)) as response:
        assert response.status == 201
    runaways = [asyncio.create_task(ask(http, running, "alice/big", ALICE, CROSS_COUNT)) for _ in range(6)]
    await asyncio.sleep(0.2)
    for _ in range(3):
        status, body, took = await ask(http, running, "bob/small", BOB)
        assert status == 200 and body["boolean"] is True and took < PROMPT_S, (status, took)
        started = time.monotonic()
        async with http.get(running.url("/health")) as response:
            assert response.status == 200 and time.monotonic() - started < PROMPT_S
    answers = await asyncio.gather(*runaways)
    kinds = sorted(body["type"].rpartition("/")[2] for _, body, _ in answers)
    assert kinds == ["query-timeout"] * 4 + ["too-many-queries"] * 2, answers
    for status, body, took in answers:
        assert status == 503
        if body["type"].endswith("too-many-queries"):
            assert body["_headers"]["Retry-After"].isdigit() and 0.3 <= took < 1.3, (body, took)
            assert "alice runs 4 queries already" in body["detail"], body
        else:
            timed_out(body, 1)
            assert took < 1 + 1.5
    # Truthful accounting: the four are past their limit, but the engine still computes them.
    assert busy_store_threads() == 4
    status, body, _ = await ask(http, running, "alice/big", ALICE)
    assert status == 503 and body["type"].endswith("/too-many-queries"), body
    status, body, took = await ask(http, running, "bob/small", BOB)
    assert status == 200 and took < PROMPT_S
    await wait_until_idle()
    status, body, _ = await ask(http, running, "alice/big", ALICE)
    assert status == 200 and body["boolean"] is True


async def test_account_waits_for_a_slot_within_a_bound(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    """With one slot each: alice's second short query waits for her first; past query_slot_wait_s behind a
    runaway it is 503 too-many-queries with Retry-After; bob is never held up."""
    running = await start_server(config=ACCOUNTS, max_queries_per_account=1, query_slot_wait_s=1, query_timeout_s=2)
    # RUNAWAY_TRIPLES (300): 27M solutions, past the 2 s limit on a fast day too (200 answered in 0.67 s on one)
    await fill(http, running.repo_url(repo="alice/big"), bearer(ALICE))
    await fill(http, running.repo_url(repo="bob/big"), bearer(BOB), count=60)
    short = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"  # over 60 triples: a moment
    both = await asyncio.gather(ask(http, running, "bob/big", BOB, short), ask(http, running, "bob/big", BOB, short))
    assert [status for status, _, _ in both] == [200, 200], both
    runaway = asyncio.create_task(ask(http, running, "alice/big", ALICE, CROSS_COUNT))
    await asyncio.sleep(0.2)
    status, body, took = await ask(http, running, "alice/big", ALICE)
    assert status == 503 and 1.0 <= took < 2.5, (status, took)
    assert body["type"].endswith("/too-many-queries") and body["_headers"]["Retry-After"].isdigit(), body
    status, _, took = await ask(http, running, "bob/big", BOB)
    assert status == 200 and took < PROMPT_S
    status, body, _ = await runaway
    timed_out(body, 2)
    await wait_until_idle()
    status, _, _ = await ask(http, running, "alice/big", ALICE)
    assert status == 200
