"""A worker that dies (kill -9) or is stopped (SIGTERM) mid-import: the task still completes, exactly once.

The server runs as a real process (`graphstore-async serve`, with its in-process worker); the import is large
enough to be running when the process goes away. The restarted server's reaper sees the lapsed heartbeat and
hands the task back to the queue.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from conftest import Receiver, StartReceiver, free_port
from processes import count_in_graph, environment, fetch, serving, wait_healthy

GRAPH = "http://example.org/big"
LINES = 400_000
TIMEOUT_S = 60.0


def big_body(path: Path) -> Path:
    """N-Triples with a blank node in every 10th statement: a second load of them would add new blank nodes."""
    with path.open("w") as out:
        for i in range(LINES):
            subject = f"_:b{i}" if i % 10 == 0 else f"<http://example.org/s{i}>"
            out.write(f'{subject} <http://example.org/p> "value {i}" .\n')
    return path


def server_env(tmp_path: Path, redis_url: str, port: int, prefix: str, receiver: Receiver) -> dict[str, str]:
    return environment(GSA_HOST="127.0.0.1", GSA_PORT=str(port), GSA_DATA_DIR=str(tmp_path / "data"),
                       GSA_REDIS_URL=redis_url, GSA_REDIS_PREFIX=prefix, GSA_HEARTBEAT_S="0.3",
                       GSA_NOTIFY_ALLOW=receiver.host_port, GSA_TRANSACTIONAL_LOAD_BYTES="1000000",
                       GSA_SHUTDOWN_GRACE_S="0")


def status(base: str, task_id: str) -> dict[str, Any]:
    code, _, body = fetch(f"{base}/tasks/{task_id}/status")
    assert code == 200, body
    document: dict[str, Any] = json.loads(body)
    return document


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {TIMEOUT_S} s")
        time.sleep(0.05)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_import_interrupted_by_worker_death_completes_exactly_once(
    tmp_path: Path, redis_url: str, start_receiver: StartReceiver, how: signal.Signals,
) -> None:
    receiver = await start_receiver()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(tmp_path, redis_url, port, f"gsa-recovery-{how.name}-{port}", receiver)
    body = big_body(tmp_path / "big.nt")

    def scenario() -> None:  # blocking: runs in a thread, so the receiver on this event loop can answer
        log = tmp_path / "server.log"

        with serving(["serve"], cwd=tmp_path, env=env, log=log) as process:
            wait_healthy(process, base, log)
            assert fetch(f"{base}/test/repo", method="PUT")[0] == 201
            # the graph exists with one statement: the async POST merges into it (the repeatable merge)
            assert fetch(f"{base}/test/repo/service?graph={urllib.parse.quote(GRAPH)}", method="PUT",
                         headers={"Content-Type": "application/n-triples"},
                         data=b'<http://example.org/first> <http://example.org/p> "first" .\n')[0] == 201
            code, headers, answer = fetch(
                f"{base}/test/repo/service?graph={urllib.parse.quote(GRAPH)}", method="POST", data=body.read_bytes(),
                headers={"Content-Type": "application/n-triples", "Accept-Asynchronous": "notify",
                         "Asynchronous-Location": receiver.url(), "Client-Request-ID": "big-import"},
            )
            assert code == 202, answer
            task_id = headers["Request-ID"]
            wait_until(lambda: status(base, task_id)["status"] == "running", "the import starting")
            process.send_signal(how)
            process.wait(timeout=30)

        assert not receiver.received, "the first worker notified although it did not finish"
        with serving(["serve"], cwd=tmp_path, env=env, log=tmp_path / "server2.log") as process:
            wait_healthy(process, base, tmp_path / "server2.log")
            wait_until(lambda: status(base, task_id)["notification"]["delivery"] is not None, "the task finishing")
            document = status(base, task_id)
            assert document["status"] == "completed", document
            assert document["tries"] == 2, document  # run again after the first worker went away
            assert document["outcome"]["statements_added"] == LINES
            assert count_in_graph(base, GRAPH) == LINES + 1  # no duplicate, blank nodes included
            time.sleep(0.5)
            assert len(receiver.received) == 1
            assert receiver.received[0].headers["Request-ID"] == task_id
            graphs = json.loads(fetch(f"{base}/test/repo")[2])["graphs"]
            assert graphs == [GRAPH]
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    await asyncio.to_thread(scenario)


async def test_task_whose_worker_dies_every_time_fails_instead_of_running_for_ever(
    tmp_path: Path, redis_url: str, start_receiver: StartReceiver,
) -> None:
    """A body that kills its worker (a native crash, here stood in for by kill -9 while it runs) is run at most
    task_max_crashes times: then the task fails, says why, and notifies — it does not crash server after server."""
    receiver = await start_receiver()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**server_env(tmp_path, redis_url, port, f"gsa-crashes-{port}", receiver), "GSA_TASK_MAX_CRASHES": "2"}
    body = big_body(tmp_path / "big.nt")

    def scenario() -> None:
        task_id = ""
        for life in range(1, 3):  # two lives of the server, each killed while running the task
            log = tmp_path / f"server{life}.log"
            with serving(["serve"], cwd=tmp_path, env=env, log=log) as process:
                wait_healthy(process, base, log)
                if life == 1:
                    assert fetch(f"{base}/test/repo", method="PUT")[0] == 201
                    code, headers, answer = fetch(
                        f"{base}/test/repo/service?graph={urllib.parse.quote(GRAPH)}", method="PUT",
                        data=body.read_bytes(), headers={"Content-Type": "application/n-triples",
                                                         "Accept-Asynchronous": "notify",
                                                         "Asynchronous-Location": receiver.url()})
                    assert code == 202, answer
                    task_id = headers["Request-ID"]
                wait_until(lambda run=life, task=task_id: status(base, task)["status"] == "running"  # type: ignore[misc]
                           and status(base, task)["tries"] == run, f"run {life} starting")
                process.kill()
                process.wait(timeout=30)
        log = tmp_path / "server3.log"
        with serving(["serve"], cwd=tmp_path, env=env, log=log) as process:
            wait_healthy(process, base, log)
            wait_until(lambda: status(base, task_id)["notification"]["delivery"] is not None, "the task failing")
            document = status(base, task_id)
            assert document["status"] == "failed", document
            assert document["tries"] == 2, document  # not run a third time
            assert document["error"]["type"].endswith("/worker-crashed"), document
            assert "died 2 times" in document["error"]["detail"]
            assert len(receiver.received) == 1
            note = receiver.received[0].body.decode()
            assert "Failed" in note and "worker-crashed" in note, note
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    await asyncio.to_thread(scenario)
