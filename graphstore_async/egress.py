"""The one egress policy: which URLs, and which addresses, the server's own HTTP client may reach.

Every request the server makes to a URL someone gave it (notifications, callbacks, LOAD) goes through
`outbound.Client`, and is checked three times, the last where the connection is made, so that no spelling of a
host gets past:

1. `EgressPolicy.check_url` (at acceptance, and again before every attempt) parses the URL as aiohttp's client
   will — with yarl, which IDNA/NFKC-normalises the host, so `127。0。0。1` and `１２７.０.０.１` *are* 127.0.0.1 —
   and checks that host. Refused (400): what yarl cannot parse; schemes other than http and https; credentials
   in the URL (they would be logged and shown); a host that spells an IPv4 address other than as a canonical
   dotted quad (2130706433, 0177.0.0.1, 0x7f.0.0.1, 127.1, 0, 127.0.0.1. — resolvers disagree on what those
   mean, so none is read as anything); percent signs and zone ids in hosts; names that are not DNS names;
   localhost; and IP literals the policy refuses.
2. `outbound.PolicyResolver` resolves names (a static hosts map, then the system resolver), keeps only the addresses the
   policy lets through for that name and port, and notes them in the current `Scope`.
3. `outbound.guarded_socket`, aiohttp's `socket_factory`, is called with the address actually connected to — an IP
   literal (which aiohttp connects to without asking the resolver) or a resolved name's — and refuses it unless
   it is public, allowed by `notify_allow`, the scope's own origin, or noted by the resolver for this scope.

Refused addresses, unless `notify_allow` names them (a CIDR, or host:port): what the standard library calls
loopback, private, link-local, multicast, unspecified or reserved, and every row of REFUSED_RANGES — the rows of
IANA's IPv4 and IPv6 special-purpose registries that are not globally reachable, and a few more (said there).
IPv6 forms that embed an IPv4 address: IPv4-mapped and IPv4-compatible are refused outright (a receiver is
named by its IPv4 address); so are 6to4 (2002::/16, deprecated: its relays are third parties) and Teredo
(2001::/32), whatever they embed. NAT64's well-known prefix 64:ff9b::/96 is judged by the IPv4 address it
embeds, since DNS64 gives such an address for every IPv4-only name; its local-use 64:ff9b:1::/48 is refused.

The own origin: requests made inside `outbound.scope(own_origin)` may also reach that host and port (notify-to-self).
`exempt_origin` says what it is — the configured base_url, else the address the server was reached on (its
socket) — never anything a request header says.

EgressRefused(BadRequest, 400) — a URL or address refused; nothing was sent
RefusedAddress(OSError) — a connection refused where it is made; aiohttp wraps it in ClientConnectorError
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

from graphstore_async.errors import EgressRefused
from graphstore_async.settings import Settings, mask_url

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Origin = tuple[str, int]  # (host as connected to: an IDNA name or an address's canonical text, port)


@dataclass(frozen=True)
class Range:
    network: Network
    name: str


def _ranges(*rows: tuple[str, str]) -> tuple[Range, ...]:
    return tuple(Range(ipaddress.ip_network(cidr), name) for cidr, name in rows)


# IANA's IPv4 and IPv6 special-purpose address registries (RFC 6890, as of 2025): the rows that are not
# globally reachable, with the few additions marked *. Most specific first, so a refusal names the row.
REFUSED_RANGES: tuple[Range, ...] = tuple(sorted(_ranges(
    ("0.0.0.0/8", "'this network' (RFC 791)"),
    ("0.0.0.0/32", "'this host on this network' (RFC 1122)"),
    ("10.0.0.0/8", "private-use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link-local (RFC 3927)"),
    ("172.16.0.0/12", "private-use (RFC 1918)"),
    # * whole: its rows the registry calls reachable (PCP and TURN anycast) are infrastructure, not receivers
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.0.0/29", "IPv4 service continuity prefix (RFC 7335)"),
    ("192.0.0.8/32", "IPv4 dummy address (RFC 7600)"),
    ("192.0.0.170/31", "NAT64/DNS64 discovery (RFC 8880)"),
    ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),  # *
    ("192.168.0.0/16", "private-use (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),  # *
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("::/96", "IPv4-compatible, deprecated (RFC 4291)"),  # *
    ("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
    ("::ffff:0:0:0/96", "IPv4-translated (RFC 2765)"),  # *
    ("64:ff9b:1::/48", "IPv4/IPv6 translation, local use (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
    # * whole: its reachable rows (anycast, AMT, AS112, ORCHIDv2, DETs) are infrastructure or identifiers
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2001::/32", "Teredo (RFC 4380)"),
    ("2001:2::/48", "benchmarking (RFC 5180)"),
    ("2001:10::/28", "ORCHID, deprecated (RFC 4843)"),
    ("2001:20::/28", "ORCHIDv2 (RFC 7343)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2002::/16", "6to4, deprecated (RFC 7526)"),  # * whatever it embeds
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fc00::/7", "unique-local (RFC 4193)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("fec0::/10", "site-local, deprecated (RFC 3879)"),  # *
    ("ff00::/8", "multicast (RFC 4291)"),  # *
), key=lambda r: -r.network.prefixlen))

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix: judged by the IPv4 it embeds
_STDLIB = ("loopback", "link_local", "multicast", "unspecified", "private", "reserved")


def refusal(ip: IpAddress) -> str | None:
    """Why the policy refuses this address (its range: 'loopback (RFC 1122)'), or None: it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            reason = refusal(embedded)
            return f"NAT64 (RFC 6052) of {embedded}, {reason}" if reason else None
        embedded_in = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded_in is not None:
            row = next(r for r in REFUSED_RANGES if ip in r.network)
            return f"{row.name}, embedding {embedded_in}"
    for row in REFUSED_RANGES:
        if ip in row.network:
            return row.name
    for name in _STDLIB:
        if getattr(ip, f"is_{name}"):
            return f"{name.replace('_', '-')} (Python's ipaddress)"
    return None


