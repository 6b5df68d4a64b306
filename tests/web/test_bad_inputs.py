"""Inputs that used to be answered 500 (issue 9), sent over real HTTP to a real server: each is a 4xx problem+json
and changes nothing. IRIs from parameters and paths (checked as the engine checks them), whole numbers (ASCII
digits only), names (matched whole: no trailing newline), task ids (UUIDs before they touch Redis), form bodies
that are not UTF-8, `Prefer: wait` that is not a finite number, and what aiohttp's own protocol refuses before
any middleware runs (missing Host, bad header characters, oversize headers, a bad Content-Length). The pure
helpers behind them have unit tests at the end."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from conftest import Running, StartReceiver, StartServer, free_port, wait_for_status
from helpers import PROBLEM_JSON, assert_problem, dump_dataset, raw_exchange
from processes import environment, serving, stop, wait_healthy
from yarl import URL

from graphstore_async import bindings, errors, params
from graphstore_async.repositories import repository_id
from graphstore_async.web.middlewares import protocol_problem
from graphstore_async.web.preferences import parse_prefer

EX = "http://example.org/"
GRAPH = EX + "g"
NT = "application/n-triples"
SRJ = "application/sparql-results+json"
SPARQL_QUERY = "application/sparql-query"
SEED_DEFAULT = f"<{EX}s1> <{EX}p> \"one\" .\n<{EX}s2> <{EX}p> \"two\" .\n"
SEED_NAMED = f"<{EX}s1> <{EX}q> <{EX}s2> .\n"
PROBLEM_TYPE = errors.PROBLEM_BASE

BAD_GRAPH_IRIS = ["http://a/%ZZ", "http://[::1", "http://a/\ue000", "not an iri", "x", "http://a/b\n",
                  "http://a/> } ; DROP ALL ; <http://b"]


@pytest.fixture
async def seeded(server: Running, http: aiohttp.ClientSession) -> Running:
    """The open server's test/repo with two triples in the default graph and one in GRAPH."""
    for target, body in (({"default": ""}, SEED_DEFAULT), ({"graph": GRAPH}, SEED_NAMED)):
        async with http.put(server.repo_url("/service"), params=target, data=body,
                            headers={"Content-Type": NT}) as response:
            assert response.status in (201, 204), await response.text()
    return server


async def seed_dump(http: aiohttp.ClientSession, running: Running) -> list[str]:
    dump = await dump_dataset(http, running)
    assert len(dump) == 3, dump
    return dump


async def no_tasks(http: aiohttp.ClientSession, running: Running) -> None:
    """An open server lists every task to anybody (an administrator): none was queued."""
    async with http.get(running.url("/tasks")) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["tasks"] == []


# -- IRIs from parameters and paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("iri", BAD_GRAPH_IRIS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "POST", "DELETE"])
async def test_graph_parameter_that_is_not_an_iri_is_400_and_changes_nothing(
        seeded: Running, http: aiohttp.ClientSession, method: str, iri: str) -> None:
    before = await seed_dump(http, seeded)
    body = SEED_NAMED.encode() if method in ("PUT", "POST") else None
    async with http.request(method, seeded.repo_url("/service"), params={"graph": iri}, data=body,
                            headers={"Content-Type": NT} if body else {}) as response:
        if method == "HEAD":  # no body to read: the status and the type say it
            assert response.status == 400
            assert response.headers["Content-Type"] == PROBLEM_JSON
        else:
            problem = await assert_problem(response, 400, "graph", "is not an absolute IRI")
            assert problem["parameter"] == "graph", problem
    assert await dump_dataset(http, seeded) == before


