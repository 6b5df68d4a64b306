"""Sending notifications and callbacks: retries with back-off, the egress policy, Standard Webhooks signatures.

Retried: connection errors, time-outs, 408, 429 and 5xx (Retry-After honoured), with exponential back-off and
full jitter, until `notify_attempts` attempts or `notify_span_s` have passed. Redirects are not followed and
count as failures, like any other 4xx, at once. Every attempt is reported to the caller.

Egress: http and https only; an address that is loopback, private, link-local, multicast, reserved or
unspecified is refused unless `notify_allow` names it (a CIDR, or "host:port"). Names are checked by the
resolver the connection uses — the addresses it returns are the ones connected to, so DNS cannot smuggle one in
— and IP literals (which aiohttp connects to without resolving) are checked before the request. The server's
own origin is always allowed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import email.utils
import hashlib
import hmac
import ipaddress
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from graphstore_async.errors import BadRequest
from graphstore_async.settings import Settings

RETRY_STATUSES = frozenset({408, 429})
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_allowed_origin: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("allowed_origin",
                                                                                         default=None)


class EgressRefused(BadRequest):
    title = "Notification location refused"
    slug = "egress-refused"


class RefusedAddress(OSError):
    """Raised by the resolver: every address of a name is one the policy refuses."""


@dataclass(frozen=True)
class EgressPolicy:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    host_ports: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        networks = []
        host_ports = set()
        for entry in settings.notify_allow:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                host, _, port = entry.rpartition(":")
                if not host or not port.isdigit():
                    raise ValueError(f"notify_allow entry {entry!r} is neither a CIDR nor host:port") from None
                host_ports.add((host.strip("[]").lower(), int(port)))
        return cls(tuple(networks), frozenset(host_ports))

    def address_allowed(self, address: str, host: str, port: int, own: tuple[str, int] | None = None) -> bool:
        """The one rule: public addresses, allow-listed networks and host:ports, and the server's own origin."""
        ip = ipaddress.ip_address(address)
        if _public(ip) or any(ip in net for net in self.networks):
            return True
        allowed = {(address, port), (host.lower(), port)}
        return own in allowed or bool(allowed & self.host_ports)

    def check_url(self, url: str, own_origin: str | None = None) -> tuple[str, int]:
        """Check what can be checked without DNS: scheme, absoluteness, and an IP-literal host.
        Raises EgressRefused; returns (host, port)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EgressRefused(f"{url!r} is not an absolute http or https URL", location=url)
        host = parts.hostname.lower()
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise EgressRefused(f"{url!r} has an invalid port", location=url) from exc
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host, port  # a name: checked when it is resolved
        if not self.address_allowed(str(ip), host, port, _origin(own_origin) if own_origin else None):
            raise EgressRefused(f"{url!r} points at {_kind(ip)} address {ip}, which notifications may not reach",
                                location=url)
        return host, port


class PolicyResolver(AbstractResolver):
    """DNS through the policy: a static hosts map first, then the system resolver; refused addresses dropped."""

    def __init__(self, policy: EgressPolicy, hosts: Mapping[str, str]) -> None:
        self._policy = policy
        self._hosts = {name.lower(): address for name, address in hosts.items()}
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        if host.lower() in self._hosts:
            address = self._hosts[host.lower()]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            found: list[ResolveResult] = [{"hostname": host, "host": address, "port": port, "family": family,
                                           "proto": 0, "flags": 0}]
        else:
            found = await self._resolver.resolve(host, port, family)
        # The origin of the server sending the notification, set by Deliverer.deliver for this request.
        allowed = [r for r in found if self._policy.address_allowed(r["host"], host, port, _allowed_origin.get())]
        if not allowed:
            addresses = ", ".join(r["host"] for r in found)
            raise RefusedAddress(f"{host} resolves to {addresses}, which notifications may not reach")
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


@dataclass(frozen=True)
class Notification:
    url: str
    method: str
    headers: Mapping[str, str]
    body: Path | bytes | None  # a file is streamed from the spool on each attempt
    message_id: str


@dataclass(frozen=True)
class Attempt:
    number: int
    at: float
    status: int | None
    error: str | None
    duration_ms: int
    refused: bool = False  # by the egress policy: final, since asking again meets the same policy

    def to_json(self) -> dict[str, Any]:
        return {"attempt": self.number, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
                "status": self.status, "error": self.error, "duration_ms": self.duration_ms,
                "refused": self.refused}


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: Sequence[Attempt]


class Deliverer:
    """One ClientSession for every notification a worker sends."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.policy = EgressPolicy.from_settings(settings)
        hosts = dict(entry.split("=", 1) for entry in settings.notify_hosts)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=PolicyResolver(self.policy, hosts), use_dns_cache=False),
            timeout=aiohttp.ClientTimeout(total=settings.notify_timeout_s),
            auto_decompress=False,
        )
        self._secret = _signing_key(settings.notify_signing_key)

    async def close(self) -> None:
        await self._session.close()

    async def deliver(self, note: Notification, *, own_origin: str | None,
                      on_attempt: Callable[[Attempt], Awaitable[None]]) -> DeliveryResult:
        settings = self._settings
        attempts: list[Attempt] = []
        first = time.monotonic()
        token = _allowed_origin.set(_origin(own_origin) if own_origin else None)
        try:
            for number in range(1, settings.notify_attempts + 1):
                attempt, retry_after = await self._attempt(note, number, own_origin)
                attempts.append(attempt)
                await on_attempt(attempt)
                if attempt.status is not None and 200 <= attempt.status < 300:
                    return DeliveryResult(True, attempts)
                if not _retryable(attempt) or number == settings.notify_attempts:
                    break
                delay = retry_after if retry_after is not None else _backoff(settings.notify_backoff_s, number)
                if time.monotonic() + delay - first > settings.notify_span_s:
                    break
                await asyncio.sleep(delay)
        finally:
            _allowed_origin.reset(token)
        return DeliveryResult(False, attempts)

    async def _attempt(self, note: Notification, number: int, own_origin: str | None,
                       ) -> tuple[Attempt, float | None]:
        started, clock = time.time(), time.monotonic()
        headers = dict(note.headers)
        try:
            self.policy.check_url(note.url, own_origin)
            if self._secret:
                headers.update(_signature(self._secret, note.message_id, note.body))
            with note.body.open("rb") if isinstance(note.body, Path) else contextlib.nullcontext(note.body) as data:
                async with self._session.request(note.method, note.url, headers=headers, data=data,
                                                 allow_redirects=False) as response:
                    await response.read()
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    return Attempt(number, started, response.status, None, _ms(clock)), retry_after
        except EgressRefused as exc:
            return Attempt(number, started, None, f"refused: {exc.detail}", _ms(clock), refused=True), None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                return Attempt(number, started, None, f"refused: {exc.os_error}", _ms(clock), refused=True), None
            return Attempt(number, started, None, f"{type(exc).__name__}: {exc}", _ms(clock)), None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Attempt(number, started, None, f"{type(exc).__name__}: {exc}", _ms(clock)), None


