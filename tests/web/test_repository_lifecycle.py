"""Dropping a repository while a query runs on it, and making it again under the same name, over real HTTP: the
new one answers queries and writes at once, the old query ends, the old store closes (and its files go) when the
engine has returned, and no problem body ever names a file of the server's."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from conftest import Running, StartServer
from helpers import assert_problem
from runaway import CROSS_COUNT, busy_store_threads, fill, wait_until_idle

REPO = "test/repo"
SRJ = {"Accept": "application/sparql-results+json"}
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
INSERT = "INSERT DATA { <http://example.org/new> <http://example.org/p> \"new\" }"


async def count(http: aiohttp.ClientSession, running: Running) -> int:
    async with http.get(running.repo_url("/sparql"), params={"query": COUNT}, headers=SRJ) as response:
        assert response.status == 200, await response.text()
        return int((await response.json())["results"]["bindings"][0]["n"]["value"])


def no_path_in(body: dict[str, Any], running: Running) -> None:
    text = json.dumps(body)
    assert str(running.settings.data_dir) not in text and "/tmp/" not in text and "LOCK" not in text, body


def graveyard(running: Running) -> list[Path]:
    directory = running.settings.repositories_dir / ".dropped"
    return sorted(directory.iterdir()) if directory.is_dir() else []


async def test_drop_and_make_again_while_a_query_runs(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(query_timeout_s=600)
    await fill(http, running.repo_url())

    async def runaway() -> tuple[int, dict[str, Any], float]:
        async with http.get(running.repo_url("/sparql"), params={"query": CROSS_COUNT}, headers=SRJ) as response:
            return response.status, await response.json(content_type=None), time.monotonic()

    query = asyncio.create_task(runaway())
    while not busy_store_threads():  # the engine has it
        await asyncio.sleep(0.01)
    started = time.monotonic()
    async with http.delete(running.repo_url()) as response:
        assert response.status == 204, await response.text()
    assert time.monotonic() - started < 2
    status, body, ended = await asyncio.wait_for(query, 5)  # the old query ends with the repository
    assert status == 404 and body["type"].endswith("/repository-not-found"), body
    assert "dropped while this query ran" in body["detail"] and ended - started < 2, body
    no_path_in(body, running)
    async with http.get(running.repo_url()) as response:
        no_path_in(await assert_problem(response, 404), running)

    async with http.put(running.repo_url()) as response:  # made again at once, under the same name
        assert response.status == 201, await response.text()
    assert busy_store_threads() == 1, "the old query still runs in the engine"
    assert await count(http, running) == 0
    async with http.post(running.repo_url("/sparql"), data=INSERT,
                         headers={"Content-Type": "application/sparql-update"}) as response:
        assert response.status == 204, await response.text()
    async with http.put(running.repo_url("/service?graph=http://example.org/g"), data=b"<http://example.org/a> "
                        b"<http://example.org/b> <http://example.org/c> .\n",
                        headers={"Content-Type": "application/n-triples"}) as response:
        assert response.status == 201, await response.text()
    async with http.get(running.repo_url(), headers={"Accept": "application/json"}) as response:
        meta = await response.json()
    assert meta["size"] == 2 and meta["graphs"] == ["http://example.org/g"], meta
    assert "store" not in meta, meta
    assert len(graveyard(running)) == 1, "the old files are kept while the old store is open"

    await wait_until_idle()
    deadline = time.monotonic() + 10
    while graveyard(running):  # removed once the old store has closed
        assert time.monotonic() < deadline, graveyard(running)
        await asyncio.sleep(0.05)
    assert await count(http, running) == 1  # the default graph (the other triple is in a named graph)


async def test_drop_and_make_again_many_times(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server()
    for round_ in range(3):
        async with http.put(running.repo_url()) as response:
            assert response.status == 201
        async with http.post(running.repo_url("/sparql"), data=INSERT,
                             headers={"Content-Type": "application/sparql-update"}) as response:
            assert response.status == 204, (round_, await response.text())
        assert await count(http, running) == 1
        async with http.delete(running.repo_url()) as response:
            assert response.status == 204
        assert not graveyard(running)  # nothing used the store: its files went with the drop
        async with http.get(running.repo_url("/sparql"), params={"query": COUNT}) as response:
            no_path_in(await assert_problem(response, 404), running)


async def test_store_that_cannot_be_opened_names_no_file(start_server: StartServer,
                                                         http: aiohttp.ClientSession) -> None:
    running = await start_server()
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    directory = running.settings.repositories_dir / REPO
    store = directory / json.loads((directory / "repository.json").read_text())["store"]
    store.mkdir()
    (store / "CURRENT").write_text("not a manifest\n")  # RocksDB: "Corruption: CURRENT file corrupted"
    async with http.get(running.repo_url("/sparql"), params={"query": "ASK {}"}) as response:
        body = await assert_problem(response, 503, "cannot be opened")
    assert body["type"].endswith("/store-unavailable")
    no_path_in(body, running)