@pytest.mark.parametrize("path", ["a%ZZb", "a{b", "a%", "a|b"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_direct_graph_whose_url_is_not_an_iri_is_400_and_changes_nothing(
        seeded: Running, http: aiohttp.ClientSession, method: str, path: str) -> None:
    before = await seed_dump(http, seeded)
    url = URL(seeded.repo_url("/service/") + path, encoded=True)  # sent as written, not re-quoted by the client
    async with http.request(method, url, data=SEED_NAMED.encode() if method == "PUT" else None,
                            headers={"Content-Type": NT}) as response:
        await assert_problem(response, 400, "is not an absolute IRI")
    assert await dump_dataset(http, seeded) == before


@pytest.mark.parametrize("name, value", [
    ("default-graph-uri", "not an iri"), ("named-graph-uri", "x"), ("default-graph-uri", "http://a/%ZZ"),
    ("named-graph-uri", "http://[::1"),
])
@pytest.mark.parametrize("prefer", [None, "respond-async"])
async def test_query_dataset_iri_that_is_not_an_iri_is_400(seeded: Running, http: aiohttp.ClientSession,
                                                           name: str, value: str, prefer: str | None) -> None:
    headers = {"Accept": SRJ, **({"Prefer": prefer} if prefer else {})}
    async with http.get(seeded.repo_url("/sparql"), params={"query": "ASK {}", name: value},
                        headers=headers) as response:
        problem = await assert_problem(response, 400, name, "is not an absolute IRI")
        assert problem["parameter"] == name
    await no_tasks(http, seeded)


@pytest.mark.parametrize("name, value", [
    ("using-graph-uri", "not an iri"), ("using-named-graph-uri", "x"), ("using-graph-uri", "http://a/\ue000"),
    ("using-graph-uri", f"{EX}g> {{ }} ; DROP ALL ; INSERT DATA {{ <{EX}x> <{EX}x> <{EX}x> }} ; CLEAR GRAPH <{EX}g"),
])
@pytest.mark.parametrize("prefer", [None, "respond-async"])
async def test_update_dataset_iri_that_is_not_an_iri_is_400_and_changes_nothing(
        seeded: Running, http: aiohttp.ClientSession, name: str, value: str, prefer: str | None) -> None:
    before = await seed_dump(http, seeded)
    update = f"DELETE {{ ?s ?p ?o }} INSERT {{ <{EX}new> <{EX}p> ?o }} WHERE {{ ?s ?p ?o }}"
    async with http.post(seeded.repo_url("/sparql"), params={name: value}, data=update.encode(),
                         headers={"Content-Type": "application/sparql-update",
                                  **({"Prefer": prefer} if prefer else {})}) as response:
        await assert_problem(response, 400, name, "is not an absolute IRI")
    async with http.post(seeded.repo_url("/sparql"), data={"update": update, name: value}) as response:  # a form
        await assert_problem(response, 400, name, "is not an absolute IRI")
    assert await dump_dataset(http, seeded) == before
    await no_tasks(http, seeded)


async def test_view_binding_that_is_not_an_iri_is_400(seeded: Running, http: aiohttp.ClientSession) -> None:
    await put_view(http, seeded, "people", f"SELECT ?s WHERE {{ ?s <{EX}p> ?o }}")
    for value in ("<http://a/%ZZ>", "<http://[::1>", "<not an iri>", '"x"^^<http://a/%ZZ>'):
        async with http.get(seeded.repo_url("/people"), params={"$s": value}, headers={"Accept": SRJ}) as response:
            await assert_problem(response, 400, "is not an absolute IRI")


# -- whole numbers, and views -----------------------------------------------------------------------------------


async def put_view(http: aiohttp.ClientSession, running: Running, name: str, query: str) -> None:
    async with http.put(running.repo_url("/" + name), data=query.encode(),
                        headers={"Content-Type": SPARQL_QUERY}) as response:
        assert response.status in (201, 204), await response.text()


async def view_names(http: aiohttp.ClientSession, running: Running) -> list[str]:
    async with http.get(running.repo_url("/views")) as response:
        assert response.status == 200, await response.text()
        return [v["name"] for v in (await response.json())["views"]]


@pytest.mark.parametrize("name", ["limit", "offset"])
@pytest.mark.parametrize("value", ["²", "٣", "1_0", "+1", " 1", "1 ", "-1", "", "0x10", "1" * 19, "9" * 5000])
async def test_view_limit_and_offset_take_ascii_digits_only(seeded: Running, http: aiohttp.ClientSession,
                                                            name: str, value: str) -> None:
    await put_view(http, seeded, "people", f"SELECT ?s WHERE {{ ?s <{EX}p> ?o }} ORDER BY ?s")
    async with http.get(seeded.repo_url("/people"), params={name: value}, headers={"Accept": SRJ}) as response:
        problem = await assert_problem(response, 400, name, "whole number")
        assert problem["parameter"] == name
    async with http.post(seeded.repo_url("/people"), data={name: value}, headers={"Accept": SRJ}) as response:
        await assert_problem(response, 400, name, "whole number")
    async with http.get(seeded.repo_url("/people"), params={name: "1"}, headers={"Accept": SRJ}) as response:
        assert response.status == 200, await response.text()  # the view is still there, and digits still work
        assert len((await response.json())["results"]["bindings"]) == 1


@pytest.mark.parametrize("value", ["²", "0", "1001", "1_0"])
async def test_task_listing_limit_takes_ascii_digits_in_range(server: Running, http: aiohttp.ClientSession,
                                                              value: str) -> None:
    async with http.get(server.url("/tasks"), params={"limit": value}) as response:
        await assert_problem(response, 400, "limit")


@pytest.mark.parametrize("query", [
    "DESCRIBE ?s",
    "DESCRIBE ?s WHERE { ?s ?p ?o }",
    f"DESCRIBE ?s FROM <{GRAPH}>",
])
async def test_describe_view_with_a_binding_describes_what_is_bound(seeded: Running, http: aiohttp.ClientSession,
                                                                     query: str) -> None:
    """A DESCRIBE without a WHERE pattern used to fail (StopIteration, 500): the binding goes after it."""
    await put_view(http, seeded, "about", query)
    async with http.get(seeded.repo_url("/about"), params={"$s": f"<{EX}s1>"}, headers={"Accept": NT}) as response:
        text = await response.text()
        assert response.status == 200, text
    lines = sorted(line for line in text.splitlines() if line.strip())
    if "FROM" in query:
        assert lines == [SEED_NAMED.strip()], lines
    else:
        assert lines == [f'<{EX}s1> <{EX}p> "one" .'], lines


# -- names: matched whole ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/x/z%0A", "/x%0A/z", "/x/z%0D%0A", "/x/z%00"])
async def test_repository_name_with_a_trailing_newline_is_400_and_creates_nothing(
        server: Running, http: aiohttp.ClientSession, path: str) -> None:
    root = server.settings.repositories_dir
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    async with http.put(URL(server.url(path), encoded=True)) as response:
        await assert_problem(response, 400, "is not a valid")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert not (root / "x").exists()


async def test_view_name_with_a_trailing_newline_is_400_and_stores_nothing(
        seeded: Running, http: aiohttp.ClientSession) -> None:
    url = URL(seeded.repo_url("/v%0A"), encoded=True)
    async with http.put(url, data=b"SELECT * WHERE { ?s ?p ?o }", headers={"Content-Type": SPARQL_QUERY}) as response:
        await assert_problem(response, 400, "is not a valid view name")
    for method in ("GET", "DELETE"):
        async with http.request(method, url) as response:
            await assert_problem(response, 400, "is not a valid view name")
    assert await view_names(http, seeded) == []
    views = seeded.settings.repositories_dir / "test" / "repo" / "views"
    assert not views.exists() or list(views.iterdir()) == []


# -- form bodies that are not UTF-8 -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"query=ASK%FF%20{}", b"update=INSERT%20DATA%20{%20<urn:x>%20<urn:x>%20'%C3'%20}",
                                  b"query=ASK%20{}&default-graph-uri=http://a/%FF"])
