"""The client commands of `graphstore-async` (load, task list|status|wait|cancel) as a user runs them: the CLI in
a real process against a live in-process server, awaited with asyncio (a blocking call would stop the server);
exit codes 0 success, 1 failed or cancelled task, 2 usage or HTTP error, 3 time-out."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from conftest import REPO, Running, StartServer, wait_for_status
from helpers import count_triples
from processes import SCRIPT, environment

EX = "http://example.org/"
GRAPH = EX + "graph/one"
TURTLE = f'@prefix ex: <{EX}> .\nex:alice ex:knows ex:bob ;\n    ex:name "Alice" .\nex:bob ex:name "Bob" .\n'
BAD_TURTLE = f'<{EX}a> <{EX}b> "c" .\n<{EX}a> <{EX}b> .\n'  # line 2 has no object


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


async def cli(running: Running | str, *args: str | Path, token: str | None = None, timeout: float = 60) -> Run:
    """`graphstore-async ARGS` with GSA_URL set to the server; awaited, so the in-process server keeps serving."""
    variables = {"GSA_URL": running if isinstance(running, str) else running.base}
    if token is not None:
        variables["GSA_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), *map(str, args), env=environment(**variables), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture
def turtle_file(tmp_path: Path) -> Path:
    path = tmp_path / "people.ttl"
    path.write_text(TURTLE)
    return path


async def submit_pending(running: Running, http: aiohttp.ClientSession) -> str:
    """A PUT in monitor mode; its task id."""
    async with http.put(running.repo_url("/service"), params={"graph": GRAPH}, data=TURTLE.encode(),
                        headers={"Content-Type": "text/turtle", "Prefer": "respond-async"}) as response:
        assert response.status == 202, await response.text()
        return response.headers["Request-ID"]


async def idle_server(start_server: StartServer, http: aiohttp.ClientSession) -> Running:
    """A server with no worker: its tasks stay pending."""
    running = await start_server(worker=False)
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    return running


# -- load -------------------------------------------------------------------------------------------------------


async def test_load_synchronously(server: Running, http: aiohttp.ClientSession, turtle_file: Path,
                                  tmp_path: Path) -> None:
    loaded = await cli(server, "load", turtle_file, "--repo", REPO, "--graph", GRAPH)
    assert loaded.code == 0, loaded.stderr
    assert loaded.stdout == f"loaded {turtle_file} into {REPO} (graph <{GRAPH}>): 201 created\n"
    assert await count_triples(http, server, GRAPH) == 3

    again = await cli(server, "load", turtle_file, "--repo", REPO, "--gzip")
    assert again.code == 0, again.stderr
    assert again.stdout == f"loaded {turtle_file} into {REPO} (the default graph): 204 replaced\n"

    trig = tmp_path / "all.trig"
    trig.write_text(f'<{EX}s> <{EX}p> "d" . GRAPH <{EX}g2> {{ <{EX}s> <{EX}p> "n" }}\n')
    dataset = await cli(server, "load", trig, "--repo", REPO)
    assert dataset.code == 0, dataset.stderr
    assert "(the whole dataset)" in dataset.stdout
    assert await count_triples(http, server, GRAPH) == 0  # replaced with the file's graphs
    assert await count_triples(http, server, EX + "g2") == 1


async def test_load_errors_exit_2_with_the_servers_detail(server: Running, turtle_file: Path,
                                                          tmp_path: Path) -> None:
    unknown_repo = await cli(server, "load", turtle_file, "--repo", "test/nothing")
    assert unknown_repo.code == 2
    assert "404" in unknown_repo.stderr and "test/nothing" in unknown_repo.stderr

    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD_TURTLE)
    syntax = await cli(server, "load", bad, "--repo", REPO)
    assert syntax.code == 2 and "400" in syntax.stderr and "line 2" in syntax.stderr

    strange = tmp_path / "data.xyz"
    strange.write_text(TURTLE)
    unknown_type = await cli(server, "load", strange, "--repo", REPO)
    assert unknown_type.code == 2 and "cannot tell the RDF format" in unknown_type.stderr

    missing = await cli(server, "load", tmp_path / "none.ttl", "--repo", REPO)
    assert missing.code == 2 and "none.ttl" in missing.stderr

    usage = await cli(server, "load", turtle_file)  # no --repo
    assert usage.code == 2 and "--repo" in usage.stderr

    nobody = await cli("http://127.0.0.1:9", "load", turtle_file, "--repo", REPO)
    assert nobody.code == 2 and "127.0.0.1:9" in nobody.stderr


async def test_load_async_waits_with_a_progress_bar(server: Running, http: aiohttp.ClientSession,
                                                    tmp_path: Path) -> None:
    big = tmp_path / "many.nt"
    big.write_text("".join(f'<{EX}s{i}> <{EX}p> "{i}" .\n' for i in range(20_000)))
    loaded = await cli(server, "load", big, "--repo", REPO, "--graph", GRAPH, "--async", "--interval", "0.05")
    assert loaded.code == 0, loaded.stderr
    assert loaded.stdout.startswith(f"loaded 20000 statements from {big} into {REPO} (graph <{GRAPH}>) (task ")
    assert "\r[" in loaded.stderr and "statements" in loaded.stderr and "0:00:0" in loaded.stderr
    assert loaded.stderr.splitlines()[0].startswith("task ")  # the task id and its monitor URL come first
    assert "completed" in loaded.stderr.rsplit("\r", 1)[-1]  # the bar's last frame
    assert await count_triples(http, server, GRAPH) == 20_000


async def test_load_async_of_a_bad_file_exits_1_with_the_error(server: Running, http: aiohttp.ClientSession,
                                                               tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD_TURTLE)
    failed = await cli(server, "load", bad, "--repo", REPO, "--async", "--interval", "0.05")
    assert failed.code == 1, failed.stderr
    assert "task failed:" in failed.stderr and "line 2, column" in failed.stderr
    assert "/status)" in failed.stderr  # where to look
    assert await count_triples(http, server) == 0


async def test_load_async_times_out_with_exit_3(start_server: StartServer, http: aiohttp.ClientSession,
                                                turtle_file: Path) -> None:
    running = await idle_server(start_server, http)
    late = await cli(running, "load", turtle_file, "--repo", REPO, "--async", "--timeout", "0.5",
                     "--interval", "0.05")
    assert late.code == 3, late.stderr
    assert "still pending after 0.5 s" in late.stderr and "graphstore-async task wait " in late.stderr
    assert "queued behind 0" in late.stderr


# -- task list | status | wait | cancel --------------------------------------------------------------------------


async def test_task_status_wait_and_list(server: Running, http: aiohttp.ClientSession) -> None:
    task_id = await submit_pending(server, http)
    waited = await cli(server, "task", "wait", task_id, "--interval", "0.05")
    assert waited.code == 0, waited.stderr
    assert waited.stdout == (f"completed: PUT graph <{GRAPH}> in {REPO}: 3 statements added, 0 removed "
                             f"(task {task_id})\n")
    assert "statements" in waited.stderr

    status = await cli(server, "task", "status", task_id)
    assert status.code == 0, status.stderr
    lines = dict(line.split(":", 1) for line in status.stdout.splitlines())
    assert lines["id"].strip() == task_id and lines["status"].strip() == "completed"
    assert lines["operation"].strip() == f"PUT graph <{GRAPH}> (graph-put)"
    assert lines["outcome"].strip() == f"201, 3 added, 0 removed, graph <{GRAPH}>"
    assert lines["monitor"].strip() == server.url(f"/tasks/{task_id}")
    assert {"created", "started", "ended", "progress", "repository"} <= lines.keys()

    as_json = await cli(server, "task", "status", task_id, "--json")
    assert json.loads(as_json.stdout)["outcome"]["statements_added"] == 3

    update = await http.post(server.repo_url("/sparql"), data=b"CLEAR DEFAULT",
                             headers={"Content-Type": "application/sparql-update", "Prefer": "respond-async"})
    update_id = update.headers["Request-ID"]
    update.release()
    await wait_for_status(http, server, update_id)
    listed = await cli(server, "task", "list")
    assert listed.code == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "CREATED", "REPOSITORY", "OPERATION", "STATEMENTS"]
    assert [row.split()[0] for row in rows] == [update_id, task_id]  # newest first
    assert rows[1].split()[1] == "completed" and rows[1].split()[-1] == "3"
    assert f"PUT graph <{GRAPH}>" in rows[1]

    limited = await cli(server, "task", "list", "--limit", "1", "--status", "completed")
    assert [row.split()[0] for row in limited.stdout.splitlines()[1:]] == [update_id]
    none = await cli(server, "task", "list", "--status", "failed")
    assert (none.code, none.stdout, none.stderr) == (0, "", "no tasks\n")

    unknown = await cli(server, "task", "status", "no-such-task")
    assert unknown.code == 2 and "404" in unknown.stderr


async def test_a_failed_task_exits_1(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.put(server.repo_url("/service"), params={"graph": GRAPH}, data=BAD_TURTLE.encode(),
                        headers={"Content-Type": "text/turtle", "Prefer": "respond-async"}) as response:
        task_id = response.headers["Request-ID"]
    waited = await cli(server, "task", "wait", task_id, "--interval", "0.05")
    assert waited.code == 1 and "line 2" in waited.stderr
    status = await cli(server, "task", "status", task_id)
    assert status.code == 1
    assert "status:     failed" in status.stdout and "error:" in status.stdout and "line 2" in status.stdout


async def test_cancel_a_pending_task_and_wait_times_out(start_server: StartServer,
                                                        http: aiohttp.ClientSession) -> None:
    running = await idle_server(start_server, http)
    task_id = await submit_pending(running, http)
    late = await cli(running, "task", "wait", task_id, "--timeout", "0.3", "--interval", "0.05")
    assert late.code == 3 and f"graphstore-async task wait {task_id}" in late.stderr
    pending = await cli(running, "task", "status", task_id)
    assert pending.code == 0 and "status:     pending" in pending.stdout
    assert "queued behind 0 other tasks" in pending.stdout

    cancelled = await cli(running, "task", "cancel", task_id)
    assert (cancelled.code, cancelled.stdout) == (0, f"cancelled task {task_id}\n")
    status = await cli(running, "task", "status", task_id)
    assert status.code == 1 and "status:     cancelled" in status.stdout
    waited = await cli(running, "task", "wait", task_id)
    assert waited.code == 1 and waited.stdout.startswith("cancelled: PUT")
    again = await cli(running, "task", "cancel", task_id)
    assert again.code == 2 and "409" in again.stderr


async def test_the_token_comes_from_gsa_token(start_server: StartServer, turtle_file: Path) -> None:
    from graphstore_async.auth import new_token, token_entry

    token = new_token()
    running = await start_server("[accounts.alice]\n" + token_entry("alice", token))
    async with aiohttp.ClientSession() as http, http.put(running.repo_url(repo="alice/books"),
                                                         headers={"Authorization": f"Bearer {token}"}) as made:
        assert made.status == 201
    refused = await cli(running, "load", turtle_file, "--repo", "alice/books")
    assert refused.code == 2 and "401" in refused.stderr
    loaded = await cli(running, "load", turtle_file, "--repo", "alice/books", "--async", "--interval", "0.05",
                       token=token)
    assert loaded.code == 0, loaded.stderr
    assert token not in loaded.stdout + loaded.stderr
    listed = await cli(running, "task", "list", token=token)
    assert listed.code == 0 and len(listed.stdout.splitlines()) == 2
