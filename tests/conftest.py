"""Factory fixtures: a real redis-server, real servers on 127.0.0.1, one HTTP client session per test."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from graphstore_async.settings import Settings
from graphstore_async.web.app import create_app

REPO = "test/repo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the whole session, on a free loopback port, stopped at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; `make test` installs it (Debian package redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@dataclass
class Running:
    base: str
    settings: Settings

    def url(self, path: str) -> str:
        return self.base + path

    def repo_url(self, path: str = "", repo: str = REPO) -> str:
        return f"{self.base}/{repo}{path}"


StartServer = Callable[..., Awaitable[Running]]


@pytest.fixture
def start_server(aiohttp_server: AiohttpServer, tmp_path: Path, redis_url: str) -> StartServer:
    """start_server(config=TOML text or None, **settings): a live server on 127.0.0.1 with its own data."""
    count = 0

    async def start(config: str | None = None, **overrides: Any) -> Running:
        nonlocal count
        count += 1
        config_file = None
        if config is not None:
            config_file = tmp_path / f"config{count}.toml"
            config_file.write_text(config)
        port = free_port()
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"data{count}", "redis_url": redis_url, "config_file": config_file,
            "base_url": f"http://127.0.0.1:{port}",
            "redis_prefix": f"gsa-test-{uuid.uuid4().hex[:12]}",  # its own queue: workers of other servers
            "heartbeat_s": 0.5, "notify_backoff_s": 0.05,          # (tests run side by side) never take its jobs
        }
        settings = Settings(**{**values, **overrides})
        server = await aiohttp_server(create_app(settings), host="127.0.0.1", port=port)
        return Running(str(server.make_url("")).rstrip("/"), settings)

    return start


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def server(start_server: StartServer, http: aiohttp.ClientSession) -> Running:
    """An open server (no accounts) with an empty repository test/repo."""
    running = await start_server()
    async with http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    return running


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A notification receiver on 127.0.0.1 that records what it gets and answers from a script."""

    base: str
    received: list[Received]
    answers: list[int]  # statuses to answer, in turn; 204 once they are used up
    redirect_to: str | None = None

    def url(self, path: str = "/notify") -> str:
        return self.base + path

    @property
    def host_port(self) -> str:
        return self.base.removeprefix("http://")

    async def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"the receiver got {len(self.received)} notifications, not {count}, in {timeout_s} s")
            await asyncio.sleep(0.02)
        return self.received


StartReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
def start_receiver(aiohttp_server: AiohttpServer) -> StartReceiver:
    """start_receiver(answers=[503, 200], redirect_to=None, port=None): a live receiver on 127.0.0.1."""

    async def start(answers: list[int] | None = None, redirect_to: str | None = None,
                    port: int | None = None) -> Receiver:
        receiver = Receiver("", [], list(answers or []), redirect_to)

        async def handle(request: web.Request) -> web.Response:
            receiver.received.append(Received(request.method, request.path_qs, dict(request.headers),
                                              await request.read()))
            status = receiver.answers.pop(0) if receiver.answers else 204
            if receiver.redirect_to:
                raise web.HTTPFound(receiver.redirect_to)
            return web.Response(status=status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        server = await aiohttp_server(app, host="127.0.0.1", port=port or free_port())
        receiver.base = str(server.make_url("")).rstrip("/")
        return receiver

    return start


async def wait_for_status(http: aiohttp.ClientSession, running: Running, task_id: str,
                          statuses: tuple[str, ...] = ("completed", "failed", "cancelled"),
                          timeout_s: float = 30.0, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll the task's status document until it reaches one of `statuses` (and, if it notifies, its delivery
    is over)."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with http.get(running.url(f"/tasks/{task_id}/status"), headers=headers) as response:
            assert response.status == 200, await response.text()
            document: dict[str, Any] = await response.json()
        notification = document["notification"]
        if document["status"] in statuses and (notification["location"] is None or notification["delivery"]):
            return document
        if time.monotonic() > deadline:
            pytest.fail(f"task {task_id} still {document['status']} after {timeout_s} s: {document}")
        await asyncio.sleep(0.05)