@dataclass(frozen=True)
class Target:
    """A URL as the client will send it, and the host and port it will connect to."""

    url: URL
    host: str  # the IDNA (ASCII) name, or the address's canonical text
    port: int
    ip: IpAddress | None  # None for a name


_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_NAME = re.compile(r"[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*")


def parse(url: str | URL) -> Target:
    """Parse a URL exactly as aiohttp's client does (yarl) and check its form; EgressRefused (400) otherwise."""
    shown = str(url)
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        host, port = parsed.raw_host, parsed.port
    except (ValueError, TypeError, UnicodeError) as exc:
        raise EgressRefused(f"{shown!r} is not a URL the server can use: {exc}", location=shown) from exc
    if parsed.scheme not in ("http", "https") or not parsed.absolute or not host or port is None:
        raise EgressRefused(f"{shown!r} is not an absolute http or https URL", location=shown)
    if "@" in (parsed.raw_authority or ""):
        masked = mask_url(shown)  # not echoed back, nor stored with the problem
        raise EgressRefused(f"{masked!r} has credentials in it (user:password@); they are refused in URLs, which "
                            "get logged and shown: send them in a header", location=masked)
    if not 0 < port < 65536:
        raise EgressRefused(f"{shown!r} has port {port}", location=shown)
    return _target(shown, parsed, host, port)


