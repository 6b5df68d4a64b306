"""Anonymous tasks on a server with accounts (issue 9): every anonymous client is the account "anonymous", so an
anonymous task is reached through its monitor URL alone — never listed (GET /tasks is 401 for an anonymous
caller), and a Request-ID another anonymous client used before neither hands over that client's task nor names
it in a 409. Accounts keep their Request-ID conflicts; an open server (everybody an administrator) is as before.
"""

from __future__ import annotations

import aiohttp
import pytest
from conftest import Running, StartServer, wait_for_status
from helpers import assert_problem

from graphstore_async.auth import ANONYMOUS, Principal
from graphstore_async.tasks.idempotency import fingerprint, scope
from tests.tasks.monitoring import (
    ACCOUNTS,
    ROOT_TOKEN,
    SRJ,
    TEST_TOKEN,
    bearer,
    fetch,
    problem_of,
    put_graph,
    status_of,
    submit_monitored,
)
from tests.tasks.notifying import GRAPH, stored_tasks, triples

PUBLIC = ACCOUNTS + '\n[repositories."test/repo"]\npublic_read = true\n'
FIRST = f"SELECT ?s WHERE {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }}"
SECOND = f"ASK {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }}"


@pytest.fixture
async def public(start_server: StartServer, http: aiohttp.ClientSession) -> Running:
    """A server with accounts whose test/repo (owned by "test", three triples in GRAPH) anybody may read."""
    running = await start_server(PUBLIC)
    async with http.put(running.repo_url(), headers=bearer(TEST_TOKEN)) as response:
        assert response.status == 201, await response.text()
    await put_graph(http, running, triples("seed", 3), headers=bearer(TEST_TOKEN))
    return running


async def query_task(http: aiohttp.ClientSession, running: Running, query: str,
                     headers: dict[str, str] | None = None, account: str = ANONYMOUS) -> str:
    return await submit_monitored(http, running, "GET", "/sparql", params={"query": query},
                                  headers={"Accept": SRJ, **(headers or {})}, account=account)


async def test_anonymous_callers_cannot_list_tasks_but_reach_one_by_its_monitor_url(
        public: Running, http: aiohttp.ClientSession) -> None:
    task_id = await query_task(http, public, FIRST)
    async with http.get(public.url("/tasks")) as response:
        text = await response.text()
        await assert_problem(response, 401, "listing tasks needs credentials")
        assert "Bearer" in response.headers["WWW-Authenticate"]
    assert task_id not in text
    for status in ("completed", "pending"):
        async with http.get(public.url("/tasks"), params={"status": status}) as response:
            await assert_problem(response, 401)
    document = await wait_for_status(http, public, task_id)  # the monitor URL is the capability
    assert (document["id"], document["status"], document["user"]) == (task_id, "completed", public.url("/anonymous"))
    async with http.get(public.url(f"/tasks/{task_id}")) as response:
        assert response.status == 200, await response.text()
        assert response.headers["AsyncResult"] == "200"
        assert len((await response.json(content_type=None))["results"]["bindings"]) == 3
    async with http.get(public.url("/tasks"), headers=bearer(ROOT_TOKEN)) as response:  # an admin sees it
        assert response.status == 200, await response.text()
        assert [t["id"] for t in (await response.json())["tasks"]] == [task_id]
    async with http.get(public.url("/tasks"), headers=bearer(TEST_TOKEN)) as response:  # not the owner's
        assert (await response.json())["tasks"] == []


async def test_a_request_id_of_another_anonymous_client_is_a_new_task_and_names_nothing(
        public: Running, http: aiohttp.ClientSession) -> None:
    key = {"Request-ID": "job-1"}
    first = await query_task(http, public, FIRST, key)
    again = await query_task(http, public, FIRST, key)  # the same request again: a retry, the same task
    assert again == first
    answer = await fetch(http, "GET", public.repo_url("/sparql"), params={"query": SECOND},
                         headers={**key, "Prefer": "respond-async", "Accept": SRJ})
    assert answer.status == 202, answer
    second = answer.headers["Request-ID"]
    assert second != first and first not in answer.body.decode() and first not in str(answer.headers)
    assert (await wait_for_status(http, public, first))["status"] == "completed"
    assert (await wait_for_status(http, public, second))["status"] == "completed"
    assert await stored_tasks(public) == (2, 0)
    second_result = await fetch(http, "GET", public.url(f"/tasks/{second}"))
    assert second_result.json() == {"head": {}, "boolean": True}, second_result  # the second query's own answer


async def test_an_accounts_request_id_still_conflicts(public: Running, http: aiohttp.ClientSession) -> None:
    key = {"Request-ID": "job-1", **bearer(TEST_TOKEN)}
    first = await query_task(http, public, FIRST, key, account="test")
    other = await fetch(http, "GET", public.repo_url("/sparql"), params={"query": SECOND},
                        headers={**key, "Prefer": "respond-async", "Accept": SRJ})
    assert first in problem_of(other, 409, "conflict")["detail"]  # its own task: nothing of anybody else's
    assert await query_task(http, public, FIRST, {"Request-ID": "job-1"}) != first  # anonymous: its own key


async def test_an_anonymous_task_is_not_another_accounts(public: Running, http: aiohttp.ClientSession) -> None:
    task_id = await query_task(http, public, FIRST)
    await wait_for_status(http, public, task_id)
    problem_of(await fetch(http, "GET", public.url(f"/tasks/{task_id}/status"), headers=bearer(TEST_TOKEN)), 404,
               "task-not-found")
    assert (await status_of(http, public, task_id, bearer(ROOT_TOKEN)))["id"] == task_id


async def test_an_open_server_lists_and_conflicts_as_before(start_server: StartServer,
                                                            http: aiohttp.ClientSession) -> None:
    running = await start_server()
    async with http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    await put_graph(http, running, triples("seed", 3))
    first = await query_task(http, running, FIRST, {"Request-ID": "job-1"})
    other = await fetch(http, "GET", running.repo_url("/sparql"), params={"query": SECOND},
                        headers={"Request-ID": "job-1", "Prefer": "respond-async", "Accept": SRJ})
    assert first in problem_of(other, 409, "conflict")["detail"]
    async with http.get(running.url("/tasks")) as response:
        assert response.status == 200, await response.text()
        assert [t["id"] for t in (await response.json())["tasks"]] == [first]


def test_an_anonymous_idempotency_scope_is_the_requests_own() -> None:
    one, two = fingerprint("GET", "/a/b/sparql?query=1", []), fingerprint("GET", "/a/b/sparql?query=2", [])
    anonymous = Principal(ANONYMOUS)
    assert scope(anonymous, one) != scope(anonymous, two)
    assert scope(Principal("alice"), one) == scope(Principal("alice"), two) == "alice"
    everybody = Principal(ANONYMOUS, admin=True)  # an open server
    assert scope(everybody, one) == scope(everybody, two) == ANONYMOUS