async def test_form_body_whose_percent_encoding_is_not_utf8_is_400_and_changes_nothing(
        seeded: Running, http: aiohttp.ClientSession, body: bytes) -> None:
    before = await seed_dump(http, seeded)
    async with http.post(seeded.repo_url("/sparql"), data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
        await assert_problem(response, 400, "not UTF-8")
    assert await dump_dataset(http, seeded) == before


# Every text body (SPARQL, a view, a view's arguments, a PATCH) is read by one function (web/bodies.read_utf8): a
# declared charset other than UTF-8 is 415 wherever it is sent, in every mode, with nothing changed or queued.
TEXT_BODIES = {
    "sparql-update": ("POST", "/sparql", "application/sparql-update", "INSERT DATA { <urn:a> <urn:b> <urn:c> }"),
    "sparql-query": ("POST", "/sparql", SPARQL_QUERY, "ASK {}"),
    "sparql-form": ("POST", "/sparql", "application/x-www-form-urlencoded", "query=ASK%20%7B%7D"),
    "view-put": ("PUT", "/latin", SPARQL_QUERY, "SELECT * WHERE { ?s ?p ?o }"),
    "patch": ("PATCH", f"/service?graph={GRAPH}", "application/sparql-update",
              "INSERT DATA { <urn:a> <urn:b> <urn:c> }"),
}


@pytest.mark.parametrize("mode", [{}, {"Accept-Asynchronous": "notify"}, {"Prefer": "respond-async"}],
                         ids=["now", "notify", "monitor"])
@pytest.mark.parametrize("entry", list(TEXT_BODIES))
async def test_text_body_in_another_charset_is_415_and_changes_nothing(
        seeded: Running, http: aiohttp.ClientSession, entry: str, mode: dict[str, str]) -> None:
    method, path, media, text = TEXT_BODIES[entry]
    before = await seed_dump(http, seeded)
    async with http.request(method, seeded.repo_url(path), data=text.encode("latin-1"),
                            headers={"Content-Type": f"{media}; charset=ISO-8859-1", **mode}) as response:
        await assert_problem(response, 415, "UTF-8", "iso-8859-1")
    assert await dump_dataset(http, seeded) == before
    async with http.get(seeded.repo_url("/latin"), headers={"Accept": SPARQL_QUERY}) as response:
        assert response.status == 404  # no view was stored
    await no_tasks(http, seeded)


# -- task ids: UUIDs before they touch Redis --------------------------------------------------------------------


async def test_task_path_that_is_not_a_task_id_is_404_even_when_it_names_a_redis_key(
        start_server: StartServer, start_receiver: StartReceiver, http: aiohttp.ClientSession) -> None:
    """`<id>:deliveries` is the task's list of delivery attempts in Redis: read as a task hash it was WRONGTYPE."""
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port,))
    async with http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    async with http.put(running.repo_url("/service?default"), data=SEED_DEFAULT.encode(),
                        headers={"Content-Type": NT, "Accept-Asynchronous": "notify",
                                 "Asynchronous-Location": receiver.url()}) as response:
        assert response.status == 202, await response.text()
        task_id = response.headers["Request-ID"]
    document = await wait_for_status(http, running, task_id)
    assert document["notification"]["attempts"], document  # the deliveries list exists in Redis
    for name in (f"{task_id}:deliveries", f"{task_id}:heartbeat", task_id.upper(), f"{{{task_id}}}",
                 task_id.replace("-", ""), f"urn:uuid:{task_id}", f"{task_id}%0A", "not-a-uuid", "*"):
        base = URL(running.url("/tasks/") + quote(name, safe="%:{}*"), encoded=True)
        for method, suffix in (("GET", ""), ("GET", "/status"), ("GET", "/events"), ("DELETE", "")):
            async with http.request(method, URL(str(base) + suffix, encoded=True)) as response:
                problem = await assert_problem(response, 404)  # braces are not even routed: "nothing is at"
                assert problem["type"] in (PROBLEM_TYPE + "task-not-found", PROBLEM_TYPE + "not-found"), problem
    after = await wait_for_status(http, running, task_id)  # the task itself is untouched
    assert (after["status"], len(after["notification"]["attempts"])) == ("completed", 1), after


