"""W3C conformance: the SPARQL 1.1 Protocol and Graph Store Protocol test manifests, run over real HTTP.

Runs every mf:ProtocolTest of w3c/sparql/sparql11/protocol/manifest.ttl (34) and every mf:GraphStoreProtocolTest
of w3c/sparql/sparql11/graph-store-protocol/manifest-{direct,indirect}.ttl (14), one pytest test per manifest
entry, against a fresh open server with an empty repository test/repo. Each test sends its ht:requests in order,
exactly as written (method, path with its query string unchanged, headers, body in its cnt:characterEncoding),
after mapping the manifest's `/sparql/` prefix to /test/repo/sparql and `/gsp` to /test/repo/service, and checks
each ht:resp: mf:expectedStatus, mf:expectedFormat, mf:expectedBoolean, mf:expectedLocation, and the response's
Content-Type and RDF body (isomorphism) when ht:headers / ht:body are given. ut:graphData is loaded beforehand
with a Graph Store PUT of the .nt file to ?graph=<rdfs:label>.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
import rdflib
from rdflib.collection import Collection
from rdflib.compare import graph_diff, isomorphic, to_isomorphic
from rdflib.namespace import RDF, RDFS, Namespace
from rdflib.query import Result
from yarl import URL

W3C = Path(__file__).parent / "w3c" / "sparql" / "sparql11"
PROTOCOL_MANIFESTS = [W3C / "protocol" / "manifest.ttl"]
GSP_MANIFESTS = [W3C / "graph-store-protocol" / name for name in ("manifest-direct.ttl", "manifest-indirect.ttl")]
PREFIXES = {"/sparql/": "/test/repo/sparql", "/gsp": "/test/repo/service"}

MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
HTS = Namespace("http://www.w3.org/2011/http-statusCodes#")
CNT = Namespace("http://www.w3.org/2011/content#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")

STATUS_CODES = {HTS.OK: 200, HTS.Created: 201, HTS.NoContent: 204, HTS.NotFound: 404}
STATUS_CLASSES = {HTS.StatusCode2xx: 2, HTS.StatusCode3xx: 3, HTS.StatusCode4xx: 4}
RESULT_FORMATS = {
    "application/sparql-results+json": "json",
    "application/sparql-results+xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
BOOLEAN_MEDIA = ("application/sparql-results+json", "application/sparql-results+xml")
RDF_FORMATS = {  # graph (triple) formats: a CONSTRUCT or DESCRIBE result is a graph
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
    "application/ld+json": "json-ld",
    "text/n3": "n3",
}


@dataclass(frozen=True)
class Expected:
    statuses: tuple[rdflib.URIRef, ...]
    result_format: str | None = None
    boolean: bool | None = None
    location_variable: str | None = None
    content_type: str | None = None
    body: str | None = None


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    encoding: str
    expected: Expected


@dataclass(frozen=True)
class Case:
    name: str
    graph_data: tuple[tuple[Path, str], ...]
    steps: tuple[Step, ...]


def _one(graph: rdflib.Graph, node: Any, predicate: rdflib.URIRef) -> Any:
    assert node is not None, f"no subject to read {predicate} from"  # None would match every subject
    values = list(graph.objects(node, predicate))
    assert len(values) <= 1, f"{node} has {len(values)} values for {predicate}"
    return values[0] if values else None


def _headers(graph: rdflib.Graph, node: Any) -> tuple[tuple[str, str], ...]:
    head = _one(graph, node, HT.headers)
    if head is None:
        return ()
    return tuple((str(_one(graph, h, HT.fieldName)).lower(), str(_one(graph, h, HT.fieldValue)))
                 for h in Collection(graph, head))


def _content(graph: rdflib.Graph, node: Any) -> tuple[str | None, str]:
    body = _one(graph, node, HT.body)
    if body is None:
        return None, "utf-8"
    encoding = _one(graph, body, CNT.characterEncoding)
    return str(_one(graph, body, CNT.chars)), str(encoding or "UTF-8")


def _expected(graph: rdflib.Graph, response: Any) -> Expected:
    statuses = tuple(sorted(graph.objects(response, MF.expectedStatus)))
    for status in statuses:
        assert status in STATUS_CODES or status in STATUS_CLASSES, f"unknown expected status {status}"
    boolean = _one(graph, response, MF.expectedBoolean)
    result_format = _one(graph, response, MF.expectedFormat)
    location = _one(graph, response, MF.expectedLocation)
    content_type = dict(_headers(graph, response)).get("content-type")
    return Expected(statuses, result_format and str(result_format), None if boolean is None else boolean.toPython(),
                    location and str(location), content_type, _content(graph, response)[0])


def _step(graph: rdflib.Graph, request: Any) -> Step:
    path = str(_one(graph, request, HT.absolutePath))
    prefix = next(p for p in PREFIXES if path.startswith(p))
    headers = _headers(graph, request)
    body, encoding = _content(graph, request)
    if body is not None and dict(headers).get("content-type", "").startswith("multipart/"):
        assert "\r\n" in body, "the multipart body lost its CRLF line ends in parsing"
    return Step(str(_one(graph, request, HT.methodName)), PREFIXES[prefix] + path[len(prefix):], headers, body,
                encoding, _expected(graph, _one(graph, request, HT.resp)))


def load_cases(manifest: Path, test_type: rdflib.URIRef) -> list[Case]:
    graph = rdflib.Graph().parse(manifest, format="turtle")
    cases = []
    for test in sorted(graph.subjects(RDF.type, test_type)):
        data = tuple(sorted(
            (manifest.parent / PurePosixPath(urlsplit(str(_one(graph, d, UT.graph))).path).name,
             str(_one(graph, d, RDFS.label)))
            for d in graph.objects(test, UT.graphData)
        ))
        requests = Collection(graph, _one(graph, _one(graph, test, MF.action), HT.requests))
        cases.append(Case(str(test).rsplit("#", 1)[-1], data, tuple(_step(graph, r) for r in requests)))
    return cases


PROTOCOL_CASES = [c for m in PROTOCOL_MANIFESTS for c in load_cases(m, MF.ProtocolTest)]
GSP_CASES = [c for m in GSP_MANIFESTS for c in load_cases(m, MF.GraphStoreProtocolTest)]
CASES = PROTOCOL_CASES + GSP_CASES
# A broken parse must not quietly run fewer tests.
assert (len(PROTOCOL_CASES), len(GSP_CASES)) == (34, 14), (len(PROTOCOL_CASES), len(GSP_CASES))
assert len({c.name for c in CASES}) == 48


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _status_matches(status: int, expected: rdflib.URIRef) -> bool:
    if expected in STATUS_CODES:
        return status == STATUS_CODES[expected]
    return status // 100 == STATUS_CLASSES[expected]


def _describe(step: Step, url: URL, status: int, headers: Any, body: bytes) -> str:
    return (f"{step.method} {url} headers={dict(step.headers)} body={step.body!r}\n"
            f"-> {status} {dict(headers)}\n{body[:2000].decode('utf-8', 'replace')}")


def _check_format(expected: Expected, media: str, body: bytes, context: str) -> None:
    if expected.result_format == "RDF":
        assert media in RDF_FORMATS, f"not an RDF media type: {media!r}\n{context}"
        rdflib.Graph().parse(data=body, format=RDF_FORMATS[media])
        return
    if expected.result_format is not None:
        allowed = BOOLEAN_MEDIA if expected.result_format == "boolean" else tuple(RESULT_FORMATS)
        assert media in allowed, f"{media!r} is not one of {allowed}\n{context}"
        result = Result.parse(io.BytesIO(body), format=RESULT_FORMATS[media])
        assert result.type == ("ASK" if expected.result_format == "boolean" else "SELECT"), context
        if expected.boolean is not None:
            assert result.askAnswer is expected.boolean, context
    elif expected.boolean is not None:
        raise AssertionError(f"mf:expectedBoolean without mf:expectedFormat\n{context}")


def _check_graph(expected_body: str, actual_body: bytes, base: str, context: str) -> None:
    expected = rdflib.Graph().parse(data=expected_body, format="turtle")
    actual = rdflib.Graph().parse(data=actual_body, format="turtle", publicID=base)
    if not isomorphic(expected, actual):
        _, only_expected, only_actual = graph_diff(to_isomorphic(expected), to_isomorphic(actual))
        raise AssertionError(f"response graph differs\nonly expected:\n{only_expected.serialize(format='nt')}"
                             f"only actual:\n{only_actual.serialize(format='nt')}{context}")


async def _load_graph_data(http: aiohttp.ClientSession, server: Any, data: Path, graph: str) -> None:
    url = server.repo_url("/service") + "?graph=" + quote(graph, safe="")
    headers = {"Content-Type": "application/n-triples"}
    async with http.put(URL(url, encoded=True), data=data.read_bytes(), headers=headers) as response:
        assert response.status in (201, 204), await response.text()


async def send(http: aiohttp.ClientSession, step: Step, url: URL, body: str | None) -> tuple[int, Any, bytes]:
    """The request as written: no Content-Type unless the manifest gives one, the URL not re-encoded."""
    data = body.encode(step.encoding) if body is not None else None
    async with http.request(step.method, url, headers=dict(step.headers), data=data,
                            skip_auto_headers=["Content-Type"], allow_redirects=False) as response:
        return response.status, response.headers, await response.read()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_w3c(case: Case, server: Any, http: aiohttp.ClientSession) -> None:
    for data, graph in case.graph_data:
        await _load_graph_data(http, server, data, graph)
    variables: dict[str, str] = {}
    for step in case.steps:
        path, body = step.path, step.body
        for name, value in variables.items():
            # The variables only stand in query strings (`?graph=$LOCATION$`) and bodies.
            path = path.replace(name, quote(value, safe=""))
            body = body.replace(name, value) if body is not None else None
        url = URL(server.base + path, encoded=True)
        status, headers, raw = await send(http, step, url, body)
        context = _describe(step, url, status, headers, raw)
        expected = step.expected
        assert any(_status_matches(status, s) for s in expected.statuses), (
            f"status {status} not in {[str(s) for s in expected.statuses]}\n{context}")
        media = _media_type(headers.get("Content-Type"))
        _check_format(expected, media, raw, context)
        if expected.location_variable is not None:
            assert "Location" in headers, f"no Location header\n{context}"
            variables[expected.location_variable] = headers["Location"]
        if expected.content_type is not None:
            assert media == _media_type(expected.content_type), context
        if expected.body is not None:
            _check_graph(expected.body, raw, str(url), context)
