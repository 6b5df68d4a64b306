"""The graph store on the whole dataset, as Dydra, Fuseki and Oxigraph serve it, over real HTTP as curl or Jena's GSP
client sends it: a POST of quads (TriG, N-Quads) without a graph merges them into their own graphs (a POST of
triples still makes a new graph); a GET without a graph in a triples format answers the union of every graph as
one graph; quads PUT or POSTed to one graph all go into it; quads sent as N-Triples (or TriG as Turtle) are refused
with a problem that says what the body looks like. Synchronously and as tasks, all or nothing."""

from __future__ import annotations

import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import rdflib
from conftest import Running, StartReceiver, StartServer, wait_for_status
from helpers import assert_isomorphic, assert_problem, dump_dataset, media_type

from graphstore_async.operations import Body, Kind, Operation, execute
from graphstore_async.store.embedded import EmbeddedStore
from graphstore_async.targets import DATASET
from tests.tasks.monitoring import read_monitor, submit_monitored
from tests.tasks.notifying import only_notification, server_and_receiver, submit
from tests.web.quads import Graphs, assert_graphs, graphs, parse_dataset

EX = "http://example.org/"
GRAPH = EX + "graph/one"
OTHER = EX + "graph/other"
G1 = EX + "graph/posted"
NT, NQ, TRIG, TURTLE = "application/n-triples", "application/n-quads", "application/trig", "text/turtle"
# What Jena's GSP client asks for (WebContent.defaultGraphAcceptHeader, defaultDatasetAcceptHeader)
JENA_GRAPH_ACCEPT = ("text/turtle,application/n-triples;q=0.9,application/ld+json;q=0.8,application/rdf+xml;q=0.7,"
                     "*/*;q=0.3")
JENA_DATASET_ACCEPT = "application/trig,application/n-quads;q=0.9,application/ld+json;q=0.8,*/*;q=0.3"
RDFLIB = {TURTLE: "turtle", NT: "nt", "application/ld+json": "json-ld", "application/rdf+xml": "xml"}

SEED = {  # graph (None: the default graph) -> N-Triples
    None: f'<{EX}d> <{EX}p> "default" .\n<{EX}shared> <{EX}p> "everywhere" .\n',
    GRAPH: f'<{EX}s> <{EX}p> "one" .\n<{EX}s> <{EX}q> _:b .\n_:b <{EX}p> "blank in one" .\n'
           f'<{EX}shared> <{EX}p> "everywhere" .\n',
    OTHER: f'<{EX}o> <{EX}p> "other" .\n<{EX}shared> <{EX}p> "everywhere" .\n',
}
POSTED = {  # quads a client sends: into the default graph, a new graph, and one that exists
    None: f'<{EX}x> <{EX}p> "posted to default" .\n',
    G1: f'<{EX}x> <{EX}p> "posted to a new graph" .\n_:c <{EX}p> "blank posted" .\n',
    GRAPH: f'<{EX}s> <{EX}p> "posted to one" .\n',
}


def parse(text: str | bytes, media: str = NT) -> rdflib.Graph:
    with warnings.catch_warnings():  # rdflib's JSON-LD parser warns about its own use of ConjunctiveGraph
        warnings.simplefilter("ignore", DeprecationWarning)
        return rdflib.Graph().parse(data=text, format=RDFLIB[media_type(media)])


def seeded_graphs() -> Graphs:
    return {name: parse(body) for name, body in SEED.items()}


def union(*dicts: Graphs) -> Graphs:
    merged: Graphs = {}
    for graphs_ in dicts:
        for name, graph in graphs_.items():
            merged[name] = merged.get(name, rdflib.Graph()) + graph
    return merged


def flattened(graphs_: Graphs) -> rdflib.Graph:
    everything = rdflib.Graph()
    for graph in graphs_.values():
        everything += graph
    return everything


def body_of(graphs_: dict[str | None, str], fmt: str) -> bytes:
    """The graphs as N-Quads or TriG lines (their triples are N-Triples, which both formats take)."""
    lines = []
    for name, text in graphs_.items():
        for line in text.splitlines():
            triple = line.removesuffix(" .")
            if name is None:
                lines.append(f"{triple} .")
            else:
                lines.append(f"{triple} <{name}> ." if fmt == NQ else f"GRAPH <{name}> {{ {triple} }}")
    return ("\n".join(lines) + "\n").encode()


