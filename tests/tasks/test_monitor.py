"""Monitor mode over real HTTP, with the in-process worker on a real Redis: every Prefer combination
(respond-async, wait=N, callback; with notify mode too), the monitor (202 while pending, 200 with the
operation's own response and AsyncResult, read once, 410 after retention, 404 to strangers), and a client's
Request-ID as an idempotency key."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest
from conftest import Running, StartReceiver, StartServer, wait_for_status
from helpers import assert_isomorphic, count_triples, dump_dataset, parse_graph

from tests.tasks.monitoring import (
    ACCOUNTS,
    BOB_TOKEN,
    NT,
    ROOT_TOKEN,
    SELECT,
    SRJ,
    TEST_TOKEN,
    TURTLE,
    bearer,
    fetch,
    problem_of,
    put_graph,
    read_monitor,
    select_json,
    status_of,
    submit_monitored,
    wait_until,
)
from tests.tasks.notifying import EX, GRAPH, QUIET_S, create_repository, header, stored_tasks, triples

UPDATE = f'INSERT DATA {{ GRAPH <{GRAPH}> {{ <{EX}u> <{EX}p> "u" }} }}'


@pytest.fixture
async def server(start_server: StartServer, http: aiohttp.ClientSession) -> Running:
    """An open server with test/repo, whose graph GRAPH holds triples("seed", 3)."""
    running = await start_server()
    await create_repository(http, running)
    await put_graph(http, running, triples("seed", 3))
    return running


# -- Prefer: respond-async on every operation ----------------------------------------------------------------------

OPERATIONS = {
    # name: (method, path, params, body, content type, AsyncResult, result content type)
    "gsp-put": ("PUT", "/service", {"graph": GRAPH}, triples("new", 2), TURTLE, 204, None),
    "gsp-post": ("POST", "/service", {"graph": GRAPH}, triples("more", 2), NT, 204, None),
    "gsp-delete": ("DELETE", "/service", {"graph": GRAPH}, None, None, 204, None),
    "gsp-get": ("GET", "/service", {"graph": GRAPH}, None, None, 200, TURTLE),
    "query": ("GET", "/sparql", {"query": SELECT}, None, None, 200, SRJ),
    "update": ("POST", "/sparql", {}, UPDATE.encode(), "application/sparql-update", 204, None),
}
EXPECTED_GRAPH = {"gsp-put": triples("new", 2), "gsp-post": triples("seed", 3) + triples("more", 2),
                  "gsp-get": triples("seed", 3), "query": triples("seed", 3),
                  "update": triples("seed", 3) + f'<{EX}u> <{EX}p> "u" .\n'.encode()}


@pytest.mark.parametrize("name", OPERATIONS)
async def test_respond_async_on_every_operation(server: Running, http: aiohttp.ClientSession, name: str) -> None:
    method, path, params, body, content_type, result_status, result_type = OPERATIONS[name]
    expected_result = await select_json(http, server) if name == "query" else None
    task_id = await submit_monitored(http, server, method, path, params=params, body=body,
                                     content_type=content_type)
    document = await wait_for_status(http, server, task_id)
    assert document["status"] == "completed", document
    assert document["operation"]["method"] == method, document
    answer = await read_monitor(http, server, task_id)
    assert answer.status == 200, answer
    assert answer.headers["AsyncResult"] == str(result_status), answer.headers
    if result_type is None:
        assert answer.body == b"", answer
    else:
        assert answer.content_type == result_type, answer.headers
    if name == "query":
        assert answer.json() == expected_result
    if name == "gsp-get":
        assert_isomorphic(parse_graph(triples("seed", 3), TURTLE), parse_graph(answer.body, TURTLE))
    async with http.get(server.repo_url("/service"), params={"graph": GRAPH}, headers={"Accept": NT}) as response:
        if name == "gsp-delete":
            assert response.status == 404, await response.text()
        else:
            assert response.status == 200, await response.text()
            assert_isomorphic(parse_graph(EXPECTED_GRAPH[name], NT), parse_graph(await response.read(), NT))


# -- Prefer: wait=N --------------------------------------------------------------------------------------------------


async def test_wait_gives_the_ordinary_response_of_a_new_graph_put(server: Running,
                                                                   http: aiohttp.ClientSession) -> None:
    other = EX + "graph/two"
    async with http.put(server.repo_url("/service"), params={"graph": other}, data=triples("w", 2),
                        headers={"Content-Type": TURTLE, "Prefer": "respond-async, wait=10"}) as response:
        assert response.status == 201, await response.text()
        assert await response.read() == b""
        assert "AsyncResult" not in response.headers, response.headers
    async with http.get(server.repo_url("/service"), params={"graph": other}, headers={"Accept": NT}) as response:
        assert response.status == 200
        assert_isomorphic(parse_graph(triples("w", 2), NT), parse_graph(await response.read(), NT))


async def test_wait_gives_the_ordinary_response_of_a_query(server: Running, http: aiohttp.ClientSession) -> None:
    expected = await select_json(http, server)
    async with http.get(server.repo_url("/sparql"), params={"query": SELECT},
                        headers={"Prefer": "respond-async, wait=10"}) as response:
        text = await response.text()
        assert response.status == 200, text
        assert response.content_type == SRJ, response.headers
        assert "AsyncResult" not in response.headers, response.headers
    assert json.loads(text) == expected
    assert len(expected["results"]["bindings"]) == 3


@pytest.mark.parametrize("mode", ["wait", "monitor"])
async def test_the_result_honours_accept_like_the_synchronous_request(server: Running, http: aiohttp.ClientSession,
                                                                      mode: str) -> None:
    """`wait=N` answers the normal synchronous response, and the monitor the operation's own response: for a
    query, in the type that Accept asks for (Asynchronous-Content-Type is notify mode's, and is not given)."""
    async with http.get(server.repo_url("/sparql"), params={"query": SELECT},
                        headers={"Accept": "text/csv"}) as response:
        assert response.status == 200 and response.content_type == "text/csv", response.headers
        synchronous = await response.read()
    if mode == "wait":
        answer = await fetch(http, "GET", server.repo_url("/sparql"), params={"query": SELECT},
                             headers={"Accept": "text/csv", "Prefer": "respond-async, wait=10"})
    else:
        task_id = await submit_monitored(http, server, "GET", "/sparql", params={"query": SELECT},
                                         headers={"Accept": "text/csv"})
        await wait_for_status(http, server, task_id)
        answer = await read_monitor(http, server, task_id)
        assert answer.headers["AsyncResult"] == "200", answer
    assert (answer.status, answer.content_type) == (200, "text/csv"), answer
    assert answer.body == synchronous


async def test_wait_that_runs_out_answers_202(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(worker=False)  # nothing runs: the task stays pending
    await create_repository(http, running)
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH},
                                     body=triples("w", 1), content_type=TURTLE, prefer="respond-async, wait=1")
    assert (await status_of(http, running, task_id))["status"] == "pending"


