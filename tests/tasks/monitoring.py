"""Helpers of the monitor-mode tests: submitting with Prefer, reading a task's monitor and status, a gate that
holds the worker's only job slot, accounts with tokens, and large bodies written to files."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import pytest
from aiohttp import web
from conftest import REPO, Running, free_port
from helpers import media_type
from pytest_aiohttp import AiohttpServer

from graphstore_async.auth import new_token, token_entry
from tests.tasks.notifying import EX, GRAPH, accepted

PROBLEM_JSON = "application/problem+json"
SRJ = "application/sparql-results+json"
NT = "application/n-triples"
TURTLE = "text/turtle"
SELECT = f"SELECT ?s ?o WHERE {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }} ORDER BY ?s"

# Accounts: "test" owns test/*; bob may write test/repo (so only task ownership keeps him out); root is admin.
TEST_TOKEN, BOB_TOKEN, ROOT_TOKEN = new_token(), new_token(), new_token()
ACCOUNTS = """
[accounts.test]

[accounts.bob]
grants = { "test/repo" = "write" }

[accounts.root]
admin = true
""" + "".join(token_entry(account, token) for account, token in
              (("test", TEST_TOKEN), ("bob", BOB_TOKEN), ("root", ROOT_TOKEN)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def submit_monitored(http: aiohttp.ClientSession, running: Running, method: str, path: str, *,
                           prefer: str = "respond-async", applied: tuple[str, ...] = ("respond-async",),
                           body: bytes | BinaryIO | None = None, content_type: str | None = None,
                           headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
                           repo: str = REPO, account: str = "anonymous") -> str:
    """A request in monitor mode that must be accepted: 202 with Request-ID, Location (the monitor),
    Preference-Applied and Retry-After, and the JSON body; returns the task id."""
    sent = {"Prefer": prefer, **(headers or {})}
    if content_type is not None:
        sent["Content-Type"] = content_type
    async with http.request(method, running.repo_url(path, repo=repo), data=body, headers=sent,
                            params=params) as response:
        task_id = accepted(running, response.status, response.headers, await response.text(), account=account,
                           repo=repo)
        assert [item.strip() for item in response.headers["Preference-Applied"].split(",")] == list(applied)
        assert int(response.headers["Retry-After"]) >= 1, response.headers
    return task_id


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return media_type(self.headers.get("Content-Type"))

    def json(self) -> Any:
        return json.loads(self.body)


async def fetch(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Answer:
    async with http.request(method, url, **kwargs) as response:
        return Answer(response.status, dict(response.headers), await response.read())


async def read_monitor(http: aiohttp.ClientSession, running: Running, task_id: str,
                       headers: dict[str, str] | None = None) -> Answer:
    return await fetch(http, "GET", running.url(f"/tasks/{task_id}"), headers=headers)


async def status_of(http: aiohttp.ClientSession, running: Running, task_id: str,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer = await fetch(http, "GET", running.url(f"/tasks/{task_id}/status"), headers=headers)
    assert answer.status == 200, answer
    assert answer.content_type == "application/json", answer.headers
    document: dict[str, Any] = answer.json()
    return document


def problem_of(answer: Answer, status: int, slug: str | None = None, *,
               problem_status: int | None = None) -> dict[str, Any]:
    """The answer is an RFC 9457 problem with this status (and type, when `slug` is given); the problem's own
    status is the answer's unless `problem_status` says otherwise (a monitor's 200 carries a task's problem)."""
    assert answer.status == status, answer
    assert answer.content_type == PROBLEM_JSON, answer
    problem: dict[str, Any] = answer.json()
    assert problem["status"] == (problem_status or status) and problem["detail"], problem
    if slug is not None:
        assert problem["type"] == f"tag:graphstore-async,2026:problem/{slug}", problem
    return problem


async def wait_until(http: aiohttp.ClientSession, running: Running, task_id: str, done: Any,
                     timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll the status document until `done(document)` holds; a guard, not a timing assertion."""
    deadline = time.monotonic() + timeout_s
    while True:
        document = await status_of(http, running, task_id)
        if done(document):
            return document
        if time.monotonic() > deadline:
            pytest.fail(f"task {task_id} did not get there in {timeout_s} s: {document}")
        await asyncio.sleep(0.01)


async def put_graph(http: aiohttp.ClientSession, running: Running, body: bytes, graph: str = GRAPH,
                    headers: dict[str, str] | None = None, repo: str = REPO) -> None:
    async with http.put(running.repo_url("/service", repo=repo), params={"graph": graph}, data=body,
                        headers={"Content-Type": TURTLE, **(headers or {})}) as response:
        assert response.status in (201, 204), await response.text()


async def select_json(http: aiohttp.ClientSession, running: Running, query: str = SELECT) -> dict[str, Any]:
    async with http.get(running.repo_url("/sparql"), params={"query": query}, headers={"Accept": SRJ}) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json(content_type=None)
    return result


def write_triples(path: Path, name: str, count: int) -> None:
    """`count` distinct N-Triples lines about ex:{name}{i}, in a file (run it in a thread: it is large)."""
    with path.open("w") as fh:
        for start in range(0, count, 10_000):
            fh.write("".join(f'<{EX}{name}{i}> <{EX}p> "{name} {i}" .\n'
                             for i in range(start, min(count, start + 10_000))))


@dataclass
class Gate:
    """A source that holds every request until released: with `worker_jobs=1`, a task fetching from it keeps the
    worker's only job slot busy, so the tasks behind it stay pending."""

    base: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self) -> str:
        return self.base + "/hold"

    @property
    def host_port(self) -> str:
        return self.base.removeprefix("http://")


async def start_gate(aiohttp_server: AiohttpServer) -> Gate:
    gate = Gate()

    async def hold(request: web.Request) -> web.Response:
        await request.read()
        gate.arrived.set()
        await gate.release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hold)
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    gate.base = str(server.make_url("")).rstrip("/")
    return gate


async def hold_the_worker(http: aiohttp.ClientSession, running: Running, gate: Gate) -> str:
    """Submit a task whose execution the gate holds — a LOAD SILENT of a source the gate does not answer (so the
    server needs allow_load, and the gate in notify_allow) — and return once the worker's slot is held. (A held
    notification no longer holds a slot: deliveries are jobs of their own.)"""
    async with http.post(running.repo_url("/sparql"), data=f"LOAD SILENT <{gate.url()}>",
                         headers={"Content-Type": "application/sparql-update",
                                  "Prefer": "respond-async"}) as response:
        assert response.status == 202, await response.text()
        held = response.headers["Request-ID"]
    await asyncio.wait_for(gate.arrived.wait(), 20)
    return held
