"""The server's own origin for the egress policy (graphstore_async/egress.py): `origin_of` as the client connects
to it, and how it meets a notification's URL. What tests/test_egress.py covers (address ranges, spellings of
hosts, the allow list, exempt_origin's choice) is not repeated here."""

from __future__ import annotations

import ipaddress

import pytest

from graphstore_async import egress
from graphstore_async.egress import EgressPolicy
from graphstore_async.errors import EgressRefused
from graphstore_async.settings import Settings


@pytest.mark.parametrize(("url", "origin"), [
    ("http://example.org", ("example.org", 80)),
    ("https://example.org/x?y#z", ("example.org", 443)),
    ("http://Example.ORG:8080/", ("example.org", 8080)),
    ("https://example.org:80", ("example.org", 80)),
    ("http://bücher.example/", ("xn--bcher-kva.example", 80)),
    ("http://127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("http://127。0。0。1:8080", ("127.0.0.1", 8080)),
    ("http://[::1]:9000/", ("::1", 9000)),
    ("http://[0:0:0:0:0:0:0:1]/", ("::1", 80)),
    ("http://[2001:DB8::0:1]:443", ("2001:db8::1", 443)),
])
def test_origin_of_is_the_host_and_port_connected_to(url: str, origin: tuple[str, int]) -> None:
    assert egress.origin_of(url) == origin


@pytest.mark.parametrize("url", ["", "/relative", "ftp://example.org/", "http://user:pw@example.org/",
                                 "http://127.1:8080/", "http://example.org:0/", "http://localhost./"])
def test_origin_of_a_url_the_client_cannot_use_is_400(url: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        egress.origin_of(url)
    assert refused.value.problem()["status"] == 400


def test_own_origin_spelt_otherwise_is_the_same_origin() -> None:
    policy = EgressPolicy()
    for own in ("http://127.0.0.1:8080", "HTTP://127.0.0.1:8080/some/path", "http://127。0。0。1:8080"):
        assert policy.check_url("http://127.0.0.1:8080/inbox", own).port == 8080
    assert policy.check_url("http://[::1]/done", "http://[0::1]:80").ip == ipaddress.ip_address("::1")


def test_own_origin_does_not_depend_on_the_scheme_only_on_host_and_port() -> None:
    """The exemption is for where the client connects: the server's own https port reached over http is it."""
    assert EgressPolicy().check_url("http://127.0.0.1:443/", "https://127.0.0.1").port == 443
    with pytest.raises(EgressRefused):
        EgressPolicy().check_url("http://127.0.0.1/", "https://127.0.0.1")


def test_own_origin_that_is_not_a_url_is_400() -> None:
    with pytest.raises(EgressRefused):
        EgressPolicy().check_url("https://example.org/", "not a url")


def test_a_public_url_needs_no_own_origin() -> None:
    target = EgressPolicy().check_url("https://8.8.8.8/hook")
    assert (target.host, target.port, target.ip) == ("8.8.8.8", 443, ipaddress.ip_address("8.8.8.8"))


def test_exempt_origin_without_anything_configured_or_observed_is_none() -> None:
    assert egress.exempt_origin(Settings(), None) is None
    assert egress.exempt_origin(Settings(base_url=""), "http://127.0.0.1:8080") == "http://127.0.0.1:8080"


@pytest.mark.parametrize(("text", "address"), [("127.0.0.1", "127.0.0.1"), ("::1", "::1"),
                                               ("2001:DB8::1", "2001:db8::1")])
def test_address_of_an_ip_literal(text: str, address: str) -> None:
    assert egress.address_of(text) == ipaddress.ip_address(address)


@pytest.mark.parametrize("text", ["example.org", "127.1", "[::1]", "", "1.2.3.4:80"])
def test_address_of_anything_else_is_none(text: str) -> None:
    assert egress.address_of(text) is None