# -- Prefer: callback; notify and monitor together --------------------------------------------------------------


@pytest.mark.parametrize("prefer", ["callback", "respond-async, callback"])
async def test_callback_gets_one_get_when_the_task_ends(start_server: StartServer, start_receiver: StartReceiver,
                                                        http: aiohttp.ClientSession, prefer: str) -> None:
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port,))
    await create_repository(http, running)
    applied = tuple(item.strip() for item in prefer.split(","))
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH},
                                     body=triples("c", 2), content_type=TURTLE, applied=applied,
                                     prefer=f'{prefer}; url="{receiver.url("/done?x=1")}"')
    await receiver.wait_for(1)
    await asyncio.sleep(QUIET_S)
    assert len(receiver.received) == 1, [r.headers for r in receiver.received]
    call = receiver.received[0]
    assert (call.method, call.path, call.body) == ("GET", "/done?x=1", b"")
    assert header(call, "Request-ID") == task_id
    document = await status_of(http, running, task_id)
    assert document["status"] == "completed", document  # a callback goes out once the task has ended
    assert document["callback"]["url"] == receiver.url("/done?x=1"), document
    assert document["notification"]["location"] is None, document
    document = await wait_until(http, running, task_id, lambda d: d["callback"]["delivery"] is not None)
    assert document["callback"]["delivery"] == "delivered", document
    assert [a.get("url") for a in document["callback"]["attempts"]] == [receiver.url("/done?x=1")], document


