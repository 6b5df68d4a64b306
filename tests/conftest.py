"""Factory fixtures: a real redis-server, real servers on 127.0.0.1, one HTTP client session per test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
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
        values: dict[str, Any] = {"data_dir": tmp_path / f"data{count}", "redis_url": redis_url,
                                  "config_file": config_file}
        settings = Settings(**{**values, **overrides})
        server = await aiohttp_server(create_app(settings), host="127.0.0.1")
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
