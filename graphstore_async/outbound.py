"""Outbound HTTP: the one client for URLs the server is given, with the egress policy (egress.py) enforced where
each connection is made.

`PolicyResolver` resolves names (a static hosts map, then the system resolver), keeps only the addresses the
policy lets through for that name and port, and notes them in the current `Scope`. `guarded_socket`,
aiohttp's `socket_factory`, is called with the address actually connected to — an IP literal (which aiohttp
connects to without asking the resolver) or a resolved name's — and refuses it unless it is public, allowed by
`notify_allow`, the scope's own origin, or noted by the resolver for this scope. `Client` puts both under every
request, never follows redirects and never decompresses.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from graphstore_async.egress import EgressPolicy, Origin, Target, address_of, origin_of, refusal
from graphstore_async.errors import EgressRefused, RefusedAddress
from graphstore_async.settings import Settings


@dataclass
class Scope:
    """One request's (or one delivery's) exemption, the addresses the resolver approved for it, its refusals."""

    own: Origin | None = None
    approved: set[Origin] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("egress_scope", default=None)


@contextlib.contextmanager
def scope(own_origin: str | None = None) -> Iterator[Scope]:
    """Connections opened inside may also reach `own_origin`. Tasks started inside (aiohttp's resolution and
    happy-eyeballs attempts) share the scope: contextvars are copied into them, the Scope object is shared."""
    current = Scope(origin_of(own_origin) if own_origin else None)
    token = _scope.set(current)
    try:
        yield current
    finally:
        _scope.reset(token)


def _refuse(message: str) -> RefusedAddress:
    current = _scope.get()
    if current is not None:
        current.refused.append(message)
    return RefusedAddress(message)


class PolicyResolver(AbstractResolver):
    """DNS through the policy: a static hosts map first, then the system resolver; refused addresses dropped,
    approved ones noted in the scope for the socket factory."""

    def __init__(self, policy: EgressPolicy, hosts: Mapping[str, str] | None = None) -> None:
        self._policy = policy
        self._hosts = {name.lower(): address for name, address in (hosts or {}).items()}
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        name = host.lower()
        if name in self._hosts:
            address = self._hosts[name]
            found: list[ResolveResult] = [{
                "hostname": host, "host": address, "port": port, "proto": 0, "flags": 0,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET}]
        else:
            found = await self._resolver.resolve(host, port, family)
        current = _scope.get()
        allowed = []
        for result in found:
            ip = address_of(result["host"])
            if ip is not None and self._policy.allows(ip, port, names=(name,),
                                                      own=current.own if current else None):
                allowed.append(result)
                if current is not None:
                    current.approved.add((str(ip), port))
        if not allowed:
            addresses = ", ".join(r["host"] for r in found)
            raise _refuse(f"{host} resolves to {addresses}, which the server may not reach")
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


def guarded_socket(policy: EgressPolicy) -> SocketFactoryType:
    """aiohttp's socket_factory: called with each address about to be connected to, IP literal or resolved."""

    def make(addr_info: AddrInfoType) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        address, port = str(sockaddr[0]), int(sockaddr[1])
        ip = address_of(address)
        current = _scope.get()
        if ip is None or not ((current is not None and (str(ip), port) in current.approved)
                              or policy.allows(ip, port, own=current.own if current else None)):
            reason = (refusal(ip) or "not allowed") if ip is not None else "not an IP address"
            raise _refuse(f"{address} port {port} ({reason}) is refused: the server may not reach it")
        return socket.socket(family=family, type=kind, proto=proto)

    return make


def connector(policy: EgressPolicy, hosts: Mapping[str, str] | None = None, *,
              force_close: bool = False) -> aiohttp.TCPConnector:
    """A connector whose every connection goes through the policy: names by the resolver, every address by the
    socket factory. No DNS cache: a cached answer would skip the resolver's check for the next scope."""
    return aiohttp.TCPConnector(resolver=PolicyResolver(policy, hosts), use_dns_cache=False,
                                socket_factory=guarded_socket(policy), force_close=force_close)


def static_hosts(entries: Iterable[str]) -> dict[str, str]:
    """notify_hosts ("name=address", like curl --resolve) as a map; ValueError for a bad entry."""
    hosts = {}
    for entry in entries:
        name, sep, address = entry.partition("=")
        if not sep or not name.strip() or address_of(address.strip()) is None:
            raise ValueError(f"notify_hosts entry {entry!r} is not name=address")
        hosts[name.strip().lower()] = address.strip()
    return hosts


class Client:
    """The server's one HTTP client for URLs it is given: every connection through the policy, redirects never
    followed, bodies not decompressed. Make one per process, in a running loop; close it.

    A pooled connection is reused without resolving or connecting again, so one that only the own-origin
    exemption let through must not be pooled where a request without it could reuse it: requests that might
    need the exemption go through a second session that never keeps connections alive."""

    def __init__(self, policy: EgressPolicy, hosts: Mapping[str, str] | None = None, *, timeout_s: float) -> None:
        self.policy = policy
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = aiohttp.ClientSession(connector=connector(policy, hosts), auto_decompress=False,
                                              timeout=timeout)
        self._unpooled = aiohttp.ClientSession(connector=connector(policy, hosts, force_close=True),
                                               auto_decompress=False, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout_s: float | None = None) -> Client:
        """The policy of the settings; each request may take `timeout_s` (default: notify_timeout_s)."""
        return cls(EgressPolicy.from_settings(settings), static_hosts(settings.notify_hosts),
                   timeout_s=settings.notify_timeout_s if timeout_s is None else timeout_s)

    async def close(self) -> None:
        await self._session.close()
        await self._unpooled.close()

    @contextlib.asynccontextmanager
    async def request(self, method: str, url: str, *, own_origin: str | None = None,
                      headers: Mapping[str, str] | None = None, data: Any = None,
                      ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send one request and yield its response. EgressRefused if the URL or the address connected to is
        refused (nothing was sent); aiohttp's errors otherwise. `own_origin` may be reached too."""
        target = self.policy.check_url(url, own_origin)
        with scope(own_origin) as current:
            session = self._unpooled if _may_need_exemption(target, current.own) else self._session
            try:
                response = await session.request(method, target.url, headers=headers, data=data,
                                                  allow_redirects=False)
            except aiohttp.ClientConnectorError as exc:
                if current.refused or isinstance(exc.os_error, RefusedAddress):
                    raise EgressRefused("; ".join(current.refused) or str(exc.os_error), location=url) from exc
                raise
            async with response:
                yield response


def _may_need_exemption(target: Target, own: Origin | None) -> bool:
    """Whether the own origin could be what lets this target through: its port, and its host — or, when the own
    origin is an address, any name (which may resolve to it)."""
    if own is None or target.port != own[1]:
        return False
    return target.host == own[0] or (target.ip is None and address_of(own[0]) is not None)