def _target(shown: str, parsed: URL, host: str, port: int) -> Target:
    if "%" in host:
        raise EgressRefused(f"{shown!r}: a host with a percent sign (an escape or a zone id) is refused",
                            location=shown)
    if ":" in host:
        try:
            ip: IpAddress | None = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise EgressRefused(f"{shown!r}: {host!r} is not an IPv6 address", location=shown) from exc
        return Target(parsed, str(ip), port, ip)
    labels = host.split(".")
    last = labels[-2] if len(labels) > 1 and labels[-1] == "" else labels[-1]
    if _NUMERIC_LABEL.fullmatch(last):  # an IPv4 address to some resolver, whatever else it is to another
        ip = _canonical_ipv4(host)
        if ip is None:
            raise EgressRefused(f"{shown!r}: {host!r} is not an IPv4 address in canonical dotted-quad form "
                                "(four decimal numbers 0-255, no leading zeros, no trailing dot); other "
                                "spellings mean different addresses to different resolvers", location=shown)
        return Target(parsed, host, port, ip)
    if host.endswith(".") or len(host) > 253 or not _NAME.fullmatch(host):
        raise EgressRefused(f"{shown!r}: {host!r} is not a host name (letters, digits, '-' and '_' in labels, "
                            "no trailing dot)", location=shown)
    return Target(parsed, host, port, None)


def _canonical_ipv4(host: str) -> ipaddress.IPv4Address | None:
    try:
        ip = ipaddress.IPv4Address(host)  # refuses leading zeros, short and integer forms
    except ValueError:
        return None
    return ip if str(ip) == host else None


def origin_of(url: str) -> Origin:
    """(host, port) of a URL as the client connects to it — for the own origin, compared with targets."""
    target = parse(url)
    return target.host, target.port


@functools.cache
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """CIDRs (a setting's entries) as networks; ValueError for one that is not a CIDR."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


@dataclass(frozen=True)
class EgressPolicy:
    networks: tuple[Network, ...] = ()
    host_ports: frozenset[Origin] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        networks(settings.trusted_proxies)  # a bad entry fails at start-up, not on the first request
        allowed = []
        host_ports = set()
        for entry in settings.notify_allow:
            try:
                allowed.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                host_ports.add(_host_port(entry))
        return cls(tuple(allowed), frozenset(host_ports))

    def allows(self, ip: IpAddress, port: int, *, names: Iterable[str] = (), own: Origin | None = None) -> bool:
        """The one rule: public addresses, allowed networks, allowed host:ports (by address or by the name that
        resolved to it), and the own origin."""
        if refusal(ip) is None or any(ip in net for net in self.networks):
            return True
        candidates = {(str(ip), port), *((name, port) for name in names)}
        return own in candidates or not candidates.isdisjoint(self.host_ports)

    def check_url(self, url: str | URL, own_origin: str | None = None) -> Target:
        """Check what can be checked without DNS: the URL's form and an IP-literal host. Raises EgressRefused."""
        target = parse(url)
        own = origin_of(own_origin) if own_origin else None
        if target.ip is not None:
            if not self.allows(target.ip, target.port, own=own):
                raise EgressRefused(f"{str(url)!r} points at {target.ip}, {refusal(target.ip)}, which the server "
                                    "may not reach", location=str(url))
        elif _is_localhost(target.host) and not self.allows(ipaddress.IPv4Address("127.0.0.1"), target.port,
                                                             names=(target.host,), own=own):
            raise EgressRefused(f"{str(url)!r} names localhost, which the server may not reach", location=str(url))
        return target


def _host_port(entry: str) -> Origin:
    host, _, port = entry.rpartition(":")
    try:
        if host and port.isdigit():
            return origin_of(f"http://{host}:{port}")
    except EgressRefused:
        pass
    raise ValueError(f"notify_allow entry {entry!r} is neither a CIDR nor host:port")


def _is_localhost(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")  # loopback by definition (RFC 6761)


def exempt_origin(settings: Settings, observed: str | None) -> str | None:
    """The origin that may be reached although its address is refused: base_url if configured; else `observed`
    — the server's address as its socket shows it (or as recorded, from it, in a task) — unless trusted proxies
    are configured: a recorded base may then come from a proxy's X-Forwarded-Host, so there is no exemption
    without base_url."""
    if settings.base_url:
        return settings.base_url
    return None if settings.trusted_proxies else observed


def address_of(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
