"""PATCH on the graph store (RFC 5789, SPARQL 1.1 Graph Store Protocol): a SPARQL update applied to the target graph,
which is the default graph of its operations, over real HTTP as curl or a GSP client sends it — now, in monitor
mode and in notify mode. What it should leave is what rdflib leaves when it runs the same update on a graph of its
own (a second implementation of SPARQL Update), and nothing else in the repository changes; an update that names
another graph, or a graph management operation, is 422; any other body type is 415 (with Accept-Patch); a syntax
error anywhere changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import rdflib
from conftest import Running, StartReceiver, StartServer, wait_for_status
from helpers import assert_isomorphic, assert_problem, dump_dataset

from graphstore_async.auth import new_token, token_entry
from tests.tasks.monitoring import problem_of, read_monitor, submit_monitored
from tests.tasks.notifying import activity, only_notification, server_and_receiver, submit, without_times
from tests.web.quads import assert_graphs, graphs

EX = "http://example.org/"
GRAPH = EX + "graph/one"
OTHER = EX + "graph/other"
NEW = EX + "graph/new"
UPDATE = "application/sparql-update"
NT = "application/n-triples"
PREFIX = f"PREFIX ex: <{EX}>\n"
SEED = {  # graph (None: the default graph) -> N-Triples
    GRAPH: f'<{EX}s> <{EX}p> "one" .\n<{EX}s> <{EX}p> "two" .\n<{EX}t> <{EX}p> "three" .\n',
    None: f'<{EX}s> <{EX}p> "one" .\n<{EX}d> <{EX}p> "default" .\n',
    OTHER: f'<{EX}s> <{EX}p> "one" .\n<{EX}s> <{EX}p> "two" .\n',
}
UPDATES = {  # each is also run by rdflib on the target graph's seed, as the expected result
    "insert_data": 'INSERT DATA { ex:s ex:p "new" . _:b ex:p ex:s }',
    "delete_data": 'DELETE DATA { ex:s ex:p "one" }',
    "delete_where": "DELETE WHERE { ex:s ?p ?o }",
    "modify": 'DELETE { ?s ex:p ?o } INSERT { ?s ex:q ?o } WHERE { ?s ex:p ?o FILTER (?o != "two") }',
    "insert_where": "INSERT { ?s ex:copy ?o } WHERE { ?s ex:p ?o }",
    "delete_template": 'DELETE { ?s ex:p "two" } WHERE { ?s ex:p "two" }',
    "several": ('INSERT DATA { ex:u ex:p "u" } ;\n'
                'DELETE WHERE { ex:t ?p ?o } ;\ninsert { ?s ex:seen true } where { ?s ex:p "u" } ;'),
    "words_in_text": ('INSERT DATA { ex:s ex:p "a } GRAPH { <x> } WITH" . '
                      'ex:s ex:p """USING { GRAPH }""" } # GRAPH { in a comment\n'),
}
REFUSED = {  # an update that would reach past its graph: 422, nothing changed
    "graph_in_template": "INSERT { GRAPH ex:other { ?s ?p ?o } } WHERE { ?s ?p ?o }",
    "graph_in_where": "INSERT { ?s ex:q ?o } WHERE { GRAPH ?g { ?s ?p ?o } }",
    "graph_in_data": 'INSERT DATA { GRAPH ex:other { ex:s ex:p "x" } }',
    "graph_in_delete_where": "DELETE WHERE { GRAPH ex:other { ?s ?p ?o } }",
    "with": "WITH ex:other DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    "using": "DELETE { ?s ?p ?o } USING ex:other WHERE { ?s ?p ?o }",
    "clear": "CLEAR DEFAULT",
    "drop": "DROP GRAPH ex:other",
    "copy": "COPY DEFAULT TO ex:other",
    "create": "CREATE GRAPH ex:new",
    "after_a_good_one": 'INSERT DATA { ex:s ex:p "fine" } ; DROP ALL',
}


def parse(text: str | bytes, media: str = NT) -> rdflib.Graph:
    return rdflib.Graph().parse(data=text, format={NT: "nt", "text/turtle": "turtle"}[media])


async def seed(http: aiohttp.ClientSession, running: Running) -> None:
    for graph, body in SEED.items():
        params = {"default": ""} if graph is None else {"graph": graph}
        async with http.put(running.repo_url("/service"), params=params, data=body,
                            headers={"Content-Type": NT}) as response:
            assert response.status in (201, 204), await response.text()


def expected_after(graph: str | None, update: str) -> rdflib.Graph:
    expected = parse(SEED[graph])
    expected.update(PREFIX + update)
    return expected


async def patch(http: aiohttp.ClientSession, url: str, text: str, content_type: str | None = UPDATE,
                headers: dict[str, str] | None = None, **kwargs: Any) -> aiohttp.ClientResponse:
    """A PATCH as curl sends it: `curl -X PATCH -H 'Content-Type: application/sparql-update' --data-binary @u.ru`."""
    sent = {**({"Content-Type": content_type} if content_type else {}), **(headers or {})}
    return await http.patch(url, data=text.encode(), headers=sent, skip_auto_headers=["Content-Type"], **kwargs)


@pytest.fixture
async def seeded(server: Running, http: aiohttp.ClientSession) -> Running:
    await seed(http, server)
    return server


@pytest.mark.parametrize("target", [GRAPH, None], ids=["named", "default"])
@pytest.mark.parametrize("name", list(UPDATES))
async def test_patch_applies_the_update_to_its_graph_only(seeded: Running, http: aiohttp.ClientSession,
                                                          name: str, target: str | None) -> None:
    params = {"graph": target} if target else {"default": ""}
    async with await patch(http, seeded.repo_url("/service"), PREFIX + UPDATES[name], params=params) as response:
        assert response.status == 204, await response.text()
    expected = {graph: parse(body) for graph, body in SEED.items()}
    expected[target] = expected_after(target, UPDATES[name])
    assert_graphs(await graphs(http, seeded), expected)


async def test_patch_of_a_directly_identified_graph(server: Running, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service/people/ada")
    async with http.put(url, data=SEED[GRAPH], headers={"Content-Type": NT}) as response:
        assert response.status == 201, await response.text()
    async with await patch(http, url, PREFIX + UPDATES["modify"]) as response:
        assert response.status == 204, await response.text()
    assert_graphs(await graphs(http, server), {url: expected_after(GRAPH, UPDATES["modify"])})


@pytest.mark.parametrize("name", list(REFUSED))
async def test_patch_that_names_another_graph_is_422_and_changes_nothing(seeded: Running, http: aiohttp.ClientSession,
                                                                        name: str) -> None:
    before = await dump_dataset(http, seeded)
    for mode in ({}, {"Prefer": "respond-async"}):  # refused before anything is queued
        async with await patch(http, seeded.repo_url("/service"), PREFIX + REFUSED[name], params={"graph": GRAPH},
                               headers=mode) as response:
            problem = await assert_problem(response, 422, "PATCH")
        assert problem["type"].endswith("/unprocessable-patch"), problem
    assert await dump_dataset(http, seeded) == before


async def test_patch_with_load_is_refused(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(allow_load=True)
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    await seed(http, running)
    before = await dump_dataset(http, running)
    async with await patch(http, running.repo_url("/service"), f"LOAD <{EX}data.ttl>",
                           params={"graph": GRAPH}) as response:
        await assert_problem(response, 422, "LOAD")
    assert await dump_dataset(http, running) == before


@pytest.mark.parametrize(("content_type", "says"), [
    ("text/turtle", "text/turtle"), (None, "without Content-Type"),
    ("application/x-www-form-urlencoded", "x-www-form-urlencoded"), ("application/sparql-query", "sparql-query"),
])
async def test_patch_of_another_type_is_415_with_accept_patch(seeded: Running, http: aiohttp.ClientSession,
                                                              content_type: str | None, says: str) -> None:
    before = await dump_dataset(http, seeded)
    async with await patch(http, seeded.repo_url("/service"), f'<{EX}s> <{EX}p> "x" .', content_type,
                           params={"graph": GRAPH}) as response:
        await assert_problem(response, 415, says, UPDATE)
        assert response.headers["Accept-Patch"] == UPDATE
    assert await dump_dataset(http, seeded) == before


@pytest.mark.parametrize("mode", ["sync", "monitor"])
async def test_patch_with_a_syntax_error_on_its_last_line_changes_nothing(seeded: Running,
                                                                          http: aiohttp.ClientSession,
                                                                          mode: str) -> None:
    before = await dump_dataset(http, seeded)
    text = 'INSERT DATA { ex:s ex:p "first" } ;\nDELETE WHERE { ex:s ?p ?o } ;\nINSERT DATA { ex:s ex:p }'
    headers = {"Prefer": "respond-async"} if mode == "monitor" else {}
    async with await patch(http, seeded.repo_url("/service"), PREFIX + text, params={"graph": GRAPH},
                           headers=headers) as response:
        problem = await assert_problem(response, 400, "line 4")
    assert problem["line"] == 4 and problem["type"].endswith("/syntax-error"), problem
    assert await dump_dataset(http, seeded) == before


async def test_patch_of_a_graph_that_does_not_exist(seeded: Running, http: aiohttp.ClientSession) -> None:
    """404 unless the update creates the graph (it inserts into it): then 201, as a POST that creates one."""
    before = await dump_dataset(http, seeded)
    for update in ('DELETE DATA { ex:s ex:p "one" }', "INSERT { ?s ex:q ?o } WHERE { ?s ?p ?o }",
                   "DELETE WHERE { ?s ?p ?o }"):
        async with await patch(http, seeded.repo_url("/service"), PREFIX + update, params={"graph": NEW}) as response:
            await assert_problem(response, 404, NEW, "did not create it")
    assert await dump_dataset(http, seeded) == before
    async with await patch(http, seeded.repo_url("/service"), PREFIX + UPDATES["insert_data"],
                           params={"graph": NEW}) as response:
        assert response.status == 201, await response.text()
    async with http.get(seeded.repo_url("/service"), params={"graph": NEW}, headers={"Accept": NT}) as response:
        assert response.status == 200
        assert_isomorphic(parse(f'<{EX}s> <{EX}p> "new" .\n_:b <{EX}p> <{EX}s> .\n'), parse(await response.read()))


async def test_patch_of_the_whole_dataset_is_400(seeded: Running, http: aiohttp.ClientSession) -> None:
    before = await dump_dataset(http, seeded)
    async with await patch(http, seeded.repo_url("/service"), PREFIX + UPDATES["delete_where"]) as response:
        await assert_problem(response, 400, "name the graph", "/sparql")
    assert await dump_dataset(http, seeded) == before


@pytest.mark.parametrize(("graph", "status"), [(GRAPH, 204), (NEW, 201)])
async def test_patch_in_monitor_mode(seeded: Running, http: aiohttp.ClientSession, graph: str, status: int) -> None:
    update = UPDATES["insert_data"] if graph == NEW else UPDATES["modify"]
    task_id = await submit_monitored(http, seeded, "PATCH", "/service", params={"graph": graph},
                                     body=(PREFIX + update).encode(), content_type=UPDATE)
    document = await wait_for_status(http, seeded, task_id)
    assert document["status"] == "completed", document
    assert (document["operation"]["kind"], document["operation"]["method"]) == ("graph-patch", "PATCH"), document
    answer = await read_monitor(http, seeded, task_id)
    assert (answer.status, answer.headers["AsyncResult"], answer.body) == (200, str(status), b""), answer
    expected = {name: parse(body) for name, body in SEED.items()}
    expected[graph] = expected_after(GRAPH, update) if graph == GRAPH else parse(
        f'<{EX}s> <{EX}p> "new" .\n_:b <{EX}p> <{EX}s> .\n')
    assert_graphs(await graphs(http, seeded), expected)


async def test_patch_in_monitor_mode_of_a_missing_graph_fails_with_404(seeded: Running,
                                                                       http: aiohttp.ClientSession) -> None:
    before = await dump_dataset(http, seeded)
    task_id = await submit_monitored(http, seeded, "PATCH", "/service", params={"graph": NEW},
                                     body=(PREFIX + UPDATES["delete_data"]).encode(), content_type=UPDATE)
    assert (await wait_for_status(http, seeded, task_id))["status"] == "failed"
    answer = await read_monitor(http, seeded, task_id)
    assert answer.headers["AsyncResult"] == "404", answer
    problem_of(answer, 200, "graph-not-found", problem_status=404)
    assert await dump_dataset(http, seeded) == before


async def test_patch_in_notify_mode(start_server: StartServer, start_receiver: StartReceiver,
                                    http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    await seed(http, running)
    started = datetime.now(UTC)
    task_id = await submit(http, running, "PATCH", "/service", params={"graph": GRAPH}, location=receiver.url(),
                           body=(PREFIX + UPDATES["delete_where"]).encode(), content_type=UPDATE,
                           client_id="patch-1")
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    expected = activity(running, task_id, "PATCH", status_code=204, client_id="patch-1", graph=GRAPH)
    assert_isomorphic(expected, without_times(rdflib.Graph().parse(data=note.body, format="turtle"), task_id,
                                              started))
    want = {name: parse(body) for name, body in SEED.items()}
    want[GRAPH] = expected_after(GRAPH, UPDATES["delete_where"])
    assert_graphs(await graphs(http, running), want)


ALICE, BOB, CAROL = new_token(), new_token(), new_token()
ACCOUNTS = """
[accounts.test]

