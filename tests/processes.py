"""Running the console script in real processes: `graphstore-async …` commands and a background server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("graphstore-async")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

# urllib would otherwise follow http_proxy & co. from the environment, even for 127.0.0.1
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def environment(**variables: str) -> dict[str, str]:
    """The caller's environment without any GSA_* variable, plus `variables`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GSA_")}
    env.update(variables)
    return env


def run_cli(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file(), f"{SCRIPT} is not installed"
    return subprocess.run([str(SCRIPT), *map(str, args)], cwd=cwd, env=env if env is not None else environment(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
          data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with _opener.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


@contextmanager
def serving(args: Sequence[str | Path], *, cwd: Path, env: dict[str, str],
            log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`graphstore-async ARGS` running in the background; killed on the way out if the test did not stop it."""
    with log.open("wb") as sink:
        process = subprocess.Popen([str(SCRIPT), *map(str, args)], cwd=cwd, env=env,
                                   stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)


def wait_healthy(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before answering:\n{log.read_text()}")
        try:
            status, _, body = fetch(base + "/health")
            if status == 200:
                assert json.loads(body) == {"status": "ok"}
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"GET /health did not answer 200 within {START_TIMEOUT} s:\n{log.read_text()}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, as a service manager would: the server exits cleanly and promptly."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not exit within {STOP_TIMEOUT} s of SIGTERM:\n{log.read_text()}")
    assert code == 0, log.read_text()


def count_in_graph(base: str, graph: str, repo: str = "test/repo") -> int:
    """The statements in a named graph of a running server, by a synchronous COUNT query."""
    query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
    status, _, body = fetch(f"{base}/{repo}/sparql?query={urllib.parse.quote(query)}",
                            headers={"Accept": "application/sparql-results+json"})
    assert status == 200, body
    return int(json.loads(body)["results"]["bindings"][0]["n"]["value"])
