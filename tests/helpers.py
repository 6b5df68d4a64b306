"""Helpers shared by the HTTP behaviour tests: problem bodies, dataset dumps, counts, graph comparison."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import rdflib
from rdflib.compare import graph_diff, isomorphic, to_isomorphic

PROBLEM_JSON = "application/problem+json"

# media type -> rdflib parser/serializer name
RDFLIB_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/n-quads": "nquads",
    "application/trig": "trig",
    "application/rdf+xml": "xml",
    "application/ld+json": "json-ld",
}
DATASET_MEDIA_TYPES = ("application/n-quads", "application/trig")


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


async def assert_problem(response: aiohttp.ClientResponse, status: int | tuple[int, ...],
                         *detail_says: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (or one of these), whose detail mentions every
    fragment given."""
    text = await response.text()
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status in statuses, f"expected {status}, got {response.status}: {text}"
    assert media_type(response.headers.get("Content-Type")) == PROBLEM_JSON, response.headers.get("Content-Type")
    body: dict[str, Any] = json.loads(text)
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == response.status, body
    assert isinstance(body["detail"], str) and body["detail"], body
    for fragment in detail_says:
        assert fragment.lower() in body["detail"].lower(), f"{fragment!r} not in detail {body['detail']!r}"
    return body


def parse_graph(data: str | bytes, media: str) -> rdflib.Graph:
    """Parse an RDF document; for a dataset format, every triple whatever its graph."""
    fmt = RDFLIB_FORMATS[media_type(media)]
    with warnings.catch_warnings():  # rdflib 7 warns about its own use of ConjunctiveGraph and Dataset internals
        warnings.simplefilter("ignore", DeprecationWarning)
        if media_type(media) not in DATASET_MEDIA_TYPES:
            return rdflib.Graph().parse(data=data, format=fmt)
        dataset = rdflib.Dataset()
        dataset.parse(data=data, format=fmt)
        graph = rdflib.Graph()
        for s, p, o, _ in dataset.quads():
            graph.add((s, p, o))
        return graph


def serialize_graph(graph: rdflib.Graph, media: str) -> bytes:
    """The graph in a format; for a dataset format, as triples in the default graph."""
    fmt = RDFLIB_FORMATS[media_type(media)]
    if media_type(media) in DATASET_MEDIA_TYPES:
        with warnings.catch_warnings():  # rdflib 7's Dataset warns about its own internals
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = rdflib.Dataset()
            for triple in graph:
                dataset.add(triple)
            return dataset.serialize(format=fmt, encoding="utf-8")
    return graph.serialize(format=fmt, encoding="utf-8")


def assert_isomorphic(expected: rdflib.Graph, actual: rdflib.Graph) -> None:
    if isomorphic(expected, actual):
        return
    _, only_expected, only_actual = graph_diff(to_isomorphic(expected), to_isomorphic(actual))
    raise AssertionError(
        "graphs differ\n--- only expected:\n" + only_expected.serialize(format="nt")
        + "\n--- only actual:\n" + only_actual.serialize(format="nt")
    )


async def get_ok(http: aiohttp.ClientSession, server: Any, path: str, accept: str | None = None,
                 **params: str) -> tuple[str, bytes]:
    """GET a path of the test repository (a view, with or without an extension, say) that must answer 200: its
    content type and body."""
    headers = {"Accept": accept} if accept else {}
    async with http.get(server.repo_url(path), params=params, headers=headers) as response:
        body = await response.read()
        assert response.status == 200, body
        return media_type(response.headers.get("Content-Type")), body


async def dump_dataset(http: aiohttp.ClientSession, server: Any) -> list[str]:
    """Every quad in the repository, as sorted N-Quads lines."""
    async with http.get(server.repo_url("/service"), headers={"Accept": "application/n-quads"}) as response:
        text = await response.text()
        assert response.status == 200, text
    return sorted(line for line in text.splitlines() if line.strip())


async def select(http: aiohttp.ClientSession, server: Any, query: str, **params: str) -> list[dict[str, str]]:
    """The bindings of a SELECT, each variable to its value."""
    async with http.post(server.repo_url("/sparql"), params=params, data=query.encode(),
                         headers={"Content-Type": "application/sparql-query",
                                  "Accept": "application/sparql-results+json"}) as response:
        text = await response.text()
        assert response.status == 200, text
    return [{name: term["value"] for name, term in row.items()} for row in json.loads(text)["results"]["bindings"]]


async def count_triples(http: aiohttp.ClientSession, server: Any, graph: str | None = None) -> int:
    pattern = "{ ?s ?p ?o }" if graph is None else f"{{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
    rows = await select(http, server, f"SELECT (COUNT(*) AS ?n) WHERE {pattern}")
    return int(rows[0]["n"])


async def update(http: aiohttp.ClientSession, server: Any, text: str) -> None:
    async with http.post(server.repo_url("/sparql"), data=text.encode(),
                         headers={"Content-Type": "application/sparql-update"}) as response:
        assert response.status == 204, await response.text()


async def raw_exchange(url: str, request_head: str) -> bytes:
    """Send one request (head only, `Connection: close`) on a plain socket; every byte the server answers."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request_head.encode("latin-1"))
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
