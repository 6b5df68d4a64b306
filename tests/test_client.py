"""graphstore_async.client against a live server (real worker, real Redis) over real HTTP: every operation run
synchronously, in notify mode to a real receiver, and in monitor mode; errors as typed exceptions; files
streamed from disk."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import REPO, Receiver, Running, StartReceiver, StartServer, free_port
from helpers import assert_isomorphic, count_triples, parse_graph

from graphstore_async import errors as server_errors
from graphstore_async.auth import new_token, token_entry
from graphstore_async.client import (
    DATASET,
    AsyncOperation,
    Client,
    ClientError,
    HTTPError,
    Notify,
    OperationFailed,
    OperationPending,
    OperationTimeout,
    Response,
    TaskStatus,
    TransportError,
)

EX = "http://example.org/"
GRAPH = EX + "graph/one"
BAD_TURTLE = f'<{EX}a> <{EX}b> "c" .\n<{EX}a> <{EX}b> .\n'.encode()  # line 2 has no object


def triples(name: str, count: int) -> bytes:
    """`count` distinct N-Triples lines (also Turtle) about ex:{name}{i}."""
    return "".join(f'<{EX}{name}{i}> <{EX}p> "{name} {i}" .\n' for i in range(count)).encode()


@pytest.fixture
async def client(server: Running) -> AsyncIterator[Client]:
    async with Client(server.base) as opened:
        yield opened


async def make_server(start_server: StartServer, **settings: Any) -> Running:
    running = await start_server(**settings)
    async with aiohttp.ClientSession() as http, http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    return running


async def select_names(client: Client, graph: str | None = None) -> list[str]:
    pattern = "?s ?p ?name" if graph is None else f"GRAPH <{graph}> {{ ?s ?p ?name }}"
    answer = await client.query(REPO, f"SELECT ?name WHERE {{ {pattern} }} ORDER BY ?name")
    return [row["name"]["value"] for row in answer.json()["results"]["bindings"]]


# -- synchronous ------------------------------------------------------------------------------------------------


async def test_graph_operations_synchronously(client: Client) -> None:
    created = await client.put_graph(REPO, triples("a", 2), GRAPH, content_type="text/turtle")
    assert isinstance(created, Response) and created.status == 201
    replaced = await client.put_graph(REPO, triples("b", 2).decode(), GRAPH, content_type="application/n-triples")
    assert replaced.status == 204
    merged = await client.post_graph(REPO, triples("c", 1), GRAPH, content_type="text/turtle", gzip=True)
    assert merged.status == 204

    got = await client.get_graph(REPO, GRAPH, accept="application/n-triples")
    assert (got.status, got.content_type) == (200, "application/n-triples")
    assert_isomorphic(parse_graph(triples("b", 2) + triples("c", 1), "text/turtle"),
                      parse_graph(got.text(), "application/n-triples"))
    assert await select_names(client, GRAPH) == ["b 0", "b 1", "c 0"]

    deleted = await client.delete_graph(REPO, GRAPH)
    assert deleted.status == 204
    with pytest.raises(HTTPError) as gone:
        await client.get_graph(REPO, GRAPH)
    assert gone.value.status == 404 and gone.value.error_class is server_errors.GraphNotFound
    assert GRAPH in (gone.value.detail or "")


async def test_default_graph_whole_dataset_and_new_graphs(client: Client, tmp_path: Path) -> None:
    await client.put_graph(REPO, triples("d", 1), content_type="text/turtle")  # the default graph
    made = await client.post_graph(REPO, triples("n", 2), DATASET, content_type="text/turtle")
    assert made.status == 201
    new_graph = made.headers["Location"]
    assert await select_names(client, new_graph) == ["n 0", "n 1"]

    dump = await client.get_graph(REPO, DATASET, accept="application/n-quads")
    assert dump.content_type == "application/n-quads"
    lines = dump.text().splitlines()
    assert len(lines) == 3 and sum(line.endswith(f"<{new_graph}> .") for line in lines) == 2

    trig = tmp_path / "data.trig"
    trig.write_text(f'<{EX}s> <{EX}p> "default" . GRAPH <{GRAPH}> {{ <{EX}s> <{EX}p> "named" }}\n')
    replaced = await client.put_graph(REPO, trig, DATASET)  # the type from the extension
    assert replaced.status == 204
    assert await select_names(client) == ["default"]  # the default graph: the new graph is gone
    assert await select_names(client, GRAPH) == ["named"]
    emptied = await client.delete_graph(REPO)
    assert emptied.status == 204
    assert await select_names(client) == []


async def test_query_and_update_synchronously(client: Client) -> None:
    updated = await client.update(REPO, f'INSERT DATA {{ <{EX}x> <{EX}p> "one" . GRAPH <{GRAPH}> {{ '
                                         f'<{EX}x> <{EX}p> "two" }} }}')
    assert updated.status == 204
    rows = await client.query(REPO, "SELECT ?o WHERE { ?s ?p ?o }")
    assert rows.content_type == "application/sparql-results+json"
    assert [b["o"]["value"] for b in rows.json()["results"]["bindings"]] == ["one"]

    csv = await client.query(REPO, "SELECT ?o WHERE { ?s ?p ?o }", accept="text/csv", get=True,
                             default_graphs=[GRAPH])
    assert (csv.content_type, csv.text().splitlines()) == ("text/csv", ["o", "two"])
    ask = await client.query(REPO, f"ASK {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }}", named_graphs=[GRAPH])
    assert ask.json()["boolean"] is True
    turtle = await client.query(REPO, "CONSTRUCT WHERE { ?s ?p ?o }", accept="text/turtle")
    assert turtle.content_type == "text/turtle"
    assert_isomorphic(parse_graph(f'<{EX}x> <{EX}p> "one" .', "text/turtle"), parse_graph(turtle.body, "text/turtle"))


async def test_http_errors_carry_the_problem_and_the_servers_error_class(client: Client, server: Running) -> None:
    with pytest.raises(HTTPError) as unknown:
        await client.query("test/nothing", "ASK {}")
    assert unknown.value.status == 404 and unknown.value.error_class is server_errors.RepositoryNotFound
    assert unknown.value.problem["status"] == 404 and "test/nothing" in unknown.value.problem["detail"]

    with pytest.raises(HTTPError) as unsupported:
        await client.put_graph(REPO, b"a,b,c", GRAPH, content_type="text/csv")
    assert unsupported.value.status == 415
    assert unsupported.value.error_class is server_errors.UnsupportedMediaType
    assert "text/csv" in unsupported.value.problem["detail"]

    with pytest.raises(HTTPError) as bad:
        await client.put_graph(REPO, BAD_TURTLE, GRAPH, content_type="text/turtle")
    assert bad.value.error_class is server_errors.SyntaxProblem
    assert (bad.value.problem["line"], bad.value.status) == (2, 400)
    assert isinstance(bad.value, ClientError)
    assert await count_triples_of(client) == 0  # nothing changed

    with pytest.raises(HTTPError) as syntax:
        await client.update(REPO, "INSERT NOTHING")
    assert syntax.value.error_class is server_errors.SyntaxProblem

    with pytest.raises(ValueError, match="extension"):
        await client.put_graph(REPO, Path("data.unknown"))


async def count_triples_of(client: Client) -> int:
    answer = await client.query(REPO, "SELECT (COUNT(*) AS ?n) WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }")
    return int(answer.json()["results"]["bindings"][0]["n"]["value"])


async def test_no_server_is_a_transport_error_and_a_closed_client_says_so() -> None:
    async with Client(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(TransportError):
            await client.query(REPO, "ASK {}")
    with pytest.raises(ClientError, match="async with"):
        await client.query(REPO, "ASK {}")


async def test_a_file_is_streamed_from_disk_not_read_whole(client: Client, server: Running, tmp_path: Path,
                                                           http: aiohttp.ClientSession) -> None:
    big = tmp_path / "big.nt"
    count = 60_000
    with big.open("wb") as fh:
        for start in range(0, count, 10_000):
            fh.write(b"".join(f'<{EX}s{i}> <{EX}p> "a literal long enough to make this file weigh a few '
                              f'megabytes: {i}" .\n'.encode() for i in range(start, start + 10_000)))
    size = big.stat().st_size
    assert size > 5 * 1024**2

    tracemalloc.start()
    try:
        answer = await client.put_graph(REPO, big, GRAPH)  # application/n-triples, from the extension
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 201
    assert peak < size / 2, f"{peak} bytes allocated at the peak for a {size}-byte file: it was read whole"
    assert await count_triples(http, server, GRAPH) == count

    gzipped = await client.put_graph(REPO, big, EX + "graph/gz", gzip=True)  # compressed on the way
    assert gzipped.status == 201
    assert await count_triples(http, server, EX + "graph/gz") == count


async def test_bearer_token_and_other_users_tasks(start_server: StartServer) -> None:
    alice, bob = new_token(), new_token()
    config = "[accounts.alice]\n[accounts.bob]\n" + token_entry("alice", alice) + token_entry("bob", bob)
    running = await start_server(config)
    async with Client(running.base, token=alice) as as_alice, Client(running.base, token=bob) as as_bob, \
            Client(running.base) as anonymous:
        created = await as_alice.fetch("PUT", running.repo_url(repo="alice/books"))
        assert created.status == 201
        await as_alice.put_graph("alice/books", triples("t", 1), content_type="text/turtle")
        with pytest.raises(HTTPError) as refused:
            await anonymous.query("alice/books", "ASK {}")
        assert refused.value.status == 401 and refused.value.error_class is server_errors.Unauthorized
        with pytest.raises(HTTPError) as forbidden:
            await as_bob.query("alice/books", "ASK {}")
        assert forbidden.value.error_class is server_errors.Forbidden

        operation = await as_alice.update("alice/books", f"INSERT DATA {{ <{EX}a> <{EX}b> <{EX}c> }}",
                                          notify=Notify(None))
        await operation.wait(timeout=30, poll_interval=0.05)
        with pytest.raises(HTTPError) as hidden:
            await as_bob.task(operation.request_id or "").poll()
        assert hidden.value.status == 404


# -- notify mode ------------------------------------------------------------------------------------------------


async def notify_setup(start_server: StartServer, start_receiver: StartReceiver) -> tuple[Running, Receiver]:
    receiver = await start_receiver()
    running = await make_server(start_server, notify_allow=(receiver.host_port,))
    return running, receiver


async def test_each_operation_in_notify_mode(start_server: StartServer, start_receiver: StartReceiver) -> None:
    running, receiver = await notify_setup(start_server, start_receiver)
    async with Client(running.base) as client:
        put = await client.put_graph(REPO, triples("a", 3), GRAPH, content_type="text/turtle",
                                     notify=Notify(receiver.url("/put")), client_request_id="put-1")
        assert isinstance(put, AsyncOperation)
        assert put.monitor_url == running.url(f"/tasks/{put.request_id}") and put.client_request_id == "put-1"
        assert put.status is TaskStatus.PENDING
        await receiver.wait_for(1)  # each step reads what the one before wrote
        operations = [
            put,
            await client.post_graph(REPO, triples("b", 1), GRAPH, content_type="text/turtle",
                                    notify=Notify(receiver.url("/post"))),
            await client.update(REPO, f'INSERT DATA {{ <{EX}u> <{EX}p> "u" }}', notify=Notify(receiver.url("/update"))),
        ]
        await receiver.wait_for(3)
        operations += [
            await client.query(REPO, f"SELECT ?o WHERE {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }} ORDER BY ?o",
                               notify=Notify(receiver.url("/query"), content_type="text/csv")),
            await client.get_graph(REPO, GRAPH, notify=Notify(receiver.url("/get"),
                                                              content_type="application/n-triples")),
        ]
        await receiver.wait_for(5)
        operations.append(await client.delete_graph(REPO, GRAPH, notify=Notify(receiver.url("/delete"))))
        documents = await asyncio.gather(*(operation.wait(timeout=30, poll_interval=0.05)
                                           for operation in operations))
        assert documents[0]["outcome"]["statements_added"] == 3
        assert [d["notification"]["location"] for d in documents] == [
            receiver.url(path) for path in ("/put", "/post", "/update", "/query", "/get", "/delete")]
        assert all(operation.status is TaskStatus.COMPLETED for operation in operations)

    received = {note.path: note for note in await receiver.wait_for(6)}
    assert sorted(received) == ["/delete", "/get", "/post", "/put", "/query", "/update"]
    for operation, path in zip(operations, ["/put", "/post", "/update", "/query", "/get", "/delete"], strict=True):
        assert received[path].headers["Request-ID"] == operation.request_id
    assert received["/put"].headers["Client-Request-ID"] == "put-1"
    assert received["/query"].body.decode().splitlines() == ["o", "a 0", "a 1", "a 2", "b 0"]
    assert_isomorphic(parse_graph(triples("a", 3) + triples("b", 1), "text/turtle"),
                      parse_graph(received["/get"].body, "application/n-triples"))
    assert b"Completed" in received["/delete"].body  # the PROV graph of the outcome


async def test_notify_options_reach_the_receiver(start_server: StartServer, start_receiver: StartReceiver) -> None:
    running, receiver = await notify_setup(start_server, start_receiver)
    async with Client(running.base) as client:
        operation = await client.put_graph(
            REPO, triples("a", 1), GRAPH, content_type="text/turtle",
            notify=Notify(receiver.url(), method="PUT", content_type="application/n-triples", gzip=True,
                          authorization="Bearer for-the-receiver"),
        )
        await operation.wait(timeout=30, poll_interval=0.05)
    [note] = await receiver.wait_for(1)
    assert note.method == "PUT"
    assert note.headers["Authorization"] == "Bearer for-the-receiver"
    assert note.headers["Content-Type"].startswith("application/n-triples")
    assert note.headers["Content-Encoding"] == "gzip"
    assert f"<{GRAPH}>".encode() in note.body  # (aiohttp's receiver has decoded the gzip body)


async def test_a_refused_notify_request_is_an_http_error(client: Client) -> None:
    with pytest.raises(HTTPError) as refused:
        await client.update(REPO, "CLEAR DEFAULT", notify=Notify("http://127.0.0.1:9/nowhere"))
    assert refused.value.status == 400 and "Asynchronous-Location" in (refused.value.detail or "")


# -- monitor mode -----------------------------------------------------------------------------------------------


async def test_monitor_mode_put_statuses_progress_and_result(client: Client, server: Running) -> None:
    operation = await client.put_graph(REPO, triples("m", 5), GRAPH, content_type="text/turtle",
                                       respond_async=True, client_request_id="m-1")
    assert operation.status is TaskStatus.PENDING and operation.request_id
    assert operation.monitor_url == server.url(f"/tasks/{operation.request_id}")
    seen: list[dict[str, Any]] = []
    document = await operation.wait(timeout=30, poll_interval=0.05, progress=seen.append)
    assert seen and seen[-1] is document
    statuses = [d["status"] for d in seen]
    assert statuses[-1] == "completed" and set(statuses) <= {"pending", "running", "completed"}
    assert statuses == sorted(statuses, key=["pending", "running", "completed"].index)  # never backwards
    assert operation.status is TaskStatus.COMPLETED
    assert document["outcome"]["statements_added"] == 5 and document["client_request_id"] == "m-1"

    result = await operation.result()
    assert result.status == 201  # the PUT's own status: it made the graph
    assert await operation.result() is result  # kept: the server hands a result out once
    async with aiohttp.ClientSession() as http, http.get(operation.monitor_url or "") as again:
        assert again.status == 404
    assert await select_names(client, GRAPH) == [f"m {i}" for i in range(5)]


async def test_each_operation_in_monitor_mode(client: Client) -> None:
    put = await client.put_graph(REPO, triples("a", 2), GRAPH, content_type="text/turtle", respond_async=True)
    post = await client.post_graph(REPO, triples("b", 1), DATASET, content_type="text/turtle", respond_async=True)
    update = await client.update(REPO, f'INSERT DATA {{ <{EX}u> <{EX}p> "u" }}', respond_async=True)
    results = []
    for operation in (put, post, update):
        await operation.wait(timeout=30, poll_interval=0.05)
        results.append(await operation.result())
    assert [r.status for r in results] == [201, 201, 204]
    new_graph = results[1].headers["Location"]
    assert await select_names(client, new_graph) == ["b 0"]

    query = await client.query(REPO, f"SELECT ?o WHERE {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }} ORDER BY ?o",
                               respond_async=True)
    get = await client.get_graph(REPO, GRAPH, respond_async=True)
    delete = await client.delete_graph(REPO, new_graph, respond_async=True)
    await asyncio.gather(*(operation.wait(timeout=30, poll_interval=0.05) for operation in (query, get, delete)))
    answers = [await operation.result() for operation in (query, get, delete)]
    assert (answers[0].status, answers[0].content_type) == (200, "application/sparql-results+json")
    assert [row["o"]["value"] for row in answers[0].json()["results"]["bindings"]] == ["a 0", "a 1"]
    assert (answers[1].status, answers[1].content_type) == (200, "text/turtle")
    assert_isomorphic(parse_graph(triples("a", 2), "text/turtle"), parse_graph(answers[1].body, "text/turtle"))
    assert answers[2].status == 204
    assert await select_names(client, new_graph) == []


async def test_monitor_mode_results_come_in_the_accepted_type(client: Client) -> None:
    await client.put_graph(REPO, triples("a", 2), GRAPH, content_type="text/turtle")
    query = await client.query(REPO, f"SELECT ?o WHERE {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }} ORDER BY ?o",
                               accept="text/csv", respond_async=True)
    get = await client.get_graph(REPO, GRAPH, accept="application/n-triples", respond_async=True)
    await asyncio.gather(query.wait(timeout=30, poll_interval=0.05), get.wait(timeout=30, poll_interval=0.05))
    rows, graph = await query.result(), await get.result()
    assert (rows.content_type, rows.text().splitlines()) == ("text/csv", ["o", "a 0", "a 1"])
    assert graph.content_type == "application/n-triples"
    assert_isomorphic(parse_graph(triples("a", 2), "text/turtle"), parse_graph(graph.body, "application/n-triples"))


async def test_wait_n_answers_at_once_when_done_in_time(client: Client, start_server: StartServer) -> None:
    quick = await client.update(REPO, f'INSERT DATA {{ <{EX}w> <{EX}p> "w" }}', respond_async=True, wait=10)
    assert quick.answered_synchronously and quick.monitor_url is None
    assert quick.status is TaskStatus.COMPLETED
    assert (await quick.result()).status == 204
    assert (await quick.wait())["status"] == "completed"  # nothing to poll: no request
    assert await select_names(client) == ["w"]

    idle = await make_server(start_server, worker=False)
    async with Client(idle.base) as other:
        slow = await other.update(REPO, "CLEAR DEFAULT", respond_async=True, wait=0.3)
        assert not slow.answered_synchronously and slow.status is TaskStatus.PENDING
        assert slow.monitor_url == idle.url(f"/tasks/{slow.request_id}")


async def test_notify_and_monitor_mode_on_one_request(start_server: StartServer,
                                                      start_receiver: StartReceiver) -> None:
    running, receiver = await notify_setup(start_server, start_receiver)
    async with Client(running.base) as client:
        operation = await client.post_graph(REPO, triples("a", 2), DATASET, content_type="text/turtle",
                                            notify=Notify(receiver.url()), respond_async=True)
        [note] = await receiver.wait_for(1)
        await operation.wait(timeout=30, poll_interval=0.05)
        result = await operation.result()
    assert note.headers["Request-ID"] == operation.request_id
    assert result.status == 201 and result.headers["Location"].startswith(running.url(f"/{REPO}/service/"))


async def test_a_failed_task_raises_operation_failed_with_its_problem(client: Client) -> None:
    operation = await client.put_graph(REPO, BAD_TURTLE, GRAPH, content_type="text/turtle", respond_async=True)
    seen: list[str] = []
    with pytest.raises(OperationFailed) as failed:
        await operation.wait(timeout=30, poll_interval=0.05, progress=lambda d: seen.append(d["status"]))
    assert failed.value.monitor_url == operation.monitor_url
    assert failed.value.problem["line"] == 2 and failed.value.detail
    assert operation.status is TaskStatus.FAILED and seen[-1] == "failed"
    with pytest.raises(OperationFailed) as again:
        await operation.result()  # the operation's own answer: the 400 problem
    assert again.value.problem["status"] == 400 and again.value.problem["line"] == 2
    assert await count_triples_of(client) == 0


async def test_timeout_pending_result_cancel_and_listing(start_server: StartServer) -> None:
    running = await make_server(start_server, worker=False)  # nothing runs: tasks stay pending
    async with Client(running.base) as client:
        first = await client.put_graph(REPO, triples("a", 1), GRAPH, content_type="text/turtle", respond_async=True)
        second = await client.update(REPO, "CLEAR ALL", respond_async=True)
        with pytest.raises(OperationTimeout) as late:
            await first.wait(timeout=0.3, poll_interval=0.05)
        assert late.value.monitor_url == first.monitor_url and first.status is TaskStatus.PENDING
        with pytest.raises(OperationPending):
            await first.result()

        listed = await client.tasks()
        assert [d["id"] for d in listed] == [second.request_id, first.request_id]  # newest first
        assert [d["id"] for d in await client.tasks(limit=1)] == [second.request_id]
        assert await client.tasks(status="completed") == []
        found = client.task(first.request_id or "")
        assert (await found.poll())["progress"]["queue_position"] is not None

        assert await first.cancel() is TaskStatus.CANCELLED
        document = await first.wait(timeout=5, poll_interval=0.05)
        assert document["status"] == "cancelled" and first.status is TaskStatus.CANCELLED
        assert [d["id"] for d in await client.tasks(status="cancelled")] == [first.request_id]
        with pytest.raises(OperationFailed) as no_result:
            await first.result()
        assert no_result.value.problem["status"] == 409 and first.status is TaskStatus.CANCELLED
        with pytest.raises(HTTPError) as finished:
            await first.cancel()
        assert finished.value.status == 409 and issubclass(finished.value.error_class, server_errors.Conflict)
        with pytest.raises(HTTPError) as unknown:
            await client.task("no-such-task").poll()
        assert unknown.value.status == 404


async def test_cancelling_a_finished_task_is_a_conflict(client: Client) -> None:
    operation = await client.update(REPO, "CLEAR DEFAULT", respond_async=True)
    await operation.wait(timeout=30, poll_interval=0.05)
    with pytest.raises(HTTPError) as conflict:
        await operation.cancel()
    assert conflict.value.status == 409 and conflict.value.problem["status"] == 409
    assert conflict.value.error_class is server_errors.Conflict and conflict.value.detail


async def test_wait_honours_retry_after_and_awaits_async_progress_callbacks(start_server: StartServer) -> None:
    running = await make_server(start_server, worker=False)
    async with Client(running.base) as client:
        operation = await client.update(REPO, "CLEAR DEFAULT", respond_async=True)
        calls: list[str] = []

        async def progress(document: dict[str, Any]) -> None:
            await asyncio.sleep(0)
            calls.append(document["status"])

        with pytest.raises(OperationTimeout):
            await operation.wait(timeout=0.5, poll_interval=0.01, progress=progress)
    # the status said Retry-After: 1, so one poll in half a second, not fifty
    assert calls == ["pending"]