async def test_notify_and_monitor_on_one_request(start_server: StartServer, start_receiver: StartReceiver,
                                                 http: aiohttp.ClientSession) -> None:
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port,))
    await create_repository(http, running)
    await put_graph(http, running, triples("both", 2))
    expected = await select_json(http, running)
    task_id = await submit_monitored(http, running, "POST", "/sparql", body=SELECT.encode(),
                                     content_type="application/sparql-query",
                                     headers={"Accept-Asynchronous": "notify",
                                              "Asynchronous-Location": receiver.url()})
    document = await wait_for_status(http, running, task_id)
    assert document["status"] == "completed" and document["notification"]["delivery"] == "delivered", document
    await asyncio.sleep(QUIET_S)
    assert len(receiver.received) == 1, [r.headers for r in receiver.received]
    assert header(receiver.received[0], "Request-ID") == task_id
    assert json.loads(receiver.received[0].body) == expected
    answer = await read_monitor(http, running, task_id)
    assert (answer.status, answer.headers["AsyncResult"], answer.content_type) == (200, "200", SRJ), answer
    assert answer.json() == expected
    assert await stored_tasks(running) == (1, 0)


# -- the monitor ---------------------------------------------------------------------------------------------------


async def test_monitor_of_a_pending_task_is_202(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(worker=False)
    await create_repository(http, running)
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH},
                                     body=triples("p", 1), content_type=TURTLE)
    for _ in range(2):  # reading a pending task's monitor uses up nothing
        answer = await read_monitor(http, running, task_id)
        assert answer.status == 202, answer
        assert answer.headers["Location"] == running.url(f"/tasks/{task_id}")
        assert int(answer.headers["Retry-After"]) >= 1, answer.headers
        assert "AsyncResult" not in answer.headers
        assert (answer.json()["id"], answer.json()["status"]) == (task_id, "pending"), answer


async def test_monitor_of_a_new_graph_put_is_read_once(server: Running, http: aiohttp.ClientSession) -> None:
    task_id = await submit_monitored(http, server, "PUT", "/service", params={"graph": EX + "graph/new"},
                                     body=triples("n", 2), content_type=TURTLE)
    await wait_for_status(http, server, task_id)
    answer = await read_monitor(http, server, task_id)
    assert (answer.status, answer.headers["AsyncResult"], answer.body) == (200, "201", b""), answer
    problem_of(await read_monitor(http, server, task_id), 404)
    assert (await status_of(http, server, task_id))["status"] == "completed"  # the status stays readable


async def test_monitor_of_a_failed_import_gives_its_problem(server: Running, http: aiohttp.ClientSession) -> None:
    dump = await dump_dataset(http, server)
    body = triples("ok", 2) + f"<{EX}bad> <{EX}p> @@@ .\n".encode()
    task_id = await submit_monitored(http, server, "PUT", "/service", params={"graph": GRAPH}, body=body,
                                     content_type=TURTLE)
    assert (await wait_for_status(http, server, task_id))["status"] == "failed"
    answer = await read_monitor(http, server, task_id)
    assert (answer.status, answer.headers["AsyncResult"]) == (200, "400"), answer
    problem = problem_of(answer, 200, "syntax-error", problem_status=400)  # the operation's status is in AsyncResult
    assert (problem["line"], problem["column"]) == (3, 50), problem
    assert await dump_dataset(http, server) == dump


async def test_expired_task_is_410(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(task_retention_s=1)
    await create_repository(http, running)
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH},
                                     body=triples("e", 1), content_type=TURTLE)
    assert (await wait_for_status(http, running, task_id))["status"] == "completed"
    await asyncio.sleep(2.5)
    problem_of(await read_monitor(http, running, task_id), 410, "task-expired")
    problem_of(await fetch(http, "GET", running.url(f"/tasks/{task_id}/status")), 410, "task-expired")