# -- Prefer: wait ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wait", ["nan", "inf", "-inf", "1e309", "1e3", "NaN", "Infinity", "٣", "1_0", "0x10"])
async def test_wait_that_is_not_a_finite_number_of_seconds_is_400_and_queues_nothing(
        seeded: Running, http: aiohttp.ClientSession, wait: str) -> None:
    before = await seed_dump(http, seeded)
    async with http.put(seeded.repo_url("/service"), params={"graph": EX + "new"}, data=SEED_NAMED.encode(),
                        headers={"Content-Type": NT, "Prefer": f"respond-async, wait={wait}"}) as response:
        problem = await assert_problem(response, 400, "wait")
        assert problem["header"] == "Prefer", problem
    assert await dump_dataset(http, seeded) == before
    await no_tasks(http, seeded)


async def test_every_wait_is_capped_by_max_wait_s(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(worker=False, max_wait_s=0.5)  # nothing runs: the task would stay pending
    async with http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    started = time.monotonic()
    async with http.get(running.repo_url("/sparql"), params={"query": "ASK {}"},
                        headers={"Prefer": "respond-async, wait=100000"}) as response:
        assert response.status == 202, await response.text()
    assert time.monotonic() - started < 10  # 0.5 s asked of the server, with room for a slow machine


# -- what aiohttp's protocol refuses before any middleware runs -------------------------------------------------


def raw_problem(answer: bytes, status: int) -> dict[str, Any]:
    """A raw HTTP answer that is a problem+json with this status; its body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split()[1] == str(status), answer[:500]
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == PROBLEM_JSON, headers
    assert int(headers["content-length"]) == len(body), headers
    problem: dict[str, Any] = json.loads(body)
    assert problem["status"] == status and problem["detail"], problem
    assert problem["type"].startswith(PROBLEM_TYPE), problem
    return problem


PUT_HEAD = "PUT /test/repo/service?default HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/n-triples\r\n"
LOW_LEVEL = {
    # name: (request head, status, problem slug)
    "missing-host": ("GET /health HTTP/1.1\r\n", 400, "bad-request"),
    "control-character-in-a-value": ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x01b\r\n", 400, "bad-request"),
    "space-in-a-name": ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX A: b\r\n", 400, "bad-request"),
    "bad-method": ("G@T /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", 400, "bad-request"),
    "bad-version": ("GET /health HTTP/9.9\r\nHost: 127.0.0.1\r\n", 400, "bad-request"),
    "oversize-header": ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: " + "a" * 20_000 + "\r\n", 431,
                        "headers-too-large"),
    "too-many-headers": ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         + "".join(f"X-{i}: a\r\n" for i in range(200)), 431, "headers-too-large"),
    "oversize-request-line": ("GET /health?" + "a" * 10_000 + " HTTP/1.1\r\nHost: 127.0.0.1\r\n", 414,
                              "uri-too-long"),
    "content-length-overflow": (PUT_HEAD + "Content-Length: 99999999999999999999999999\r\n", 400, "bad-request"),
    "content-length-not-a-number": (PUT_HEAD + "Content-Length: abc\r\n", 400, "bad-request"),
    "content-length-negative": (PUT_HEAD + "Content-Length: -1\r\n", 400, "bad-request"),
    "content-length-twice": (PUT_HEAD + "Content-Length: 1\r\nContent-Length: 2\r\n", 400, "bad-request"),
}


@pytest.mark.parametrize("name", list(LOW_LEVEL))
async def test_what_aiohttp_refuses_itself_is_a_problem_too(seeded: Running, http: aiohttp.ClientSession,
                                                            name: str) -> None:
    before = await seed_dump(http, seeded)
    head, status, slug = LOW_LEVEL[name]
    answer = await raw_exchange(seeded.base, head + "Connection: close\r\n\r\n")
    problem = raw_problem(answer, status)
    assert problem["type"] == PROBLEM_TYPE + slug, problem
    assert await dump_dataset(http, seeded) == before


def test_serve_answers_what_aiohttp_refuses_with_a_problem(tmp_path: Path, redis_url: str) -> None:
    """The console script's server (web.run_app) makes its connections as the application says."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    args: list[str | Path] = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", tmp_path / "data",
                              "--redis-url", redis_url]
    env = environment(GSA_REDIS_PREFIX=f"gsa-test-{uuid.uuid4().hex[:12]}")
    with serving(args, cwd=tmp_path, env=env, log=log) as process:
        wait_healthy(process, base, log)
        for name in ("oversize-header", "control-character-in-a-value", "missing-host"):
            head, status, slug = LOW_LEVEL[name]
            answer = _raw_blocking(base, head + "Connection: close\r\n\r\n")
            assert raw_problem(answer, status)["type"] == PROBLEM_TYPE + slug
        stop(process, log)


