"""Application state (app keys) and what every handler asks of a request: who, which repository, which base."""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web
from redis.asyncio import Redis

from graphstore_async.auth import AccessControl, Grant, Principal
from graphstore_async.egress import EgressPolicy, exempt_origin, networks
from graphstore_async.fetching import Fetcher
from graphstore_async.metrics import Metrics
from graphstore_async.repositories import Repositories, Repository, repository_id
from graphstore_async.settings import Settings
from graphstore_async.tasks.liveness import Workers
from graphstore_async.tasks.queue import Queue
from graphstore_async.tasks.records import Tasks
from graphstore_async.tasks.spool import Spool
from graphstore_async.tasks.submission import Submission
from graphstore_async.web.bodies import Limits

SETTINGS = web.AppKey("settings", Settings)
TASKS = web.AppKey("tasks", Tasks)
QUEUE = web.AppKey("queue", Queue)
SPOOL = web.AppKey("spool", Spool)
EGRESS = web.AppKey("egress", EgressPolicy)
FETCHER = web.AppKey("fetcher", Fetcher)  # SPARQL LOAD sources, through the egress policy
WORKERS = web.AppKey("workers", Workers)  # live workers (heartbeats in Redis), for /ready
SUBMISSION = web.AppKey("submission", Submission)  # claim, record and queue a task at once
ACCESS = web.AppKey("access", AccessControl)
REPOSITORIES = web.AppKey("repositories", Repositories)
REDIS = web.AppKey("redis", Redis)
METRICS = web.AppKey("metrics", Metrics)  # this application's registry (and its worker's)
PRINCIPAL = web.RequestKey("principal", Principal)  # set by the authenticate middleware


def settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def base_url(request: web.Request) -> str:
    """scheme://host[:port] of this server in IRIs and Location headers: base_url if configured; else, from a
    trusted proxy, the origin it forwards; else the address the request came in on. Never the Host header, which
    any client writes."""
    configured = request.app[SETTINGS].base_url
    if configured:
        return configured.rstrip("/")
    return _forwarded_origin(request) or bound_url(request)


def own_origin(request: web.Request) -> str | None:
    """The origin the egress policy lets this server's requests reach although its address is refused
    (egress.exempt_origin: base_url, else the socket's address)."""
    settings = request.app[SETTINGS]
    return settings.base_url or exempt_origin(settings, bound_url(request))  # the socket's address only if needed


def bound_url(request: web.Request) -> str:
    """scheme://address[:port] of the socket the request came in on: the server as it listens, from no header."""
    sockname = request.get_extra_info("sockname")
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), int(sockname[1])
    else:  # a Unix socket, say: what the server was told to listen on
        host, port = request.app[SETTINGS].host, request.app[SETTINGS].port
    mapped = _ipv4_mapped(host)
    if mapped:  # a dual-stack socket's IPv4 client: the server is at that IPv4 address
        host = mapped
    elif ":" in host:
        host = "[" + host.replace("%", "%25") + "]"
    scheme = "https" if request.get_extra_info("sslcontext") else "http"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"


def _ipv4_mapped(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return str(mapped) if mapped else None


_FORWARDED_HOST = re.compile(r"([a-z0-9_-]+(\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


def _forwarded_origin(request: web.Request) -> str | None:
    """The origin a trusted proxy says the client asked for (RFC 7239 Forwarded, else X-Forwarded-Proto/-Host;
    the last value, the one our peer added); None from anyone else, or for a value that is not an origin."""
    if not _from_trusted_proxy(request):
        return None
    if request.forwarded:
        last = request.forwarded[-1]
        proto, host = last.get("proto"), last.get("host")
    else:
        proto = _last(request.headers.getall("X-Forwarded-Proto", []))
        host = _last(request.headers.getall("X-Forwarded-Host", []))
    proto, host = (proto or "http").strip().lower(), (host or "").strip().lower()
    if proto not in ("http", "https") or not _FORWARDED_HOST.fullmatch(host):
        return None
    return f"{proto}://{host}"


def _from_trusted_proxy(request: web.Request) -> bool:
    trusted = networks(request.app[SETTINGS].trusted_proxies)
    peer = request.get_extra_info("peername")
    if not trusted or not isinstance(peer, tuple) or not peer:
        return False
    host = str(peer[0]).partition("%")[0]
    try:
        address = ipaddress.ip_address(_ipv4_mapped(host) or host)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def _last(values: list[str]) -> str | None:
    items = [item for value in values for item in value.split(",")]
    return items[-1] if items else None


def user_iri(request: web.Request) -> str:
    return f"{base_url(request)}/{principal(request).account}"


def repository_iri(request: web.Request, repo: Repository) -> str:
    return f"{base_url(request)}/{repo.id}"


def limits(request: web.Request) -> Limits:
    s = request.app[SETTINGS]
    return Limits(max_bytes=s.max_body_bytes, max_gzip_ratio=s.max_gzip_ratio)


def requested_repository_id(request: web.Request) -> str:
    return repository_id(request.match_info["account"], request.match_info["repo"])


async def repository(request: web.Request, grant: Grant) -> Repository:
    """The repository named in the path, once the caller is known to hold `grant` on it (401/403, then 404)."""
    repo_id = requested_repository_id(request)
    request.app[ACCESS].require(principal(request), repo_id, grant)
    return await request.app[REPOSITORIES].get(repo_id)