async def seed(http: aiohttp.ClientSession, running: Running) -> None:
    async with http.put(running.repo_url("/service"), data=body_of(SEED, NQ),
                        headers={"Content-Type": NQ}) as response:
        assert response.status == 204, await response.text()
    assert_graphs(await graphs(http, running), seeded_graphs())


@pytest.fixture
async def seeded(server: Running, http: aiohttp.ClientSession) -> Running:
    await seed(http, server)
    return server


# -- POST of quads to the dataset: a merge ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sync", "monitor"])
@pytest.mark.parametrize("fmt", [TRIG, NQ])
async def test_post_quads_to_the_dataset_merges_them_into_their_graphs(seeded: Running, http: aiohttp.ClientSession,
                                                                       fmt: str, mode: str) -> None:
    body = body_of(POSTED, fmt)
    if mode == "sync":  # curl -X POST …/service -H 'Content-Type: application/trig' --data-binary @d.trig
        async with http.post(seeded.repo_url("/service"), data=body, headers={"Content-Type": fmt}) as response:
            assert response.status == 204, await response.text()
            assert "Location" not in response.headers
    else:
        task_id = await submit_monitored(http, seeded, "POST", "/service", body=body, content_type=fmt)
        assert (await wait_for_status(http, seeded, task_id))["status"] == "completed"
        answer = await read_monitor(http, seeded, task_id)
        assert (answer.headers["AsyncResult"], answer.body) == ("204", b""), answer
    assert_graphs(await graphs(http, seeded), union(seeded_graphs(), {k: parse(v) for k, v in POSTED.items()}))


