"""Accounts, tokens and grants as a client sees them: real servers on 127.0.0.1, real HTTP, problem+json bodies."""

from __future__ import annotations

import base64
import logging
from typing import Any

import aiohttp
import pytest
from conftest import Running, StartServer

from graphstore_async.auth import AccessControl, hash_token, new_token, token_entry
from graphstore_async.errors import Unauthorized

ALICE = new_token()
BOB = new_token()
CAROL = new_token()
ROOT = new_token()
UNKNOWN = new_token()  # well-formed, never configured
TOKENS = (ALICE, BOB, CAROL, ROOT, UNKNOWN)

CONFIG = """
[accounts.alice]

[accounts.bob]
grants = { "alice/shared" = "read" }

[accounts.carol]
grants = { "alice/shared" = "write" }

[accounts.root]
admin = true

[repositories."alice/public"]
public_read = true
""" + "".join(token_entry(account, token) for account, token in
              (("alice", ALICE), ("bob", BOB), ("carol", CAROL), ("root", ROOT)))

PROBLEM_JSON = "application/problem+json"
NT = "application/n-triples"
SRJ = "application/sparql-results+json"
SHARED_TRIPLE = '<http://example.org/s> <http://example.org/p> "shared by alice" .\n'
PUBLIC_TRIPLE = '<http://example.org/s> <http://example.org/p> "public" .\n'
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def no_token_in(text: str) -> None:
    for token in TOKENS:
        assert token not in text


async def expect_problem(response: aiohttp.ClientResponse, status: int, detail: str) -> dict[str, Any]:
    """The response is a problem+json document with this status and detail, and leaks no token."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == PROBLEM_JSON, text
    body: dict[str, Any] = await response.json(content_type=PROBLEM_JSON)
    assert body["status"] == status
    assert body["detail"] == detail
    assert body["type"].startswith("tag:graphstore-async,2026:problem/")
    no_token_in(text)
    no_token_in(str(dict(response.headers)))
    if status == 401:
        challenge = response.headers.get("WWW-Authenticate", "")
        assert "Bearer" in challenge and "Basic" in challenge, response.headers
    else:
        assert "WWW-Authenticate" not in response.headers
    return body


async def count(http: aiohttp.ClientSession, running: Running, repo: str, headers: dict[str, str]) -> int:
    async with http.get(running.repo_url("/sparql", repo), params={"query": COUNT},
                        headers={**headers, "Accept": SRJ}) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == SRJ
        body = await response.json(content_type=SRJ)
    return int(body["results"]["bindings"][0]["n"]["value"])


async def default_graph(http: aiohttp.ClientSession, running: Running, repo: str, headers: dict[str, str]) -> str:
    async with http.get(running.repo_url("/service?default", repo), headers={**headers, "Accept": NT}) as response:
        text = await response.text()
        assert response.status == 200, text
        return text


@pytest.fixture
async def secured(start_server: StartServer, http: aiohttp.ClientSession,
                  caplog: pytest.LogCaptureFixture) -> Running:
    """A server with accounts; alice has made alice/shared and alice/public, one triple in each."""
    caplog.set_level(logging.DEBUG)
    running = await start_server(config=CONFIG)
    for repo, triple in (("alice/shared", SHARED_TRIPLE), ("alice/public", PUBLIC_TRIPLE)):
        async with http.put(running.repo_url("", repo), headers=bearer(ALICE)) as response:
            assert response.status == 201, await response.text()
        async with http.put(running.repo_url("/service?default", repo), data=triple,
                            headers={**bearer(ALICE), "Content-Type": NT}) as response:
            assert response.status == 204, await response.text()
    return running


# --- authentication ---------------------------------------------------------------------------------------------

async def test_no_credentials_on_a_private_repository_is_401_with_a_challenge(
        secured: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(secured.repo_url("", "alice/shared")) as response:
        await expect_problem(response, 401, "read access to alice/shared needs credentials")
    async with http.get(secured.repo_url("/sparql", "alice/shared"), params={"query": COUNT}) as response:
        await expect_problem(response, 401, "read access to alice/shared needs credentials")
    async with http.get(secured.repo_url("/service?default", "alice/shared")) as response:
        await expect_problem(response, 401, "read access to alice/shared needs credentials")


@pytest.mark.parametrize("headers", [
    pytest.param(bearer(UNKNOWN), id="bearer-unknown-token"),
    pytest.param(bearer(ALICE + "x"), id="bearer-altered-token"),
    pytest.param(basic("alice", UNKNOWN), id="basic-unknown-token"),
    pytest.param(basic(ALICE, ""), id="basic-token-as-user-name"),
    pytest.param({"Authorization": "Basic !!not-base64!!"}, id="basic-malformed"),
    pytest.param({"Authorization": f"Token {ALICE}"}, id="unknown-scheme"),
    pytest.param({"Authorization": "Bearer"}, id="bearer-empty"),
])
async def test_wrong_credentials_are_401_even_on_a_public_repository(
        secured: Running, http: aiohttp.ClientSession, headers: dict[str, str]) -> None:
    for repo in ("alice/shared", "alice/public"):
        async with http.get(secured.repo_url("", repo), headers=headers) as response:
            await expect_problem(response, 401, "the credentials are not valid")


@pytest.mark.parametrize("headers", [
    pytest.param(bearer(ALICE), id="bearer"),
    pytest.param({"Authorization": f"bearer   {ALICE}"}, id="bearer-lowercase-scheme"),
    pytest.param(basic("alice", ALICE), id="basic-account-name"),
    pytest.param(basic("", ALICE), id="basic-empty-user-name"),
])
async def test_bearer_and_basic_with_the_token_as_password_both_work(
        secured: Running, http: aiohttp.ClientSession, headers: dict[str, str]) -> None:
    async with http.get(secured.repo_url("", "alice/shared"), headers=headers) as response:
        assert response.status == 200, await response.text()
        meta = await response.json()
    assert meta["id"] == "alice/shared"
    assert meta["size"] == 1
    assert await count(http, secured, "alice/shared", headers) == 1


@pytest.mark.parametrize("user", ["bob", "whoever", "ALICE", " alice"])
async def test_basic_with_another_user_name_than_the_tokens_account_is_401_and_changes_nothing(
        secured: Running, http: aiohttp.ClientSession, user: str) -> None:
    """`bob:<alice's token>` is not alice (nor bob): a mix-up in a client's configuration is told, not hidden."""
    detail = ("the credentials are not valid: with Basic, the token is the password and the user name is empty or "
              "the token's own account")
    wrong = basic(user, ALICE)
    async with http.get(secured.repo_url("", "alice/shared"), headers=wrong) as response:
        await expect_problem(response, 401, detail)
    async with http.get(secured.repo_url("", "alice/public"), headers=wrong) as response:  # even where anonymous reads
        await expect_problem(response, 401, detail)
    async with http.put(secured.repo_url("/service?default", "alice/shared"), data=PUBLIC_TRIPLE,
                        headers={**wrong, "Content-Type": NT}) as response:
        await expect_problem(response, 401, detail)
    assert await default_graph(http, secured, "alice/shared", bearer(ALICE)) == SHARED_TRIPLE


