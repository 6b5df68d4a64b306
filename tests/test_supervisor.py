"""`graphstore-async serve` supervises its server: a crashed server is started again on its port, with back-off;
one that was told to stop, or cannot start (status 2), is not; SIGTERM ends everything within the grace, even with
runaway queries on every store thread that the engine cannot interrupt.

Real processes: the supervisor and its server (`serve --no-supervise`, its child), a real redis-server. The
server's pid is read from the supervisor's log ("server process N started"); a native crash is stood in for by
SIGSEGV (and SIGABRT, SIGKILL) sent to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from processes import environment, fetch, run_cli, serving, wait_healthy

from graphstore_async.supervisor import exit_status, restart_delay_s, restarts

GRAPH = "http://example.org/big"
LINES = 100_000
WAIT_S = 30.0
GRACE_S = 2.0
STOP_MARGIN_S = 5.0  # what "within the grace and a few seconds" allows
STARTED = re.compile(r"server process (\d+) started")
DELAY = re.compile(r"starting it again in ([\d.]+) s")
RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f }"  # 2,000 triples: 8e9 rows


# --- the rule and the back-off, as pure functions -----------------------------------------------------------------

@pytest.mark.parametrize(("returncode", "again"), [
    (-signal.SIGSEGV, True), (-signal.SIGABRT, True), (-signal.SIGKILL, True), (-signal.SIGBUS, True),
    (1, True), (3, True), (-signal.SIGTERM, False), (-signal.SIGINT, False), (0, False), (2, False),
])
def test_restarts_after_a_crash_only(returncode: int, again: bool) -> None:
    assert restarts(returncode) is again


def test_restart_delay_doubles_up_to_its_bound() -> None:
    assert [restart_delay_s(n, 0.5, 30.0) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert restart_delay_s(10_000, 0.5, 30.0) == 30.0


def test_exit_status_is_the_servers_own_or_128_plus_its_signal() -> None:
    assert [exit_status(code) for code in (0, 2, 1, -signal.SIGKILL, -signal.SIGSEGV)] == [0, 2, 1, 137, 139]


# --- real processes -----------------------------------------------------------------------------------------------

class Server:
    """A supervised `graphstore-async serve` on 127.0.0.1 and what its log says."""

    def __init__(self, tmp_path: Path, redis_url: str, **variables: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "server.log"
        self.cwd = tmp_path
        self.env = environment(GSA_HOST="127.0.0.1", GSA_PORT=str(self.port), GSA_DATA_DIR=str(tmp_path / "data"),
                               GSA_REDIS_URL=redis_url, GSA_REDIS_PREFIX=f"gsa-supervisor-{uuid.uuid4().hex[:8]}",
                               GSA_HEARTBEAT_S="0.3", GSA_SHUTDOWN_GRACE_S=str(GRACE_S),
                               GSA_TRANSACTIONAL_LOAD_BYTES="1000000", **variables)
        self.process: subprocess.Popen[bytes] | None = None

    @contextmanager
    def running(self) -> Iterator[subprocess.Popen[bytes]]:
        with serving(["serve"], cwd=self.cwd, env=self.env, log=self.log) as process:
            self.process = process
            try:
                yield process
            finally:
                for pid in self.pids():  # the supervisor's kill -9 takes its server along; make sure of it
                    if alive(pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> list[int]:
        return [int(pid) for pid in STARTED.findall(self.text())]

    def delays(self) -> list[float]:
        return [float(delay) for delay in DELAY.findall(self.text())]

    def wait_for_server(self, count: int) -> int:
        """The pid of the `count`th server process, once it answers /health."""
        wait_until(lambda: len(self.pids()) >= count, f"server process {count} starting", self)
        assert self.process is not None
        wait_healthy(self.process, self.base, self.log)
        return self.pids()[count - 1]

    def kill_server(self, pid: int, how: signal.Signals) -> None:
        os.kill(pid, how)
        wait_until(lambda: not alive(pid), f"server process {pid} dying of {how.name}", self)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie left to a container's init that does not reap does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until(predicate: Callable[[], bool], what: str, server: Server, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s} s:\n{server.text()}")
        time.sleep(0.05)


def status(server: Server, task_id: str) -> dict[str, Any]:
    code, _, body = fetch(f"{server.base}/tasks/{task_id}/status")
    assert code == 200, body
    document: dict[str, Any] = json.loads(body)
    return document


def count(server: Server, graph: str | None = None) -> int:
    pattern = f"GRAPH <{graph}> {{ ?s ?p ?o }}" if graph else "?s ?p ?o"
    query = urllib.parse.quote(f"SELECT (COUNT(*) AS ?n) WHERE {{ {pattern} }}")
    code, _, body = fetch(f"{server.base}/test/repo/sparql?query={query}",
                          headers={"Accept": "application/sparql-results+json"})
    assert code == 200, body
    return int(json.loads(body)["results"]["bindings"][0]["n"]["value"])


def submit_import(server: Server, body: bytes) -> str:
    """A monitor-mode PUT of `body` into GRAPH (a replace: a second run leaves the same graph); its task id."""
    code, headers, answer = fetch(f"{server.base}/test/repo/service?graph={urllib.parse.quote(GRAPH)}",
                                  method="PUT", data=body,
                                  headers={"Content-Type": "application/n-triples", "Prefer": "respond-async"})
    assert code == 202, answer
    return headers["Location"].rstrip("/").rpartition("/")[2]


def big_body() -> bytes:
    return "".join(f'<http://example.org/s{i}> <http://example.org/p> "value {i}" .\n'
                   for i in range(LINES)).encode()


def test_a_server_that_crashes_is_started_again_on_its_port_and_its_task_completes(
    tmp_path: Path, redis_url: str,
) -> None:
    server = Server(tmp_path, redis_url)
    body = big_body()
    with server.running() as supervisor:
        first = server.wait_for_server(1)
        assert fetch(f"{server.base}/test/repo", method="PUT")[0] == 201
        for life, how in enumerate((signal.SIGSEGV, signal.SIGKILL), start=1):
            task_id = submit_import(server, body)
            wait_until(lambda task=task_id: status(server, task)["status"] == "running",  # type: ignore[misc]
                       "the import starting", server)
            pid = server.pids()[life - 1]
            killed = time.monotonic()
            server.kill_server(pid, how)
            again = server.wait_for_server(life + 1)
            assert again != pid
            assert time.monotonic() - killed < 10, "the server did not answer again on its port within 10 s"
            wait_until(lambda task=task_id: status(server, task)["status"] == "completed",  # type: ignore[misc]
                       "the import completing after the restart", server)
            document = status(server, task_id)
            assert document["tries"] == 2, document  # run again by the new server, after its reaper took it up
            assert count(server, GRAPH) == LINES
            assert f"server process {pid} was killed by {how.name}" in server.text()
        assert server.delays() == [0.5, 1.0]  # two crashes in a row
        assert first == server.pids()[0] and supervisor.poll() is None
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=GRACE_S + STOP_MARGIN_S) == 0, server.text()
    assert not any(alive(pid) for pid in server.pids())
    if "Segmentation fault" not in server.text():  # faulthandler wrote the stacks of the crashed server
        pytest.fail(f"no stacks from the crashed server in the log:\n{server.text()}")


@pytest.mark.parametrize("fault", ["open-server-on-all-interfaces", "port-in-use"])
def test_a_server_that_cannot_start_is_not_started_again(fault: str, tmp_path: Path, redis_url: str) -> None:
    server = Server(tmp_path, redis_url)
    with socket.socket() as taken:
        if fault == "port-in-use":
            taken.bind(("127.0.0.1", server.port))
            taken.listen()
        else:
            server.env["GSA_HOST"] = "0.0.0.0"
        done = run_cli("serve", cwd=tmp_path, env=server.env, timeout=WAIT_S)
    assert done.returncode == 2, done.stderr
    assert len(STARTED.findall(done.stderr)) == 1, done.stderr
    assert "exited with status 2 (a configuration or usage error); not started again" in done.stderr
    if fault == "port-in-use":
        assert "address already in use" in done.stderr
    else:
        assert "refusing to serve on 0.0.0.0 with no accounts configured" in done.stderr
    assert not any(alive(int(pid)) for pid in STARTED.findall(done.stderr))


def test_a_server_stopped_by_a_sigterm_of_its_own_is_not_started_again(tmp_path: Path, redis_url: str) -> None:
    server = Server(tmp_path, redis_url)
    with server.running() as supervisor:
        pid = server.wait_for_server(1)
        os.kill(pid, signal.SIGTERM)  # an operator stopping the server itself: the supervisor goes with it
        assert supervisor.wait(timeout=GRACE_S + STOP_MARGIN_S) == 0, server.text()
    assert f"server process {pid} exited with status 0 (it was stopped); not started again" in server.text()
    assert len(server.pids()) == 1


def test_sigterm_ends_the_server_within_the_grace_even_with_runaway_queries(tmp_path: Path, redis_url: str) -> None:
    server = Server(tmp_path, redis_url)
    with server.running() as supervisor:
        pid = server.wait_for_server(1)
        assert fetch(f"{server.base}/test/repo", method="PUT")[0] == 201
        triples = "".join(f'<http://example.org/s{i}> <http://example.org/p> "{i}" .\n' for i in range(2_000))
        assert fetch(f"{server.base}/test/repo/service?default", method="PUT", data=triples.encode(),
                     headers={"Content-Type": "application/n-triples"})[0] in (201, 204)
        answers: list[object] = []

        def ask() -> None:
            try:
                answers.append(fetch(f"{server.base}/test/repo/sparql?query={urllib.parse.quote(RUNAWAY)}"))
            except OSError as exc:
                answers.append(exc)

        askers = [threading.Thread(target=ask, daemon=True) for _ in range(2)]
        for asker in askers:
            asker.start()
        time.sleep(1.0)
        assert answers == [], "the runaway queries ended on their own: make them bigger"
        assert fetch(f"{server.base}/health")[0] == 200  # they do not hold the event loop

        sent = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        try:
            code = supervisor.wait(timeout=GRACE_S + STOP_MARGIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"not stopped within {GRACE_S + STOP_MARGIN_S} s of SIGTERM:\n{server.text()}")
        took_s = time.monotonic() - sent
        assert code == 0, server.text()
        assert took_s >= GRACE_S * 0.9, "the runaway queries were not given their grace"
        wait_until(lambda: not alive(pid), "the server process ending", server, timeout_s=1.0)
        assert "2 threads still busy" in server.text()
        assert len(server.pids()) == 1  # told to stop: not started again
        for asker in askers:
            asker.join(timeout=5)
        assert len(answers) == 2 and not any(isinstance(a, tuple) and a[0] == 200 for a in answers), answers


def test_backoff_grows_while_the_server_keeps_dying_and_resets_after_a_healthy_run(
    tmp_path: Path, redis_url: str,
) -> None:
    server = Server(tmp_path, redis_url, GSA_RESTART_HEALTHY_S="3")
    with server.running() as supervisor:
        for life in range(1, 4):  # killed as soon as it is there: three crashes in a row
            wait_until(lambda n=life: len(server.pids()) >= n, f"server process {life} starting", server)  # type: ignore[misc]
            server.kill_server(server.pids()[life - 1], signal.SIGABRT)
        pid = server.wait_for_server(4)
        time.sleep(3.2)  # a healthy run: the next crash starts the back-off again
        server.kill_server(pid, signal.SIGKILL)
        server.wait_for_server(5)
        assert server.delays() == [0.5, 1.0, 2.0, 0.5], server.text()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=GRACE_S + STOP_MARGIN_S) == 0, server.text()
    assert not any(alive(pid) for pid in server.pids())


def test_sigterm_during_a_restart_pause_stops_the_supervisor_at_once(tmp_path: Path, redis_url: str) -> None:
    server = Server(tmp_path, redis_url, GSA_RESTART_BACKOFF_S="20")
    with server.running() as supervisor:
        server.kill_server(server.wait_for_server(1), signal.SIGSEGV)
        wait_until(lambda: server.delays() == [20.0], "the restart pause", server)
        sent = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=2) == 0, server.text()
        assert time.monotonic() - sent < 1
    assert len(server.pids()) == 1


def test_the_server_dies_with_its_supervisor(tmp_path: Path, redis_url: str) -> None:
    server = Server(tmp_path, redis_url)
    with server.running() as supervisor:
        pid = server.wait_for_server(1)
        supervisor.kill()
        supervisor.wait(timeout=5)
        wait_until(lambda: not alive(pid), "the server dying with its supervisor", server, timeout_s=5)
    with pytest.raises(OSError):
        fetch(f"{server.base}/health")


@pytest.mark.parametrize("how", ["option", "environment"])
def test_no_supervise_serves_in_the_process_itself(how: str, tmp_path: Path, redis_url: str) -> None:
    server = Server(tmp_path, redis_url)
    args = ["serve", "--no-supervise"]
    if how == "environment":
        args, server.env["GSA_SUPERVISE"] = ["serve"], "false"
    with serving(args, cwd=tmp_path, env=server.env, log=server.log) as process:
        wait_healthy(process, server.base, server.log)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert children == [], "a child process serves"
        assert server.pids() == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=GRACE_S + STOP_MARGIN_S) == 0, server.text()
    assert "threads still busy" not in server.text()  # nothing was running: an ordinary exit