[accounts.bob]
grants = { "test/repo" = "read" }

[accounts.carol]
grants = { "test/repo" = "write" }
""" + "".join(token_entry(account, token) for account, token in (("test", ALICE), ("bob", BOB), ("carol", CAROL)))


async def test_patch_needs_the_write_grant_as_post_does(start_server: StartServer,
                                                        http: aiohttp.ClientSession) -> None:
    running = await start_server(config=ACCOUNTS)
    owner = {"Authorization": f"Bearer {ALICE}"}
    async with http.put(running.repo_url(), headers=owner) as response:
        assert response.status == 201, await response.text()
    async with http.put(running.repo_url("/service"), params={"graph": GRAPH}, data=SEED[GRAPH],
                        headers={**owner, "Content-Type": NT}) as response:
        assert response.status == 201, await response.text()
    url = running.repo_url("/service")
    for caller, status in ((None, 401), (BOB, 403)):
        for mode in ({}, {"Prefer": "respond-async"}):
            headers = {**mode, **({"Authorization": f"Bearer {caller}"} if caller else {})}
            async with await patch(http, url, PREFIX + UPDATES["delete_where"], params={"graph": GRAPH},
                                   headers=headers) as response:
                await assert_problem(response, status)
    async with http.get(url, params={"graph": GRAPH}, headers={**owner, "Accept": NT}) as response:
        assert_isomorphic(parse(SEED[GRAPH]), parse(await response.read()))
    async with await patch(http, url, PREFIX + UPDATES["delete_where"], params={"graph": GRAPH},
                           headers={"Authorization": f"Bearer {CAROL}"}) as response:
        assert response.status == 204, await response.text()
    async with http.get(url, params={"graph": GRAPH}, headers={**owner, "Accept": NT}) as response:
        assert_isomorphic(expected_after(GRAPH, UPDATES["delete_where"]), parse(await response.read()))
