"""Graph Store Protocol over real HTTP: formats in and out, the verbs, gzip, bad inputs that change nothing."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import rdflib
from helpers import (
    RDFLIB_FORMATS,
    assert_isomorphic,
    assert_problem,
    count_triples,
    dump_dataset,
    media_type,
    parse_graph,
    raw_exchange,
    select,
    serialize_graph,
)

EX = "http://example.org/"
GRAPH = EX + "graph/one"
RICH_TURTLE = """@prefix ex: <http://example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
ex:alice a ex:Person ;
  ex:name "Alice"@en , "Alicia"@es ;
  ex:age "42"^^xsd:integer ;
  ex:born "1990-05-17"^^xsd:date ;
  ex:note "line one\\nline \\"two\\" \\u00FCn\\u00EFcode" ;
  ex:tag "x"^^ex:Custom ;
  ex:knows _:bob ;
  ex:address [ ex:street "1 Main St" ; ex:city ex:Springfield ; ex:geo [ ex:zone "north" ] ] .
_:bob ex:name "Bob" ; ex:knows ex:alice , _:bob .
"""
RICH = rdflib.Graph().parse(data=RICH_TURTLE, format="turtle")
SMALL_TURTLE = b"<http://example.org/s> <http://example.org/p> <http://example.org/o> .\n"
SMALL = rdflib.Graph().parse(data=SMALL_TURTLE, format="turtle")
MEDIA_TYPES = list(RDFLIB_FORMATS)


def turtle(*lines: str) -> bytes:
    return "".join(f"<{EX}{s}> <{EX}{p}> <{EX}{o}> .\n" for s, p, o in (line.split() for line in lines)).encode()


async def put(http: aiohttp.ClientSession, url: str, body: Any, content_type: str = "text/turtle",
              **kwargs: Any) -> int:
    headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
    async with http.put(url, data=body, headers=headers, **kwargs) as response:
        text = await response.text()
        assert response.status in (201, 204), text
        return response.status


async def get_graph(http: aiohttp.ClientSession, url: str, accept: str = "text/turtle") -> rdflib.Graph:
    async with http.get(url, headers={"Accept": accept}) as response:
        text = await response.text()
        assert response.status == 200, text
        assert media_type(response.headers["Content-Type"]) == accept
    return parse_graph(text, accept)


async def seed(http: aiohttp.ClientSession, server: Any) -> list[str]:
    """Data in the default graph and in GRAPH; the dump of the whole dataset."""
    await put(http, server.repo_url("/service?default"), turtle("d p o"))
    await put(http, server.repo_url("/service"), SMALL_TURTLE, params={"graph": GRAPH})
    dump = await dump_dataset(http, server)
    assert len(dump) == 2, dump
    return dump


@pytest.mark.parametrize("accept", MEDIA_TYPES)
@pytest.mark.parametrize("sent", MEDIA_TYPES)
async def test_graph_round_trip_in_every_format(server: Any, http: aiohttp.ClientSession, sent: str,
                                                accept: str) -> None:
    url = server.repo_url("/service?graph=" + GRAPH)
    assert await put(http, url, serialize_graph(RICH, sent), sent) == 201
    assert_isomorphic(RICH, await get_graph(http, url, accept))


async def test_put_graph_new_then_existing_replaces(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service?graph=" + GRAPH)
    assert await put(http, url, RICH_TURTLE) == 201
    assert_isomorphic(RICH, await get_graph(http, url))
    assert await put(http, url, SMALL_TURTLE) == 204
    assert_isomorphic(SMALL, await get_graph(http, url))


async def test_post_graph_merges_into_existing(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service?graph=" + GRAPH)
    async with http.post(url, data=SMALL_TURTLE, headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 201, await response.text()
    async with http.post(url, data=RICH_TURTLE, headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 204, await response.text()
    assert_isomorphic(RICH + SMALL, await get_graph(http, url))


async def test_post_service_without_graph_creates_graph_at_location(server: Any, http: aiohttp.ClientSession) -> None:
    locations = []
    for _ in range(2):
        async with http.post(server.repo_url("/service"), data=RICH_TURTLE,
                             headers={"Content-Type": "text/turtle"}) as response:
            assert response.status == 201, await response.text()
            locations.append(response.headers["Location"])
    assert locations[0] != locations[1]
    for location in locations:
        assert urlsplit(location).scheme == "http" and location.startswith(server.repo_url("/service/")), location
        assert_isomorphic(RICH, await get_graph(http, location))


async def test_delete_graph_then_get_and_delete_are_404(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service?graph=" + GRAPH)
    await put(http, url, SMALL_TURTLE)
    async with http.delete(url) as response:
        assert response.status == 204, await response.text()
    async with http.get(url) as response:
        await assert_problem(response, 404, GRAPH)
    async with http.delete(url) as response:
        await assert_problem(response, 404, GRAPH)
    assert await dump_dataset(http, server) == []


async def test_head_graph_existing_has_type_and_no_body(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service?graph=" + GRAPH)
    await put(http, url, RICH_TURTLE)
    async with http.head(url, headers={"Accept": "application/n-triples"}) as response:
        assert response.status == 200
        assert media_type(response.headers.get("Content-Type")) == "application/n-triples"
    host = urlsplit(server.base).netloc
    answer = await raw_exchange(url, f"HEAD {urlsplit(url).path}?{urlsplit(url).query} HTTP/1.1\r\nHost: {host}\r\n"
                                     "Accept: text/turtle\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"content-type: text/turtle" in head.lower(), head
    assert body == b"", body


async def test_head_graph_missing_is_404(server: Any, http: aiohttp.ClientSession) -> None:
    async with http.head(server.repo_url("/service"), params={"graph": EX + "missing"}) as response:
        assert response.status == 404


async def test_default_graph_put_get_delete(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service?default")
    await put(http, server.repo_url("/service?graph=" + GRAPH), SMALL_TURTLE)
    assert await put(http, url, RICH_TURTLE) in (201, 204)
    assert_isomorphic(RICH, await get_graph(http, url, "application/n-triples"))
    async with http.delete(url) as response:
        assert response.status == 204, await response.text()
    assert len(await get_graph(http, url)) == 0
    assert_isomorphic(SMALL, await get_graph(http, server.repo_url("/service?graph=" + GRAPH)))


async def test_direct_identification_names_graph_by_full_url(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service/some/path")
    assert await put(http, url, RICH_TURTLE) == 201
    rows = await select(http, server, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert rows == [{"g": url}]
    assert_isomorphic(RICH, await get_graph(http, url))


async def test_put_gzip_body_lands_decoded(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service?graph=" + GRAPH)
    await put(http, url, gzip.compress(RICH_TURTLE.encode()), headers={"Content-Encoding": "gzip"})
    assert_isomorphic(RICH, await get_graph(http, url))


async def test_get_with_accept_encoding_gzip_answers_gzip(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service?graph=" + GRAPH)
    await put(http, url, RICH_TURTLE)
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        async with raw.get(url, headers={"Accept": "text/turtle", "Accept-Encoding": "gzip"}) as response:
            assert response.status == 200
            assert response.headers.get("Content-Encoding") == "gzip"
            assert_isomorphic(RICH, parse_graph(gzip.decompress(await response.read()), "text/turtle"))
        async with raw.get(url, headers={"Accept": "text/turtle", "Accept-Encoding": "identity"}) as response:
            assert "Content-Encoding" not in response.headers
            assert_isomorphic(RICH, parse_graph(await response.read(), "text/turtle"))


async def test_multipart_post_merges_every_part(server: Any, http: aiohttp.ClientSession) -> None:
    url = server.repo_url("/service?graph=" + GRAPH)
    await put(http, url, SMALL_TURTLE)
    form = aiohttp.FormData()
    form.add_field("first", RICH_TURTLE.encode(), content_type="text/turtle", filename="first.ttl")
    form.add_field("second", turtle("x p y", "y p z"), content_type="text/turtle", filename="second.ttl")
    async with http.post(url, data=form) as response:
        assert response.status == 204, await response.text()
    expected = RICH + SMALL + rdflib.Graph().parse(data=turtle("x p y", "y p z"), format="turtle")
    assert_isomorphic(expected, await get_graph(http, url))


async def test_put_turtle_syntax_error_reports_line_and_column(server: Any, http: aiohttp.ClientSession) -> None:
    before = await seed(http, server)
    body = b"@prefix ex: <http://example.org/> .\nex:a ex:b ex:c .\nex:d ex:e ex:f ex:g .\n"
    async with http.put(server.repo_url("/service"), params={"graph": GRAPH}, data=body,
                        headers={"Content-Type": "text/turtle"}) as response:
        problem = await assert_problem(response, 400, "line 3")
    assert (problem["line"], problem["column"]) == (3, 16), problem
    assert await dump_dataset(http, server) == before


GOOD = SMALL_TURTLE
GZIPPED = gzip.compress(GOOD)
BAD_REQUESTS = {
    "unknown_content_type": ({"graph": GRAPH}, {"Content-Type": "text/plain"}, GOOD, 415, ["text/plain"]),
    "missing_content_type": ({"graph": GRAPH}, {}, GOOD, 415, ["no content-type"]),
    "truncated_gzip": ({"graph": GRAPH}, {"Content-Type": "text/turtle", "Content-Encoding": "gzip"},
                       GZIPPED[:-6], 400, ["truncated"]),
    "corrupt_gzip": ({"graph": GRAPH}, {"Content-Type": "text/turtle", "Content-Encoding": "gzip"},
                     GZIPPED[:10] + b"\xff" * 12 + GZIPPED[22:], 400, ["corrupt"]),
    "not_gzip_at_all": ({"graph": GRAPH}, {"Content-Type": "text/turtle", "Content-Encoding": "gzip"},
                        GOOD, 400, ["corrupt"]),
    "brotli": ({"graph": GRAPH}, {"Content-Type": "text/turtle", "Content-Encoding": "br"}, GOOD, 415, ["br"]),
    "quads_as_triples": ({"graph": GRAPH}, {"Content-Type": "application/n-triples"},
                         GOOD.replace(b" .\n", b" <http://example.org/g> .\n"), 400, ["looks like N-Quads"]),
    "relative_graph_iri": ({"graph": "graphs/one"}, {"Content-Type": "text/turtle"}, GOOD, 400,
                           ["graphs/one", "absolute"]),
    "default_and_graph": ({"graph": GRAPH, "default": ""}, {"Content-Type": "text/turtle"}, GOOD, 400,
                          ["default", "graph"]),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_put_bad_input_is_refused_and_changes_nothing(server: Any, http: aiohttp.ClientSession,
                                                           case: str) -> None:
    params, headers, body, status, says = BAD_REQUESTS[case]
    before = await seed(http, server)
    for method in ("PUT", "POST"):
        async with http.request(method, server.repo_url("/service"), params=params, data=body, headers=headers,
                                skip_auto_headers=["Content-Type"]) as response:
            await assert_problem(response, status, *says)
    assert await dump_dataset(http, server) == before


async def test_put_unknown_repository_is_404(server: Any, http: aiohttp.ClientSession) -> None:
    before = await seed(http, server)
    async with http.put(server.url("/nobody/nothing/service"), params={"graph": GRAPH}, data=GOOD,
                        headers={"Content-Type": "text/turtle"}) as response:
        await assert_problem(response, 404, "nobody/nothing")
    async with http.get(server.url("/nobody/nothing/service"), params={"graph": GRAPH}) as response:
        await assert_problem(response, 404, "nobody/nothing")
    assert await dump_dataset(http, server) == before


async def test_get_graph_accept_unavailable_is_406(server: Any, http: aiohttp.ClientSession) -> None:
    before = await seed(http, server)
    async with http.get(server.repo_url("/service"), params={"graph": GRAPH}, headers={"Accept": "image/png"}) as r:
        await assert_problem(r, 406, "image/png", "text/turtle")
    async with http.get(server.repo_url("/service"), headers={"Accept": "image/png"}) as r:  # the whole dataset
        await assert_problem(r, 406, "image/png", "application/n-quads")
    assert await dump_dataset(http, server) == before


async def open_server(start_server: Any, http: aiohttp.ClientSession, **settings: Any) -> tuple[Any, list[str]]:
    running = await start_server(**settings)
    async with http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    return running, await seed(http, running)


async def chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("declared", [True, False], ids=["content_length", "chunked"])
async def test_put_body_over_max_body_bytes_is_413(start_server: Any, http: aiohttp.ClientSession,
                                                   declared: bool) -> None:
    running, before = await open_server(start_server, http, max_body_bytes=1000)
    body = turtle(*[f"s{i} p o" for i in range(40)])
    assert len(body) > 2000
    async with http.put(running.repo_url("/service"), params={"graph": GRAPH}, headers={"Content-Type": "text/turtle"},
                        data=body if declared else chunks(body)) as response:
        await assert_problem(response, 413, "1000")
    assert await dump_dataset(http, running) == before


async def test_put_gzip_bomb_is_413(start_server: Any, http: aiohttp.ClientSession) -> None:
    running, before = await open_server(start_server, http, max_gzip_ratio=10)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    newlines = b"\n" * (1024 * 1024)  # blank lines: valid N-Triples, were the bomb unpacked
    bomb = b"".join(packer.compress(newlines) for _ in range(50)) + packer.compress(turtle("bomb p o"))
    bomb += packer.flush()
    assert len(bomb) < 100_000
    async with http.put(running.repo_url("/service"), params={"graph": GRAPH}, data=bomb,
                        headers={"Content-Type": "application/n-triples", "Content-Encoding": "gzip"}) as response:
        await assert_problem(response, 413, "gzip")
    assert await dump_dataset(http, running) == before


LARGE_TRIPLES = 300_000


def write_ntriples(path: Path, *, bad_last_line: bool) -> Path:
    with path.open("w") as out:
        for i in range(LARGE_TRIPLES):
            out.write(f'<http://example.org/item/{i}> <http://example.org/prop/{i % 13}> '
                      f'"value {i} of the large import, padded to about a hundred bytes"@en .\n')
        if bad_last_line:
            # a fourth term where the dot should be: column 73 of the last line
            out.write("<http://example.org/last> <http://example.org/p> <http://example.org/o> "
                      "<http://example.org/x> .\n")
    return path


async def test_put_large_body_with_error_on_last_line_changes_nothing(start_server: Any, http: aiohttp.ClientSession,
                                                                      tmp_path: Path) -> None:
    running, before = await open_server(start_server, http, transactional_load_bytes=1_000_000)
    path = write_ntriples(tmp_path / "bad.nt", bad_last_line=True)
    assert path.stat().st_size > 25_000_000
    with path.open("rb") as body:
        async with http.put(running.repo_url("/service"), params={"graph": GRAPH}, data=body,
                            headers={"Content-Type": "application/n-triples"}) as response:
            problem = await assert_problem(response, 400, f"line {LARGE_TRIPLES + 1}")
    assert (problem["line"], problem["column"]) == (LARGE_TRIPLES + 1, 73), problem
    assert await dump_dataset(http, running) == before
    assert await count_triples(http, running, GRAPH) == 1


async def test_put_large_body_streamed_from_disk_loads_every_triple(start_server: Any, http: aiohttp.ClientSession,
                                                                    tmp_path: Path) -> None:
    running, _ = await open_server(start_server, http, transactional_load_bytes=1_000_000)
    path = write_ntriples(tmp_path / "good.nt", bad_last_line=False)
    with path.open("rb") as body:
        async with http.put(running.repo_url("/service"), params={"graph": GRAPH}, data=body,
                            headers={"Content-Type": "application/n-triples"}) as response:
            assert response.status == 204, await response.text()
    assert await count_triples(http, running, GRAPH) == LARGE_TRIPLES
    assert await count_triples(http, running) == 1  # the default graph is untouched
