"""Attacks on the egress policy over real HTTP: hosts spelled so that the client reads them as a loopback address,
non-canonical IPv4, credentials in URLs and URLs the client cannot parse, as Asynchronous-Location and as a
Prefer callback; names mapped to refused addresses at connect time; and the Host header, which must neither
make IRIs nor make another port of 127.0.0.1 "our own origin".

A receiver on 127.0.0.1 stands in for every forbidden target and must record no hit. The servers run a worker,
so that a location wrongly accepted would be delivered to and seen; nothing here leaves loopback (the one
non-loopback address that is named, 100.100.100.200, is refused at acceptance and no task is made for it).
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from conftest import Receiver, Running, StartReceiver, StartServer
from helpers import assert_problem, dump_dataset, raw_exchange

from graphstore_async import outbound
from graphstore_async.egress import EgressPolicy
from graphstore_async.errors import EgressRefused, RefusedAddress
from tests.tasks.notifying import (
    GRAPH,
    QUIET_S,
    create_repository,
    finished,
    only_notification,
    stored_tasks,
    submit,
    triples,
)

# Read by yarl (and so by aiohttp's client) as 127.0.0.1: the policy must check what the client connects to.
UNICODE = ["http://127。0。0。1:{port}/notify", "http://１２７.０.０.１:{port}/notify",
           "http://127．0．0．1:{port}/notify", "http://127\uff610\uff610\uff611:{port}/notify",
           "http://[::ffff:127.0.0.1]:{port}/notify", "http://[64:ff9b::7f00:1]:{port}/notify",
           "http://[2002:7f00:1::]:{port}/notify", "http://localhost:{port}/notify",
           "http://100.100.100.200/latest/meta-data/"]
# Refused for their form even where the address they may mean (127.0.0.1:port) is allowed.
MALFORMED = ["http://2130706433:{port}/notify", "http://0177.0.0.1:{port}/notify",
             "http://0x7f.0.0.1:{port}/notify", "http://127.1:{port}/notify", "http://0:{port}/notify",
             "http://127.0.0.1.:{port}/notify", "http://user:pw@127.0.0.1:{port}/notify",
             "http://:pw@127.0.0.1:{port}/notify", "http://[::1", "http://[::1]x:{port}/",
             "http://127.0.0.1:{port}999/"]


def asking(kind: str, location: str) -> dict[str, str]:
    """The headers that ask for a notification (notify mode) or a callback (monitor mode) to `location`."""
    if kind == "notify":
        return {"Accept-Asynchronous": "notify", "Asynchronous-Location": location}
    return {"Prefer": f'respond-async, callback; url="{location}"'}


async def assert_refused_at_acceptance(http: aiohttp.ClientSession, running: Running, receiver: Receiver,
                                       headers: dict[str, str], header: str) -> dict[str, object]:
    url = running.repo_url("/service?graph=" + GRAPH)
    async with http.put(url, data=triples("before", 1), headers={"Content-Type": "text/turtle"}) as response:
        assert response.status in (201, 204)
    dump = await dump_dataset(http, running)
    async with http.put(url, data=triples("after", 5), headers={"Content-Type": "text/turtle", **headers}) as response:
        problem = await assert_problem(response, 400)
        assert "Request-ID" not in response.headers
    assert problem.get("header") == header, problem
    assert problem["type"] == "tag:graphstore-async,2026:problem/egress-refused", problem
    await asyncio.sleep(QUIET_S)
    assert await stored_tasks(running) == (0, 0)
    assert await dump_dataset(http, running) == dump
    assert receiver.received == []
    return problem


@pytest.mark.parametrize("kind", ["notify", "callback"])
@pytest.mark.parametrize("location", UNICODE)
async def test_unicode_spelling_of_loopback_refused_at_acceptance(start_server: StartServer,
                                                                  start_receiver: StartReceiver,
                                                                  http: aiohttp.ClientSession, kind: str,
                                                                  location: str) -> None:
    receiver = await start_receiver()  # on loopback, not allowed
    running = await start_server()
    await create_repository(http, running)
    location = location.format(port=receiver.host_port.rpartition(":")[2])
    header = "Asynchronous-Location" if kind == "notify" else "Prefer"
    problem = await assert_refused_at_acceptance(http, running, receiver, asking(kind, location), header)
    assert "may not reach" in str(problem["detail"]), problem


@pytest.mark.parametrize("kind", ["notify", "callback"])
@pytest.mark.parametrize("location", MALFORMED)
async def test_malformed_location_refused_although_its_address_is_allowed(start_server: StartServer,
                                                                          start_receiver: StartReceiver,
                                                                          http: aiohttp.ClientSession,
                                                                          kind: str, location: str) -> None:
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port,))
    await create_repository(http, running)
    location = location.format(port=receiver.host_port.rpartition(":")[2])
    header = "Asynchronous-Location" if kind == "notify" else "Prefer"
    problem = await assert_refused_at_acceptance(http, running, receiver, asking(kind, location), header)
    assert ":pw@" not in str(problem), problem  # a password is not echoed


async def test_canonical_form_of_the_same_location_is_delivered(start_server: StartServer,
                                                                start_receiver: StartReceiver,
                                                                http: aiohttp.ClientSession) -> None:
    """The control of the two tests above: the allowed address, spelled canonically, is delivered to."""
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port,))
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("ok", 1),
                           content_type="text/turtle", location=receiver.url())
    await only_notification(http, running, task_id, receiver)


# -- at connect time ---------------------------------------------------------------------------------------------


async def test_name_mapped_to_loopback_is_refused_where_it_connects(start_server: StartServer,
                                                                    start_receiver: StartReceiver,
                                                                    http: aiohttp.ClientSession) -> None:
    receiver = await start_receiver()
    port = receiver.host_port.rpartition(":")[2]
    running = await start_server(notify_hosts=("hooks.test=127.0.0.1",))
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("n", 1),
                           content_type="text/turtle", location=f"http://hooks.test:{port}/notify")
    document = await finished(http, running, task_id, receiver, expected=0)
    attempts = document["notification"]["attempts"]
    assert document["notification"]["delivery"] == "failed", document
    assert len(attempts) == 1 and attempts[0]["refused"] and "127.0.0.1" in attempts[0]["error"], attempts
    assert receiver.received == []


@pytest.mark.parametrize("allow", ["hooks.test:{port}", "127.0.0.1:{port}"], ids=["by-name", "by-address"])
async def test_name_mapped_to_an_allowed_address_is_delivered(start_server: StartServer,
                                                              start_receiver: StartReceiver,
                                                              http: aiohttp.ClientSession, allow: str) -> None:
    receiver = await start_receiver()
    port = receiver.host_port.rpartition(":")[2]
    running = await start_server(notify_hosts=("hooks.test=127.0.0.1",), notify_allow=(allow.format(port=port),))
    await create_repository(http, running)
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("y", 1),
                           content_type="text/turtle", location=f"http://hooks.test:{port}/notify")
    _, note = await only_notification(http, running, task_id, receiver)
    assert note.path == "/notify"


@pytest.mark.parametrize("spelling", ["127.0.0.1", "127。0。0。1", "１２７.０.０.１", "[::ffff:127.0.0.1]",
                                      "localhost"])
async def test_connector_checks_the_address_of_every_connection(start_receiver: StartReceiver,
                                                                spelling: str) -> None:
    """Past the URL check (as a fetcher that forgot it would be): aiohttp connects to an IP literal without
    asking the resolver, and the socket factory refuses it all the same."""
    receiver = await start_receiver()
    port = receiver.host_port.rpartition(":")[2]
    async with aiohttp.ClientSession(connector=outbound.connector(EgressPolicy())) as session:
        with outbound.scope() as current, pytest.raises(aiohttp.ClientConnectorError) as refused:
            async with session.get(f"http://{spelling}:{port}/notify"):
                pass
    assert isinstance(refused.value.os_error, RefusedAddress) or current.refused, refused.value
    assert receiver.received == []


async def test_an_address_approved_for_a_name_is_not_open_to_a_literal(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver()
    port = int(receiver.host_port.rpartition(":")[2])
    client = outbound.Client(EgressPolicy(host_ports=frozenset({("hooks.test", port)})), {"hooks.test": "127.0.0.1"},
                           timeout_s=10)
    try:
        async with client.request("GET", f"http://hooks.test:{port}/by-name") as response:
            assert response.status == 204
        with pytest.raises(EgressRefused):
            async with client.request("GET", f"http://127.0.0.1:{port}/by-address"):
                pass
        async with aiohttp.ClientSession(connector=outbound.connector(client.policy)) as session:
            with pytest.raises(aiohttp.ClientConnectorError):  # no URL check here: the socket factory's refusal
                async with session.get(f"http://127.0.0.1:{port}/by-address"):
                    pass
    finally:
        await client.close()
    assert [r.path for r in receiver.received] == ["/by-name"]


@pytest.mark.parametrize("own", ["http://self.test:{port}", "http://127.0.0.1:{port}"], ids=["name", "address"])
async def test_own_origin_connection_is_not_reused_outside_its_scope(start_receiver: StartReceiver,
                                                                     own: str) -> None:
    """A kept-alive connection is reused without resolving or connecting again: one opened under the own-origin
    exemption must not be left in the pool for a request that has no exemption."""
    receiver = await start_receiver()
    port = receiver.host_port.rpartition(":")[2]
    client = outbound.Client(EgressPolicy(), {"self.test": "127.0.0.1"}, timeout_s=10)
    try:
        async with client.request("GET", f"http://self.test:{port}/own", own_origin=own.format(port=port),
                                  ) as response:
            assert response.status == 204
        with pytest.raises(EgressRefused, match="127.0.0.1"):
            async with client.request("GET", f"http://self.test:{port}/again"):
                pass
    finally:
        await client.close()
    assert [r.path for r in receiver.received] == ["/own"]


# -- the Host header: not our origin, not our IRIs ----------------------------------------------------------------


async def test_host_header_does_not_make_graph_iris(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(base_url=None)
    async with http.put(running.url("/test/repo"), headers={"Host": "evil.example"}) as response:
        assert response.status == 201, await response.text()
        assert response.headers["Location"] == running.url("/test/repo")
    async with http.put(running.repo_url("/service/direct"), data=triples("h", 1),
                        headers={"Content-Type": "text/turtle", "Host": "evil.example"}) as response:
        assert response.status == 201, await response.text()
    async with http.post(running.repo_url("/service"), data=triples("p", 1),
                         headers={"Content-Type": "text/turtle", "Host": "evil.example:6379"}) as response:
        assert response.status == 201, await response.text()
        created = response.headers["Location"]
    assert created.startswith(running.repo_url("/service/")), created
    dump = "\n".join(await dump_dataset(http, running))
    assert f"<{running.repo_url('/service/direct')}>" in dump and f"<{created}>" in dump, dump
    assert "evil.example" not in dump


@pytest.mark.parametrize("host", ["a b", 'x"y', "evil.example:99999", "[::1"])
async def test_bad_host_header_on_a_write_is_no_500(start_server: StartServer, http: aiohttp.ClientSession,
                                                    host: str) -> None:
    running = await start_server(base_url=None)
    await create_repository(http, running)
    async with http.put(running.repo_url("/service/g"), data=triples("b", 1),
                        headers={"Content-Type": "text/turtle", "Host": host}) as response:
        assert response.status == 201, await response.text()
    async with http.post(running.repo_url("/service"), data=triples("c", 1),
                         headers={"Content-Type": "text/turtle", "Host": host}) as response:
        assert response.status == 201, await response.text()
        assert response.headers["Location"].startswith(running.repo_url("/service/"))
    task_id = await submit(http, running, "PUT", "/service/t", body=triples("t", 1), content_type="text/turtle",
                           location=None, headers={"Host": host})
    document = await finished(http, running, task_id)
    assert document["status"] == "completed", document
    assert f"<{running.repo_url('/service/t')}>" in "\n".join(await dump_dataset(http, running))


async def test_bad_host_header_in_raw_bytes_is_no_500(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(base_url=None)
    await create_repository(http, running)
    body = triples("r", 1).decode()
    answer = await raw_exchange(running.url(""), (
        "PUT /test/repo/service/raw HTTP/1.1\r\nHost: a b\r\nContent-Type: text/turtle\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"))
    assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.1 201 Created", b"HTTP/1.1 400 Bad Request"), answer


async def test_host_header_naming_another_port_is_not_our_origin(start_server: StartServer,
                                                                 start_receiver: StartReceiver,
                                                                 http: aiohttp.ClientSession) -> None:
    receiver = await start_receiver()  # stands in for Redis, say, on another loopback port
    running = await start_server(base_url=None)
    await create_repository(http, running)
    for kind in ("notify", "callback"):
        headers = {"Host": receiver.host_port, **asking(kind, receiver.url())}
        await assert_refused_at_acceptance(http, running, receiver, headers,
                                           "Asynchronous-Location" if kind == "notify" else "Prefer")


async def test_notify_to_self_works_from_the_bound_address(start_server: StartServer,
                                                           http: aiohttp.ClientSession) -> None:
    """Without base_url the own origin is the socket the request came in on: a notification to the server itself
    is accepted and delivered, whatever the Host header says."""
    running = await start_server(base_url=None)
    await create_repository(http, running)
    await create_repository(http, running, "test/inbox")
    inbox = running.url("/test/inbox/service?default")
    task_id = await submit(http, running, "PUT", "/service?default", body=triples("self", 2),
                           content_type="text/turtle", location=inbox, headers={"Host": "evil.example"})
    document = await finished(http, running, task_id)
    assert document["notification"]["delivery"] == "delivered", document
    async with http.get(inbox, headers={"Accept": "application/n-triples"}) as response:
        assert response.status == 200
        assert f"urn:uuid:{task_id}" in await response.text()


# -- behind a proxy -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("forwarded", [
    {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "data.example.org"},
    {"X-Forwarded-Host": "client.example, data.example.org", "X-Forwarded-Proto": "http, https"},
    {"Forwarded": 'for=192.0.2.1;host="client.example", for=10.0.0.1;proto=https;host=data.example.org'},
], ids=["x-forwarded", "x-forwarded-last-value", "forwarded"])
async def test_forwarded_headers_make_iris_only_from_a_trusted_proxy(start_server: StartServer,
                                                                     http: aiohttp.ClientSession,
                                                                     forwarded: dict[str, str]) -> None:
    headers = {"Content-Type": "text/turtle", **forwarded}
    for trusted, base in (((), None), (("127.0.0.0/8",), "https://data.example.org")):
        running = await start_server(base_url=None, trusted_proxies=trusted)
        await create_repository(http, running)
        async with http.post(running.repo_url("/service"), data=triples("f", 1), headers=headers) as response:
            assert response.status == 201, await response.text()
            expected = f"{base or running.base}/test/repo/service/"
            assert response.headers["Location"].startswith(expected), (trusted, response.headers["Location"])


@pytest.mark.parametrize("value", ["evil.example/path", "a b", "user@evil.example", 'x"y'])
async def test_forwarded_host_that_is_not_an_origin_is_ignored(start_server: StartServer,
                                                               http: aiohttp.ClientSession, value: str) -> None:
    running = await start_server(base_url=None, trusted_proxies=("127.0.0.0/8",))
    await create_repository(http, running)
    async with http.post(running.repo_url("/service"), data=triples("g", 1),
                         headers={"Content-Type": "text/turtle", "X-Forwarded-Host": value}) as response:
        assert response.status == 201, await response.text()
        assert response.headers["Location"].startswith(running.repo_url("/service/")), response.headers


async def test_forwarded_host_never_makes_an_origin_exempt(start_server: StartServer,
                                                           start_receiver: StartReceiver,
                                                           http: aiohttp.ClientSession) -> None:
    receiver = await start_receiver()
    running = await start_server(base_url=None, trusted_proxies=("127.0.0.0/8",))
    await create_repository(http, running)
    for kind in ("notify", "callback"):
        headers = {"X-Forwarded-Host": receiver.host_port, "Host": receiver.host_port, **asking(kind, receiver.url())}
        await assert_refused_at_acceptance(http, running, receiver, headers,
                                           "Asynchronous-Location" if kind == "notify" else "Prefer")