def _retryable(attempt: Attempt) -> bool:
    if attempt.status is None:
        return not attempt.refused
    return attempt.status in RETRY_STATUSES or attempt.status >= 500


def _backoff(base_s: float, number: int) -> float:
    """Exponential back-off with jitter: somewhere in [d/2, d] for d = base * 2^(n-1)."""
    ceiling: float = base_s * 2.0 ** (number - 1)
    return ceiling / 2 + random.random() * ceiling / 2


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _signing_key(secret: str | None) -> bytes | None:
    if not secret:
        return None
    return base64.b64decode(secret.removeprefix("whsec_"))


def _signature(key: bytes, message_id: str, body: Path | bytes | None) -> dict[str, str]:
    """Standard Webhooks: HMAC-SHA256 over "id.timestamp.body", base64, as "v1,…" (a file read in chunks)."""
    timestamp = str(int(time.time()))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode(), hashlib.sha256)
    if isinstance(body, bytes):
        mac.update(body)
    elif body is not None:
        with body.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                mac.update(chunk)
    digest = mac.digest()
    return {"webhook-id": message_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def _origin(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def _public(ip: IpAddress) -> bool:
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_unspecified
                or ip.is_reserved)


def _kind(ip: IpAddress) -> str:
    for name in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(ip, f"is_{name}"):
            return "a " + name.replace("_", "-")
    return "a refused"


def _ms(clock: float) -> int:
    return int((time.monotonic() - clock) * 1000)
