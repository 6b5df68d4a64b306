"""CORS as a browser meets it, over real HTTP: none by default; an allowed origin's answers (results, streamed
exports, problems, 202s) readable, with the headers a client reads exposed; other origins left out; preflights
of every route answered from its true Allow; `*` for any origin, never with credentials."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import aiohttp
from conftest import Running, StartServer
from routing import methods_in, resources, url_of

APP = "https://app.example"
OTHER = "https://evil.example"
QUERY = {"query": "ASK {}"}
PREFLIGHT_HEADERS = {"authorization", "content-type", "accept", "prefer", "accept-asynchronous",
                     "asynchronous-location", "asynchronous-method", "asynchronous-content-type",
                     "asynchronous-content-encoding", "asynchronous-authorization"}
EXPOSED = {"location", "request-id", "preference-applied", "retry-after", "allow", "asyncresult"}


def lower_set(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def cors_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower().startswith("access-control-")}


async def open_server(start_server: StartServer, http: aiohttp.ClientSession, **settings: object) -> Running:
    running = await start_server(**settings)
    async with http.put(running.repo_url()) as response:
        assert response.status == 201, await response.text()
    return running


def sample(task_id: str) -> dict[str, str]:
    return {"account": "test", "repo": "repo", "view": "people", "path": "g", "task_id": task_id}


async def preflight(http: aiohttp.ClientSession, url: str, origin: str, method: str = "PUT") -> aiohttp.ClientResponse:
    async with http.options(url, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                          "Access-Control-Request-Headers": "authorization, content-type, prefer"}
                            ) as response:
        await response.read()
        return response


async def test_no_cors_headers_by_default(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http)
    async with http.get(running.repo_url("/sparql"), params=QUERY, headers={"Origin": APP}) as response:
        assert response.status == 200
        assert cors_headers(response.headers) == {}
        assert "origin" not in lower_set(response.headers.get("Vary"))
    answer = await preflight(http, running.repo_url("/sparql"), APP)
    assert answer.status == 204 and methods_in(answer.headers["Allow"]) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert cors_headers(answer.headers) == {}


async def test_an_allowed_origin_reads_every_kind_of_answer(start_server: StartServer,
                                                            http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http, cors_origins=(APP,))
    origin = {"Origin": APP}
    big = "".join(f"<http://example.org/s{i}> <http://example.org/p> \"{'x' * 80}\" .\n" for i in range(2000))
    async with http.put(running.repo_url("/service"), params={"graph": "http://example.org/g"}, data=big,
                        headers={**origin, "Content-Type": "application/n-triples"}) as response:
        assert response.status == 201
        assert response.headers["Access-Control-Allow-Origin"] == APP
    answers = []
    async with http.get(running.repo_url("/sparql"), params=QUERY, headers=origin) as response:
        answers.append((response.status, response.headers))
    async with http.get(running.repo_url("/service"), params={"graph": "http://example.org/g"},
                        headers={**origin, "Accept": "application/n-triples"}) as response:
        assert len(await response.read()) > 64 * 1024  # streamed: its headers were sent from inside the handler
        answers.append((response.status, response.headers))
    async with http.get(running.repo_url("/sparql"), params={"query": "ASK {"}, headers=origin) as response:
        answers.append((response.status, response.headers))
    async with http.get(running.url("/nothing/here/at/all"), headers=origin) as response:
        answers.append((response.status, response.headers))
    async with http.post(running.repo_url("/sparql"), data=b"ASK {}", headers={
            **origin, "Content-Type": "application/sparql-query", "Prefer": "respond-async"}) as response:
        answers.append((response.status, response.headers))
        assert "Location" in response.headers and "Request-ID" in response.headers
    assert [status for status, _ in answers] == [200, 200, 400, 404, 202]
    for _, headers in answers:
        assert headers["Access-Control-Allow-Origin"] == APP
        assert headers["Access-Control-Allow-Credentials"] == "true"
        assert EXPOSED <= lower_set(headers["Access-Control-Expose-Headers"])
        assert "origin" in lower_set(headers.get("Vary"))
    assert {"accept", "origin"} <= lower_set(answers[0][1]["Vary"])  # added to the Vary already there


async def test_another_origin_gets_no_cors_headers(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http, cors_origins=(APP,))
    for headers in ({"Origin": OTHER}, {"Origin": "http://app.example"}, {}):
        async with http.get(running.repo_url("/sparql"), params=QUERY, headers=headers) as response:
            assert response.status == 200
            assert cors_headers(response.headers) == {}, headers
            assert "origin" in lower_set(response.headers.get("Vary"))  # a cache must not give it to APP
    answer = await preflight(http, running.repo_url("/service"), OTHER)
    assert answer.status == 204 and cors_headers(answer.headers) == {}


async def test_preflight_of_every_route_allows_what_its_allow_says(start_server: StartServer,
                                                                   http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http, cors_origins=(APP,))
    for resource in resources(running.settings):
        url = url_of(running, resource, sample(str(uuid.uuid4())))
        answer = await preflight(http, url, APP)
        assert answer.status == 204, url
        headers = answer.headers
        assert headers["Access-Control-Allow-Origin"] == APP and headers["Access-Control-Allow-Credentials"] == "true"
        assert methods_in(headers["Access-Control-Allow-Methods"]) == methods_in(headers["Allow"]), url
        assert PREFLIGHT_HEADERS <= lower_set(headers["Access-Control-Allow-Headers"])
        assert int(headers["Access-Control-Max-Age"]) > 0
    service = await preflight(http, running.repo_url("/service"), APP)
    assert {"GET", "HEAD", "PUT", "POST", "DELETE"} <= methods_in(service.headers["Access-Control-Allow-Methods"])


async def test_star_lets_any_origin_read_without_credentials(start_server: StartServer,
                                                             http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http, cors_origins=("*",))
    for origin in (OTHER, APP, "null"):
        async with http.get(running.repo_url("/sparql"), params=QUERY, headers={"Origin": origin}) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "Access-Control-Allow-Credentials" not in response.headers
        answer = await preflight(http, running.repo_url("/sparql"), origin, "POST")
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in answer.headers
        assert "authorization" in lower_set(answer.headers["Access-Control-Allow-Headers"])


async def test_a_listed_origin_beside_star_keeps_its_credentials(start_server: StartServer,
                                                                http: aiohttp.ClientSession) -> None:
    running = await open_server(start_server, http, cors_origins=("*", APP))
    async with http.get(running.repo_url("/sparql"), params=QUERY, headers={"Origin": APP}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
    async with http.get(running.repo_url("/sparql"), params=QUERY, headers={"Origin": OTHER}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