async def test_basic_with_the_tokens_own_account_name_is_that_account(
        secured: Running, http: aiohttp.ClientSession) -> None:
    """bob:<bob's token> is bob: he reads alice/shared (his grant) and may not write it."""
    assert await count(http, secured, "alice/shared", basic("bob", BOB)) == 1
    async with http.put(secured.repo_url("/service?default", "alice/shared"), data=PUBLIC_TRIPLE,
                        headers={**basic("bob", BOB), "Content-Type": NT}) as response:
        await expect_problem(response, 403, "bob has no write grant on alice/shared")
    assert await default_graph(http, secured, "alice/shared", bearer(ALICE)) == SHARED_TRIPLE


def basic_header(user: str, password: str) -> str:
    return basic(user, password)["Authorization"]


def test_authenticate_takes_the_token_as_password_with_no_user_name_or_its_own() -> None:
    access = AccessControl.from_mapping({"accounts": {"alice": {}, "bob": {}},
                                         "tokens": [{"account": "alice", "hash": hash_token(ALICE)}]})
    for header in (f"Bearer {ALICE}", basic_header("", ALICE), basic_header("alice", ALICE)):
        assert access.authenticate(header).account == "alice"
    for header in (basic_header("bob", ALICE), basic_header("Alice", ALICE), basic_header(ALICE, ""),
                   basic_header("alice", BOB), f"Basic {base64.b64encode(ALICE.encode()).decode()}"):
        with pytest.raises(Unauthorized):
            access.authenticate(header)


# --- grants -----------------------------------------------------------------------------------------------------

