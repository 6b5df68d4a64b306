"""The egress policy as pure functions: every row of IANA's special-purpose registries, every spelling of a host
that the HTTP client would read as another, URLs yarl cannot parse, credentials in URLs; the resolver and the
socket factory called directly. Nothing here opens a connection.

The registries' rows are written out here, not imported from the package, so that a row dropped from the
package's table makes a test fail.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from graphstore_async import egress, outbound
from graphstore_async.egress import EgressPolicy
from graphstore_async.errors import EgressRefused, RefusedAddress
from graphstore_async.settings import Settings

# IANA IPv4 Special-Purpose Address Registry: (block, refused by us). Rows the registry calls globally
# reachable but that we refuse are marked: they lie inside a block refused whole.
IPV4_REGISTRY = [
    ("0.0.0.0/8", True), ("0.0.0.0/32", True), ("10.0.0.0/8", True), ("100.64.0.0/10", True),
    ("127.0.0.0/8", True), ("169.254.0.0/16", True), ("172.16.0.0/12", True), ("192.0.0.0/24", True),
    ("192.0.0.0/29", True), ("192.0.0.8/32", True),
    ("192.0.0.9/32", True), ("192.0.0.10/32", True),  # reachable in the registry; inside 192.0.0.0/24
    ("192.0.0.170/32", True), ("192.0.0.171/32", True), ("192.0.2.0/24", True),
    ("192.31.196.0/24", False), ("192.52.193.0/24", False),
    ("192.88.99.0/24", True), ("192.88.99.2/32", True),  # deprecated 6to4 relay anycast, and 6a44 inside it
    ("192.168.0.0/16", True), ("192.175.48.0/24", False), ("198.18.0.0/15", True), ("198.51.100.0/24", True),
    ("203.0.113.0/24", True), ("240.0.0.0/4", True), ("255.255.255.255/32", True),
]

# IANA IPv6 Special-Purpose Address Registry. 64:ff9b::/96 is tested apart: it is judged by what it embeds.
IPV6_REGISTRY = [
    ("::1/128", True), ("::/128", True), ("::ffff:0:0/96", True), ("64:ff9b:1::/48", True), ("100::/64", True),
    ("100:0:0:1::/64", True), ("2001::/23", True), ("2001::/32", True),
    ("2001:1::1/128", True), ("2001:1::2/128", True), ("2001:1::3/128", True),  # anycast; inside 2001::/23
    ("2001:2::/48", True),
    ("2001:3::/32", True), ("2001:4:112::/48", True),  # AMT, AS112-v6: reachable; inside 2001::/23
    ("2001:10::/28", True), ("2001:20::/28", True), ("2001:30::/28", True),  # ORCHID, ORCHIDv2, DETs
    ("2001:db8::/32", True), ("2002::/16", True), ("2620:4f:8000::/48", False), ("3fff::/20", True),
    ("5f00::/16", True), ("fc00::/7", True), ("fe80::/10", True),
]

# Not in the registries, refused all the same.
MORE_REFUSED = ["224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1", "fec0::1", "::7f00:1", "::808:808",
                "::ffff:0:7f00:1"]

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.0", "198.17.255.255",
          "198.20.0.0", "2606:4700:4700::1111", "2a00:1450:4001::1", "64:ff9b::808:808", "64:ff9b::101:101"]


def corners(block: str) -> list[str]:
    network = ipaddress.ip_network(block)
    middle = network.network_address + network.num_addresses // 2
    return [str(network.network_address), str(middle), str(network.broadcast_address)]


@pytest.mark.parametrize(("block", "refused"), IPV4_REGISTRY + IPV6_REGISTRY)
def test_registry_row_has_our_decision(block: str, refused: bool) -> None:
    policy = EgressPolicy()
    for address in corners(block):
        ip = ipaddress.ip_address(address)
        assert (egress.refusal(ip) is not None) is refused, (block, address, egress.refusal(ip))
        assert policy.allows(ip, 80) is not refused, (block, address)


@pytest.mark.parametrize("address", MORE_REFUSED)
def test_multicast_site_local_and_ipv4_compatible_are_refused(address: str) -> None:
    assert egress.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_address_passes(address: str) -> None:
    assert egress.refusal(ipaddress.ip_address(address)) is None
    assert EgressPolicy().check_url(f"http://{_literal(address)}/x").ip == ipaddress.ip_address(address)


@pytest.mark.parametrize(("address", "embedded"), [
    ("::ffff:127.0.0.1", "127.0.0.1"),  # Python 3.11's ipaddress does not call this loopback
    ("::ffff:8.8.8.8", "8.8.8.8"),  # mapped: refused outright, whatever it embeds
    ("2002:7f00:1::", "127.0.0.1"), ("2002:a00:1::1", "10.0.0.1"),
    ("2002:808:808::", "8.8.8.8"),  # 6to4: refused outright, whatever it embeds
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo (RFC 4380's example)
])
def test_ipv6_forms_that_embed_ipv4_are_refused_outright(address: str, embedded: str) -> None:
    reason = egress.refusal(ipaddress.ip_address(address))
    assert reason is not None and embedded in reason, reason


@pytest.mark.parametrize("embedded", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "100.100.100.200",
                                      "192.168.1.1", "0.0.0.0"])
def test_nat64_is_judged_by_the_ipv4_it_embeds(embedded: str) -> None:
    ip = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ipaddress.IPv4Address(embedded)))
    reason = egress.refusal(ip)
    assert reason is not None and embedded in reason, (ip, reason)


def test_the_table_is_most_specific_first_so_a_refusal_names_its_row() -> None:
    assert egress.refusal(ipaddress.ip_address("192.0.0.8")) == "IPv4 dummy address (RFC 7600)"
    assert egress.refusal(ipaddress.ip_address("::1")) == "loopback (RFC 4291)"
    assert egress.refusal(ipaddress.ip_address("100.100.100.200")) == (
        "shared address space, carrier-grade NAT (RFC 6598)")


# -- URLs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127。0。0。1:8080/",  # ideographic full stops
    "http://１２７.０.０.１/",  # fullwidth digits
    "http://127．0．0．1/",  # fullwidth full stops
    "http://１２７。０。０。１/",
    "http://127\uff61 0\uff610\uff611/".replace(" ", ""),  # halfwidth ideographic full stops
    "http://127.0.0.1:80/", "HTTP://127.0.0.1/", "http://[::1]/", "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[64:ff9b::127.0.0.1]/",
])
def test_unicode_and_other_spellings_are_read_as_the_client_reads_them(url: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        EgressPolicy().check_url(url)
    assert "127.0.0.1" in refused.value.detail or "::1" in refused.value.detail, refused.value.detail
    assert refused.value.status == 400


def test_a_unicode_spelling_is_allowed_exactly_where_its_normal_form_is() -> None:
    policy = EgressPolicy(host_ports=frozenset({("127.0.0.1", 8080)}))
    target = policy.check_url("http://127。0。0。1:8080/notify")
    assert (target.host, target.port, str(target.url)) == ("127.0.0.1", 8080, "http://127.0.0.1:8080/notify")
    with pytest.raises(EgressRefused):
        policy.check_url("http://１２７.０.０.１:8081/")


@pytest.mark.parametrize("host", [
    "2130706433", "017700000001", "0x7f000001", "0177.0.0.1", "0x7f.0.0.1", "127.1", "127.0.1", "0", "0x",
    "127.0.0.1.", "127.0.0.01", "127.000.000.001", "1.2.3.4.5", "256.0.0.1", "example.0x10", "a.b.123",
    "8.8.8.8.", "08.8.8.8",
])
def test_non_canonical_ipv4_is_refused_even_where_the_address_is_allowed(host: str) -> None:
    policy = EgressPolicy(networks=(ipaddress.ip_network("0.0.0.0/0"),))  # every IPv4 address allowed
    with pytest.raises(EgressRefused) as refused:
        policy.check_url(f"http://{host}:8080/")
    assert "canonical" in refused.value.detail, refused.value.detail


@pytest.mark.parametrize("url", [
    "http://[::1", "http://[::1]x/", "http://[::g]/", "http://host:99999/", "http://host:-1/",
    "http://ex\u200bample.org/", "http://\u00adexample.org/",
])
def test_a_url_yarl_cannot_parse_is_refused_not_a_crash(url: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        EgressPolicy().check_url(url)
    assert refused.value.status == 400


@pytest.mark.parametrize("url", [
    "/relative", "example.org/x", "ftp://example.org/", "file:///etc/passwd", "gopher://example.org/",
    "http:///x", "http:example.org", "http://example.org:0/", "http://a b/", "http://a%2eb/", "http://x_y!/",
    "http://example.org./", "http://[fe80::1%25eth0]/", "http://%31%32%37.0.0.1/", "http://localhost/",
    "http://LOCALHOST:8080/", "http://api.localhost/",
])
def test_bad_form_is_refused(url: str) -> None:
    with pytest.raises(EgressRefused):
        EgressPolicy().check_url(url)


@pytest.mark.parametrize("url", [
    "http://user:secret-pw@example.org/", "http://user@example.org/", "http://:secret-pw@example.org/",
    "https://user:secret-pw@８.８.８.８/",
])
def test_credentials_in_a_url_are_refused_and_not_echoed(url: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        EgressPolicy().check_url(url)
    assert "credentials" in refused.value.detail
    assert "secret-pw" not in refused.value.detail and "secret-pw" not in str(refused.value.problem())


def test_names_are_left_to_the_resolver_and_normalised_as_the_client_sends_them() -> None:
    target = EgressPolicy().check_url("https://ＥＸＡＭＰＬＥ.org/x")
    assert (target.host, target.port, target.ip) == ("example.org", 443, None)
    assert EgressPolicy().check_url("http://bücher.example/").host == "xn--bcher-kva.example"


# -- the allow list and the own origin -----------------------------------------------------------------------


def test_allow_list_by_network_by_address_and_port_and_by_name() -> None:
    policy = EgressPolicy.from_settings(Settings(notify_allow=("10.0.0.0/8", "127.0.0.1:9000", "[::1]:9001",
                                                               "Hooks.Test:9002")))
    assert policy.check_url("http://10.9.8.7/").ip is not None
    assert policy.check_url("http://127.0.0.1:9000/").port == 9000
    assert policy.check_url("http://[::1]:9001/").port == 9001
    for refused in ("http://127.0.0.1:9001/", "http://[::1]:9000/", "http://127.0.0.2:9000/"):
        with pytest.raises(EgressRefused):
            policy.check_url(refused)
    loopback = ipaddress.ip_address("127.0.0.1")
    assert policy.allows(loopback, 9002, names=("hooks.test",))
    assert not policy.allows(loopback, 9003, names=("hooks.test",))
    assert not policy.allows(loopback, 9002, names=("other.test",))


@pytest.mark.parametrize("entry", ["nonsense", "host:port", "127.0.0.1:", "user@host:80", "a b:80"])
def test_bad_allow_entry_fails_at_start_up(entry: str) -> None:
    with pytest.raises(ValueError, match="notify_allow"):
        EgressPolicy.from_settings(Settings(notify_allow=(entry,)))


def test_bad_trusted_proxy_fails_at_start_up() -> None:
    with pytest.raises(ValueError):
        EgressPolicy.from_settings(Settings(trusted_proxies=("not-a-cidr",)))


def test_own_origin_is_exempt_on_its_port_only() -> None:
    policy = EgressPolicy()
    assert policy.check_url("http://127.0.0.1:8080/inbox", "http://127.0.0.1:8080").port == 8080
    assert policy.check_url("http://127。0。0。1:8080/inbox", "http://127.0.0.1:8080/").port == 8080
    for other in ("http://127.0.0.1:6379/", "http://127.0.0.1/", "http://127.0.0.2:8080/"):
        with pytest.raises(EgressRefused):
            policy.check_url(other, "http://127.0.0.1:8080")


def test_exempt_origin_comes_from_configuration_or_the_socket_never_from_a_proxy() -> None:
    bound = "http://127.0.0.1:8080"
    assert egress.exempt_origin(Settings(), bound) == bound
    assert egress.exempt_origin(Settings(base_url="https://data.example.org"), bound) == "https://data.example.org"
    assert egress.exempt_origin(Settings(trusted_proxies=("10.0.0.0/8",)), "http://127.0.0.1:6379") is None
    assert egress.exempt_origin(Settings(trusted_proxies=("10.0.0.0/8",), base_url="https://d.example"),
                                None) == "https://d.example"


@pytest.mark.parametrize("entry", ["evil.test", "evil.test=not-an-address", "=127.0.0.1"])
def test_bad_static_host_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="notify_hosts"):
        outbound.static_hosts([entry])


# -- where connections are made: the resolver and the socket factory -------------------------------------------


def stream(address: str, port: int) -> tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]]:
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        return socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0)
    return socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "100.100.100.200", "::1",
                                     "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "fe80::1"])
def test_socket_factory_refuses_every_refused_address(address: str) -> None:
    make = outbound.guarded_socket(EgressPolicy())
    with outbound.scope() as current, pytest.raises(RefusedAddress):
        make(stream(address, 80))
    assert len(current.refused) == 1 and address in current.refused[0], current.refused


def test_socket_factory_lets_through_public_allowed_own_and_approved_addresses() -> None:
    policy = EgressPolicy(host_ports=frozenset({("127.0.0.1", 9000)}))
    make = outbound.guarded_socket(policy)
    make(stream("8.8.8.8", 80)).close()  # a socket is made, not connected
    make(stream("127.0.0.1", 9000)).close()
    with outbound.scope("http://127.0.0.1:8080"):
        make(stream("127.0.0.1", 8080)).close()
    with pytest.raises(RefusedAddress):
        make(stream("127.0.0.1", 8080))  # outside that scope, no exemption
    with outbound.scope() as current:
        current.approved.add(("10.0.0.5", 443))  # as the resolver notes an address it let through
        make(stream("10.0.0.5", 443)).close()
        with pytest.raises(RefusedAddress):
            make(stream("10.0.0.5", 444))


async def test_resolver_drops_refused_addresses_and_notes_approved_ones() -> None:
    policy = EgressPolicy(host_ports=frozenset({("hooks.test", 9000)}))
    resolver = outbound.PolicyResolver(policy, {"evil.test": "127.0.0.1", "Hooks.Test": "127.0.0.1",
                                              "public.test": "8.8.8.8"})
    try:
        with outbound.scope() as current:
            with pytest.raises(RefusedAddress, match="127.0.0.1"):
                await resolver.resolve("evil.test", 9000)
            with pytest.raises(RefusedAddress):
                await resolver.resolve("hooks.test", 9001)  # allowed on another port only
            assert [r["host"] for r in await resolver.resolve("HOOKS.test", 9000)] == ["127.0.0.1"]
            assert [r["host"] for r in await resolver.resolve("public.test", 80)] == ["8.8.8.8"]
        assert ("127.0.0.1", 9000) in current.approved and len(current.refused) == 2, current
    finally:
        await resolver.close()


def _literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address