async def test_post_quads_to_the_dataset_in_notify_mode(start_server: StartServer, start_receiver: StartReceiver,
                                                        http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    await seed(http, running)
    task_id = await submit(http, running, "POST", "/service", location=receiver.url(), body=body_of(POSTED, TRIG),
                           content_type=TRIG)
    document, _ = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed" and document["outcome"]["status"] == 204, document
    assert document["outcome"]["statements_added"] == 4 and document["outcome"]["location"] is None, document
    assert_graphs(await graphs(http, running), union(seeded_graphs(), {k: parse(v) for k, v in POSTED.items()}))


@pytest.mark.parametrize("transactional_load_bytes", [1_000_000, 10], ids=["transaction", "batches"])
async def test_a_dataset_merge_run_again_by_its_task_adds_nothing(tmp_path: Path,
                                                                  transactional_load_bytes: int) -> None:
    """A task's job may run twice (arq is at-least-once): a merge names its blank nodes after the task, so the second
    run adds statements that are all there already — blank nodes in any graph, and one naming a graph."""
    path = tmp_path / "posted.trig"
    path.write_text(f'_:a <{EX}p> _:b .\n<{G1}> {{ _:a <{EX}p> "in g1" . _:c <{EX}q> _:a }}\n'
                    f'_:g {{ _:a <{EX}p> "in a blank graph" }}\n')
    pool = ThreadPoolExecutor(2)
    store = EmbeddedStore(tmp_path / "store", pool, transactional_load_bytes=transactional_load_bytes)
    op = Operation(Kind.GRAPH_POST, "test/repo", DATASET, bodies=(Body(str(path), TRIG),))
    try:
        first = await execute(op, store, blank_node_scope="task1")
        assert (first.status, first.statements_added) == (204, 4)
        assert await store.size() == 4
        await execute(op, store, blank_node_scope="task1")
        assert await store.size() == 4
        await execute(op, store, blank_node_scope="task2")  # another task's merge: new blank nodes
        assert await store.size() == 8
        await execute(op, store)  # a request run now: new blank nodes too
        assert await store.size() == 12
    finally:
        await store.close()
        pool.shutdown()


async def test_post_triples_to_the_dataset_still_creates_a_graph(seeded: Running, http: aiohttp.ClientSession) -> None:
    async with http.post(seeded.repo_url("/service"), data=POSTED[G1], headers={"Content-Type": NT}) as response:
        assert response.status == 201, await response.text()
        location = response.headers["Location"]
    assert location.startswith(seeded.repo_url("/service/"))
    assert_graphs(await graphs(http, seeded), {**seeded_graphs(), location: parse(POSTED[G1])})


async def test_post_multipart_to_the_dataset(seeded: Running, http: aiohttp.ClientSession) -> None:
    """Every part quads: a merge; quads and triples mixed: 400, nothing changed."""
    def form(*parts: tuple[bytes, str]) -> aiohttp.FormData:
        data = aiohttp.FormData()
        for number, (body, fmt) in enumerate(parts):
            data.add_field(f"part{number}", io.BytesIO(body), content_type=fmt, filename=f"part{number}")
        return data

    before = await dump_dataset(http, seeded)
    mixed = form((body_of(POSTED, TRIG), TRIG), (POSTED[G1].encode(), NT))
    async with http.post(seeded.repo_url("/service"), data=mixed) as response:
        await assert_problem(response, 400, "quads", "triples", "both")
    assert await dump_dataset(http, seeded) == before
    quads = form((body_of({None: POSTED[None]}, NQ), NQ), (body_of({G1: POSTED[G1], GRAPH: POSTED[GRAPH]}, TRIG), TRIG))
    async with http.post(seeded.repo_url("/service"), data=quads) as response:
        assert response.status == 204, await response.text()
    assert_graphs(await graphs(http, seeded), union(seeded_graphs(), {k: parse(v) for k, v in POSTED.items()}))


# -- GET of the dataset in a triples format: the union of its graphs ----------------------------------------------

@pytest.mark.parametrize(("accept", "answered"), [
    (TURTLE, TURTLE), (NT, NT), ("application/ld+json", "application/ld+json"),
    ("application/rdf+xml", "application/rdf+xml"), (JENA_GRAPH_ACCEPT, TURTLE), ("text/*", TURTLE),
])
async def test_get_dataset_in_a_triples_format_is_the_union_of_its_graphs(seeded: Running,
                                                                         http: aiohttp.ClientSession, accept: str,
                                                                         answered: str) -> None:
    async with http.get(seeded.repo_url("/service"), headers={"Accept": accept}) as response:
        assert response.status == 200, await response.text()
        assert media_type(response.headers["Content-Type"]) == answered
        body = await response.read()
    assert_isomorphic(flattened(seeded_graphs()), parse(body, answered))


@pytest.mark.parametrize(("accept", "answered"), [(JENA_DATASET_ACCEPT, TRIG), (None, NQ), ("*/*", NQ), (NQ, NQ),
                                                  (f"{TURTLE};q=0.5, {TRIG}", TRIG)])
async def test_get_dataset_in_a_quads_format_is_the_dataset(seeded: Running, http: aiohttp.ClientSession,
                                                            accept: str | None, answered: str) -> None:
    async with http.get(seeded.repo_url("/service"), headers={"Accept": accept} if accept else {}) as response:
        assert response.status == 200, await response.text()
        assert media_type(response.headers["Content-Type"]) == answered
        body = await response.read()
    assert_graphs(parse_dataset(body, "trig" if answered == TRIG else "nquads"), seeded_graphs())


async def test_union_of_graphs_writes_a_triple_held_by_several_graphs_once(seeded: Running,
                                                                            http: aiohttp.ClientSession) -> None:
    """The engine drops repeats it remembers (up to 2**20 triples written; far more than here)."""
    async with http.get(seeded.repo_url("/service"), headers={"Accept": NT}) as response:
        lines = (await response.text()).splitlines()
    shared = f'<{EX}shared> <{EX}p> "everywhere" .'
    assert lines.count(shared) == 1, lines
    assert len(lines) == len(flattened(seeded_graphs())) == 6, lines


async def test_head_of_the_dataset_in_a_triples_format(seeded: Running, http: aiohttp.ClientSession) -> None:
    async with http.head(seeded.repo_url("/service"), headers={"Accept": TURTLE}) as response:
        assert response.status == 200
        assert media_type(response.headers["Content-Type"]) == TURTLE


async def test_get_dataset_as_triples_in_monitor_mode(seeded: Running, http: aiohttp.ClientSession) -> None:
    task_id = await submit_monitored(http, seeded, "GET", "/service", headers={"Accept": TURTLE})
    assert (await wait_for_status(http, seeded, task_id))["status"] == "completed"
    answer = await read_monitor(http, seeded, task_id)
    assert (answer.headers["AsyncResult"], answer.content_type) == ("200", TURTLE), answer
    assert_isomorphic(flattened(seeded_graphs()), parse(answer.body, TURTLE))


async def test_get_dataset_as_triples_in_notify_mode(start_server: StartServer, start_receiver: StartReceiver,
                                                     http: aiohttp.ClientSession) -> None:
    running, receiver = await server_and_receiver(start_server, start_receiver, http)
    await seed(http, running)
    task_id = await submit(http, running, "GET", "/service", location=receiver.url(),
                           headers={"Asynchronous-Content-Type": NT})
    document, note = await only_notification(http, running, task_id, receiver)
    assert document["status"] == "completed", document
    assert_isomorphic(flattened(seeded_graphs()), parse(note.body, NT))


# -- quads sent to one graph: all of them go into it ----------------------------------------------------------------

def flattened_body() -> rdflib.Graph:
    return flattened({k: parse(v) for k, v in POSTED.items()})


@pytest.mark.parametrize("transactional_load_bytes", [8 * 1024**2, 10], ids=["transaction", "batches"])
@pytest.mark.parametrize("fmt", [TRIG, NQ])
@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_quads_sent_to_a_graph_all_go_into_it(start_server: StartServer, http: aiohttp.ClientSession,
                                                    method: str, fmt: str, transactional_load_bytes: int) -> None:
    running = await start_server(transactional_load_bytes=transactional_load_bytes)
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    await seed(http, running)
    async with http.request(method, running.repo_url("/service"), params={"graph": GRAPH},
                            data=body_of(POSTED, fmt), headers={"Content-Type": fmt}) as response:
        assert response.status == 204, await response.text()
    expected = seeded_graphs()
    expected[GRAPH] = flattened_body() + (expected[GRAPH] if method == "POST" else rdflib.Graph())
    assert_graphs(await graphs(http, running), expected)  # the body's other graphs are not made


@pytest.mark.parametrize("mode", ["sync", "monitor"])
async def test_quads_sent_to_the_default_graph_all_go_into_it(seeded: Running, http: aiohttp.ClientSession,
                                                              mode: str) -> None:
    body = body_of(POSTED, TRIG)
    if mode == "sync":
        async with http.post(seeded.repo_url("/service?default"), data=body,
                             headers={"Content-Type": TRIG}) as response:
            assert response.status == 204, await response.text()
    else:
        task_id = await submit_monitored(http, seeded, "POST", "/service", params={"default": ""}, body=body,
                                         content_type=TRIG)
        assert (await wait_for_status(http, seeded, task_id))["status"] == "completed"
    expected = seeded_graphs()
    expected[None] += flattened_body()
    assert_graphs(await graphs(http, seeded), expected)


# -- quads sent as triples: the problem says what the body looks like ---------------------------------------------

QUADS_AS_TRIPLES = {
    "nquads_as_ntriples": (NT, f'<{EX}a> <{EX}b> "c" .\n<{EX}a> <{EX}b> "d" <{GRAPH}> .\n', "N-Quads", NQ),
    "trig_as_turtle": (TURTLE, f"@prefix ex: <{EX}> .\nex:a ex:b ex:c .\nex:g {{ ex:a ex:b ex:d }}\n", "TriG", TRIG),
}
TARGETS: dict[str, tuple[str, dict[str, str]]] = {
    "put_graph": ("PUT", {"graph": GRAPH}), "post_graph": ("POST", {"graph": GRAPH}),
    "put_dataset": ("PUT", {}), "post_default": ("POST", {"default": ""}),
}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("case", list(QUADS_AS_TRIPLES))
async def test_quads_sent_as_triples_say_what_the_body_looks_like(seeded: Running, http: aiohttp.ClientSession,
                                                                  case: str, target: str) -> None:
    content_type, body, looks_like, media = QUADS_AS_TRIPLES[case]
    method, params = TARGETS[target]
    before = await dump_dataset(http, seeded)
    async with http.request(method, seeded.repo_url("/service"), params=params, data=body.encode(),
                            headers={"Content-Type": content_type}) as response:
        problem = await assert_problem(response, 400, f"looks like {looks_like}", media)
    assert problem["type"].endswith("/syntax-error") and problem["line"] in (2, 3), problem
    assert await dump_dataset(http, seeded) == before


@pytest.mark.parametrize(("content_type", "body"), [
    (NT, f'<{EX}a> <{EX}b> "c" .\n<{EX}a> <{EX}b> .\n'),
    (TURTLE, f"@prefix ex: <{EX}> .\nex:a ex:b ex:c .\nex:g {{ ex:a ex:b }}\n"),
])
async def test_a_triples_body_that_is_no_quads_either_gets_no_hint(seeded: Running, http: aiohttp.ClientSession,
                                                                   content_type: str, body: str) -> None:
    before = await dump_dataset(http, seeded)
    async with http.put(seeded.repo_url("/service"), params={"graph": GRAPH}, data=body.encode(),
                        headers={"Content-Type": content_type}) as response:
        problem: dict[str, Any] = await assert_problem(response, 400, "does not parse")
    assert "looks like" not in problem["detail"], problem
    assert await dump_dataset(http, seeded) == before