async def test_unknown_task_is_404(server: Running, http: aiohttp.ClientSession) -> None:
    unknown = server.url(f"/tasks/{uuid.uuid4()}")
    for method, url in (("GET", unknown), ("GET", unknown + "/status"), ("GET", unknown + "/events"),
                        ("DELETE", unknown)):
        problem_of(await fetch(http, method, url), 404, "task-not-found")


async def test_another_accounts_task_is_404_but_an_admin_sees_it(start_server: StartServer,
                                                                  http: aiohttp.ClientSession) -> None:
    running = await start_server(ACCOUNTS, worker=False)  # the task stays pending: a cancel would show
    async with http.put(running.repo_url(), headers=bearer(TEST_TOKEN)) as response:
        assert response.status == 201, await response.text()
    task_id = await submit_monitored(http, running, "PUT", "/service", params={"graph": GRAPH},
                                     body=triples("mine", 1), content_type=TURTLE, headers=bearer(TEST_TOKEN),
                                     account="test")
    monitor = running.url(f"/tasks/{task_id}")
    never = running.url(f"/tasks/{uuid.uuid4()}")
    for stranger in (bearer(BOB_TOKEN), {}):  # bob may write test/repo, but the task is not his
        for method, path in (("GET", ""), ("GET", "/status"), ("GET", "/events"), ("DELETE", "")):
            theirs = problem_of(await fetch(http, method, monitor + path, headers=stranger), 404, "task-not-found")
            nobodys = problem_of(await fetch(http, method, never + path, headers=stranger), 404, "task-not-found")
            assert theirs["title"] == nobodys["title"]
    assert (await status_of(http, running, task_id, bearer(TEST_TOKEN)))["status"] == "pending"
    document = await status_of(http, running, task_id, bearer(ROOT_TOKEN))
    assert (document["id"], document["user"]) == (task_id, running.url("/test")), document
    assert document["request"]["headers"]["Authorization"] == "***", document
    assert (await read_monitor(http, running, task_id, bearer(ROOT_TOKEN))).status == 202
    async with http.delete(monitor, headers=bearer(ROOT_TOKEN)) as response:
        assert response.status == 204, await response.text()
    assert (await status_of(http, running, task_id, bearer(TEST_TOKEN)))["status"] == "cancelled"


# -- a client's Request-ID: an idempotency key ----------------------------------------------------------------------


async def test_the_same_request_id_twice_is_one_task(server: Running, http: aiohttp.ClientSession) -> None:
    body = f'_:b <{EX}p> "once" .\n'.encode()  # a blank node: a second run would add a second statement
    headers = {"Request-ID": "import-42"}
    first = await submit_monitored(http, server, "POST", "/service?default", body=body, content_type=NT,
                                   headers=headers)
    assert (await wait_for_status(http, server, first))["status"] == "completed"
    async with http.post(server.repo_url("/service?default"), data=body,
                         headers={**headers, "Content-Type": NT, "Prefer": "respond-async"}) as response:
        assert response.status == 202, await response.text()
        assert response.headers["Request-ID"] == first
        assert response.headers["Location"] == server.url(f"/tasks/{first}")
        assert (await response.json())["id"] == first
    await asyncio.sleep(QUIET_S)
    assert len(await dump_dataset(http, server)) == 3 + 1  # the seed graph, and one statement in the default graph
    assert await count_triples(http, server) == 1
    async with http.get(server.url("/tasks")) as response:
        assert response.status == 200
        assert [t["id"] for t in (await response.json())["tasks"]] == [first]
    assert await stored_tasks(server) == (1, 0)
    other = await fetch(http, "POST", server.repo_url("/service?default"), data=f'_:b <{EX}p> "other" .\n'.encode(),
                        headers={**headers, "Content-Type": NT, "Prefer": "respond-async"})
    assert "import-42" in problem_of(other, 409, "conflict")["detail"], other
    assert await stored_tasks(server) == (1, 0)