def _raw_blocking(url: str, head: str) -> bytes:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- the pure parts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["http://a/b", "urn:x", "http://[::1]/", "http://a/é", "http://a/%7B",
                                  "http://a/\u00a0", "file:///etc/passwd"])
def test_absolute_iri_accepts_what_the_engine_accepts(text: str) -> None:
    assert params.absolute_iri(text) == text


@pytest.mark.parametrize("text", [*BAD_GRAPH_IRIS, "", "rel/x", "/x", "http://a/{b", "http://a/<", "http://a/\x7f",
                                  'http://a/"', "http://a/b|c", "http://a/b^c", "http://a/b`c", "http://a/b\\c"])
def test_absolute_iri_refuses_what_the_engine_refuses(text: str) -> None:
    with pytest.raises(errors.BadRequest, match="is not an absolute IRI") as raised:
        params.absolute_iri(text, what="graph")
    assert raised.value.status == 400 and raised.value.extensions["parameter"] == "graph"


@pytest.mark.parametrize("text, value", [("0", 0), ("7", 7), ("0010", 10), ("9" * 18, 10**18 - 1)])
def test_whole_number_takes_ascii_digits(text: str, value: int) -> None:
    assert params.whole_number(text, what="limit") == value


@pytest.mark.parametrize("text", ["²", "٣", "１", "1_0", "+1", "-1", " 1", "1\n", "", "1.0", "1e3", "9" * 19])
def test_whole_number_refuses_anything_else(text: str) -> None:
    with pytest.raises(errors.BadRequest, match="whole number"):
        params.whole_number(text, what="limit")