async def test_a_reader_can_query_but_not_write_and_the_data_stays(
        secured: Running, http: aiohttp.ClientSession) -> None:
    assert await count(http, secured, "alice/shared", bearer(BOB)) == 1
    assert await default_graph(http, secured, "alice/shared", bearer(BOB)) == SHARED_TRIPLE

    intruder = '<http://example.org/s> <http://example.org/p> "written by bob" .\n'
    for method in ("PUT", "POST"):
        async with http.request(method, secured.repo_url("/service?default", "alice/shared"), data=intruder,
                                headers={**bearer(BOB), "Content-Type": NT}) as response:
            body = await expect_problem(response, 403, "bob has no write grant on alice/shared")
        assert body["repository"] == "alice/shared"
        assert body["needed"] == "write"
    async with http.delete(secured.repo_url("/service?default", "alice/shared"), headers=bearer(BOB)) as response:
        await expect_problem(response, 403, "bob has no write grant on alice/shared")
    async with http.post(secured.repo_url("/sparql", "alice/shared"), data="DROP ALL",
                         headers={**bearer(BOB), "Content-Type": "application/sparql-update"}) as response:
        await expect_problem(response, 403, "bob has no write grant on alice/shared")

    assert await default_graph(http, secured, "alice/shared", bearer(ALICE)) == SHARED_TRIPLE
    assert await count(http, secured, "alice/shared", bearer(ALICE)) == 1


