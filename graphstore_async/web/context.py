"""Application state (app keys) and what every handler asks of a request: who, which repository, which base."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from graphstore_async.auth import AccessControl, Grant, Principal
from graphstore_async.repositories import Repositories, Repository, repository_id
from graphstore_async.settings import Settings
from graphstore_async.tasks.delivery import EgressPolicy
from graphstore_async.tasks.idempotency import IdempotencyKeys
from graphstore_async.tasks.queue import Queue
from graphstore_async.tasks.records import Tasks
from graphstore_async.tasks.spool import Spool
from graphstore_async.web.bodies import Limits

SETTINGS = web.AppKey("settings", Settings)
TASKS = web.AppKey("tasks", Tasks)
QUEUE = web.AppKey("queue", Queue)
SPOOL = web.AppKey("spool", Spool)
EGRESS = web.AppKey("egress", EgressPolicy)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyKeys)
ACCESS = web.AppKey("access", AccessControl)
REPOSITORIES = web.AppKey("repositories", Repositories)
REDIS = web.AppKey("redis", Redis)
PRINCIPAL = web.RequestKey("principal", Principal)  # set by the authenticate middleware


def settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def base_url(request: web.Request) -> str:
    """scheme://host[:port] of this server as clients reach it."""
    configured = request.app[SETTINGS].base_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


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