def test_task_id_takes_a_canonical_uuid_only() -> None:
    task_id = str(uuid.uuid4())
    assert params.task_id(task_id) == task_id
    for text in (task_id.upper(), f"{{{task_id}}}", task_id.replace("-", ""), f"urn:uuid:{task_id}",
                 f"{task_id}:deliveries", f"{task_id}\n", "", "x"):
        with pytest.raises(errors.TaskNotFound):
            params.task_id(text)


@pytest.mark.parametrize("value, seconds", [("wait=0", 0.0), ("wait=10", 10.0), ("wait=0.25", 0.25),
                                            ('wait="3"', 3.0), ("wait=" + "9" * 300, 10.0**300 - 1)])
def test_prefer_wait_takes_finite_seconds(value: str, seconds: float) -> None:
    assert parse_prefer([value]).wait_s == pytest.approx(seconds)


@pytest.mark.parametrize("wait", ["nan", "inf", "-inf", "1e309", "1e3", "٣", "", ".5", "5.", "9" * 400])
def test_prefer_wait_refuses_what_is_not_a_finite_number(wait: str) -> None:
    with pytest.raises(errors.BadRequest, match="wait"):
        parse_prefer([f"respond-async, wait={wait}"])


def test_describe_bindings_go_after_a_query_without_a_pattern() -> None:
    for query in ("DESCRIBE ?s", "describe ?s ", f"DESCRIBE ?s FROM <{GRAPH}>"):
        applied = bindings.apply(query, bindings.parse_arguments({"$s": f"<{EX}s1>"}, query))
        assert applied == f"{query}\n VALUES (?s) {{ (<{EX}s1>) }} ", applied
    query = "DESCRIBE ?s WHERE { ?s ?p ?o }"
    applied = bindings.apply(query, bindings.parse_arguments({"$s": f"<{EX}s1>"}, query))
    assert applied == f"DESCRIBE ?s WHERE {{ VALUES (?s) {{ (<{EX}s1>) }}  ?s ?p ?o }}", applied


def test_binding_values_are_matched_whole() -> None:
    """With `match` and `$` a trailing newline passed as part of a language tag or a number."""
    with pytest.raises(errors.BadRequest, match="is not a language tag"):
        bindings.term('"x"@en\n')
    for value in ("5\n", "2.5\n", "1e3\n", "٣"):  # not numbers: plain strings
        assert bindings.term(value) == bindings.literal(value)


@pytest.mark.parametrize("account, name", [("x", "z\n"), ("x\n", "z"), ("x", "z\r\n"), ("x", "")])
def test_repository_names_are_matched_whole(account: str, name: str) -> None:
    with pytest.raises(errors.BadRequest, match="is not a valid"):
        repository_id(account, name)


@pytest.mark.parametrize("exc, status", [
    (LineTooLong(b"aaa...", 16384), errors.HeadersTooLarge),
    (LineTooLong(b"/aaa...", 8190), errors.URITooLong),
    (BadHttpMessage("Too many headers received"), errors.HeadersTooLarge),
    (BadHttpMessage("Missing 'Host' header in request."), errors.BadRequest),
    (None, errors.GraphStoreError),
])
def test_protocol_problem_says_which(exc: BaseException | None, status: type[errors.GraphStoreError]) -> None:
    problem = protocol_problem(500 if exc is None else 400, exc, max_line_size=8190, max_field_size=16384)
    assert type(problem) is status, problem
    assert problem.detail


def test_protocol_problem_with_equal_limits_is_about_a_header() -> None:
    problem = protocol_problem(400, LineTooLong(b"aaa...", 8190), max_line_size=8190, max_field_size=8190)
    assert isinstance(problem, errors.HeadersTooLarge)