async def test_a_reader_has_nothing_on_other_repositories(secured: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(secured.repo_url("", "alice/public"), headers=bearer(BOB)) as response:
        assert response.status == 200, await response.text()  # public_read covers known callers too
    async with http.put(secured.repo_url("/service?default", "alice/public"), data=PUBLIC_TRIPLE,
                        headers={**bearer(BOB), "Content-Type": NT}) as response:
        await expect_problem(response, 403, "bob has no write grant on alice/public")
    async with http.put(secured.repo_url("", "alice/other"), headers=bearer(ALICE)) as response:
        assert response.status == 201, await response.text()
    async with http.get(secured.repo_url("", "alice/other"), headers=bearer(BOB)) as response:
        await expect_problem(response, 403, "bob has no read grant on alice/other")


async def test_a_writer_can_write(secured: Running, http: aiohttp.ClientSession) -> None:
    replacement = '<http://example.org/s> <http://example.org/p> "written by carol" .\n'
    async with http.put(secured.repo_url("/service?default", "alice/shared"), data=replacement,
                        headers={**bearer(CAROL), "Content-Type": NT}) as response:
        assert response.status == 204, await response.text()
    async with http.post(secured.repo_url("/sparql", "alice/shared"),
                         data='INSERT DATA { <http://example.org/s> <http://example.org/p> "by update" }',
                         headers={**bearer(CAROL), "Content-Type": "application/sparql-update"}) as response:
        assert response.status == 204, await response.text()
    # alice and bob see carol's writes
    text = await default_graph(http, secured, "alice/shared", bearer(ALICE))
    assert "written by carol" in text and "by update" in text and "shared by alice" not in text
    assert await count(http, secured, "alice/shared", bearer(BOB)) == 2
    # write on the data is not admin on the repository
    async with http.delete(secured.repo_url("", "alice/shared"), headers=bearer(CAROL)) as response:
        await expect_problem(response, 403, "carol has no admin grant on alice/shared")
    async with http.put(secured.repo_url("", "alice/new"), headers=bearer(CAROL)) as response:
        await expect_problem(response, 403, "carol has no admin grant on alice/new")


async def test_only_the_owner_or_an_admin_creates_and_drops_repositories(
        secured: Running, http: aiohttp.ClientSession) -> None:
    async with http.put(secured.repo_url("", "alice/new"), headers=bearer(BOB)) as response:
        await expect_problem(response, 403, "bob has no admin grant on alice/new")
    async with http.get(secured.repo_url("", "alice/new"), headers=bearer(ALICE)) as response:
        await expect_problem(response, 404, "there is no repository alice/new")

    async with http.put(secured.repo_url("", "alice/new"), headers=bearer(ALICE)) as response:
        assert response.status == 201, await response.text()
        assert response.headers["Location"] == secured.repo_url("", "alice/new")
    async with http.put(secured.repo_url("", "alice/new"), headers=bearer(ALICE)) as response:
        assert response.status == 204, await response.text()  # exists already
    async with http.put(secured.repo_url("", "bob/mine"), headers=bearer(BOB)) as response:
        assert response.status == 201, await response.text()  # bob owns bob/*
    async with http.put(secured.repo_url("", "bob/theirs"), headers=bearer(ALICE)) as response:
        await expect_problem(response, 403, "alice has no admin grant on bob/theirs")

    # the administrator creates anywhere, even for accounts nobody configured, and drops
    for repo in ("alice/x", "zed/anything"):
        async with http.put(secured.repo_url("", repo), headers=bearer(ROOT)) as response:
            assert response.status == 201, await response.text()
    async with http.delete(secured.repo_url("", "alice/x"), headers=bearer(BOB)) as response:
        await expect_problem(response, 403, "bob has no admin grant on alice/x")
    async with http.delete(secured.repo_url("", "alice/x"), headers=bearer(ROOT)) as response:
        assert response.status == 204, await response.text()
    async with http.get(secured.repo_url("", "alice/x"), headers=bearer(ROOT)) as response:
        await expect_problem(response, 404, "there is no repository alice/x")
    async with http.get(secured.repo_url("", "alice/x"), headers=bearer(ALICE)) as response:
        await expect_problem(response, 404, "there is no repository alice/x")
    async with http.delete(secured.repo_url("", "alice/x"), headers=bearer(ROOT)) as response:
        await expect_problem(response, 404, "there is no repository alice/x")
    # the owner drops her own
    async with http.delete(secured.repo_url("", "alice/new"), headers=bearer(ALICE)) as response:
        assert response.status == 204, await response.text()
    async with http.get(secured.repo_url("", "alice/new"), headers=bearer(ALICE)) as response:
        await expect_problem(response, 404, "there is no repository alice/new")


# --- public repositories and open servers ---------------------------------------------------------------------

async def test_anonymous_reads_a_public_repository_but_cannot_write(
        secured: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(secured.repo_url("", "alice/public")) as response:
        assert response.status == 200, await response.text()
        meta = await response.json()
    assert meta["id"] == "alice/public" and meta["size"] == 1
    assert await count(http, secured, "alice/public", {}) == 1
    assert await default_graph(http, secured, "alice/public", {}) == PUBLIC_TRIPLE

    for method in ("PUT", "POST"):
        async with http.request(method, secured.repo_url("/service?default", "alice/public"),
                                data='<http://example.org/s> <http://example.org/p> "anonymous" .\n',
                                headers={"Content-Type": NT}) as response:
            await expect_problem(response, 401, "write access to alice/public needs credentials")
    async with http.post(secured.repo_url("/sparql", "alice/public"), data="DROP ALL",
                         headers={"Content-Type": "application/sparql-update"}) as response:
        await expect_problem(response, 401, "write access to alice/public needs credentials")
    async with http.delete(secured.repo_url("", "alice/public")) as response:
        await expect_problem(response, 401, "admin access to alice/public needs credentials")
    async with http.put(secured.repo_url("", "alice/other")) as response:
        await expect_problem(response, 401, "admin access to alice/other needs credentials")

    assert await default_graph(http, secured, "alice/public", {}) == PUBLIC_TRIPLE


async def test_an_open_server_lets_anyone_create_and_write(
        start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server()
    async with http.put(running.repo_url("", "anyone/repo")) as response:
        assert response.status == 201, await response.text()
    async with http.put(running.repo_url("/service?default", "anyone/repo"), data=SHARED_TRIPLE,
                        headers={"Content-Type": NT}) as response:
        assert response.status == 204, await response.text()
    async with http.put(running.repo_url("/service?graph=http://example.org/g", "anyone/repo"), data=PUBLIC_TRIPLE,
                        headers={"Content-Type": NT}) as response:
        assert response.status == 201, await response.text()
    assert await default_graph(http, running, "anyone/repo", {}) == SHARED_TRIPLE
    async with http.get(running.repo_url("", "anyone/repo")) as response:
        assert response.status == 200, await response.text()
        meta = await response.json()
    assert meta["size"] == 2 and meta["graphs"] == ["http://example.org/g"]
    async with http.delete(running.repo_url("", "anyone/repo")) as response:
        assert response.status == 204, await response.text()
    async with http.get(running.repo_url("", "anyone/repo")) as response:
        await expect_problem(response, 404, "there is no repository anyone/repo")


# --- secrecy ----------------------------------------------------------------------------------------------------

async def test_tokens_appear_in_no_response_and_no_log(
        secured: Running, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[dict[str, str]] = [
        bearer(UNKNOWN), basic("mallory", UNKNOWN), bearer(ALICE + "x"), {"Authorization": f"Token {BOB}"},
        bearer(BOB), basic("bob", BOB), bearer(CAROL), bearer(ALICE), bearer(ROOT),
    ]
    for headers in attempts:
        for method, path in (("GET", "/sparql?query=SELECT%20*%20WHERE%20%7B%3Fs%20%3Fp%20%3Fo%7D"),
                             ("GET", ""), ("PUT", "/service?default"), ("DELETE", "/service?graph=urn:x:none"),
                             ("POST", "/sparql")):
            async with http.request(method, secured.repo_url(path, "alice/shared"), data=b"not rdf {",
                                    headers={**headers, "Content-Type": NT}) as response:
                text = await response.text()
                assert response.status >= 200
            no_token_in(text)
            no_token_in(str(dict(response.headers)))
    assert caplog.records, "the server logged nothing; the check would be vacuous"
    no_token_in(caplog.text)
    for record in caplog.records:
        no_token_in(record.getMessage())
        no_token_in(repr(record.args))
