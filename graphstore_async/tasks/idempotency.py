"""A client's Request-ID as an idempotency key: the same request again gets the task it already has; a
different request under the same key is a conflict (409). Keys are per account and live as long as tasks do.

Anonymous callers (on a server with accounts) share one account, so their Request-IDs would collide: one
client's key would hand another client its task, or a 409 naming it. An anonymous key is therefore scoped by
the request's fingerprint as well: the same request under the same key is still the same task (a retry), and a
different request under it is simply a new task, never a conflict that reveals somebody else's task id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from redis.asyncio import Redis

from graphstore_async.auth import Principal
from graphstore_async.errors import Conflict
from graphstore_async.settings import Settings


def fingerprint(method: str, target: str, body_digests: Iterable[str]) -> str:
    """What makes two requests the same: method, target (path and query) and the digests of their bodies."""
    return hashlib.sha256(json.dumps([method, target, list(body_digests)]).encode()).hexdigest()


def scope(principal: Principal, print_: str) -> str:
    """Whose keys a Request-ID is one of: the account's; for an anonymous caller, the request's own."""
    if principal.anonymous and not principal.admin:  # admin: an open server, where everybody is one account
        return f"{principal.account}:{print_}"
    return principal.account


class IdempotencyKeys:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._prefix = settings.redis_prefix
        self._ttl_s = max(1, int(settings.task_retention_s + settings.job_timeout_s))

    def _key(self, principal: Principal, request_id: str, print_: str) -> str:
        return f"{self._prefix}:idem:{scope(principal, print_)}:{request_id}"

    async def claim(self, principal: Principal, request_id: str, print_: str, task_id: str) -> str | None:
        """Claim `request_id` for a new task; the id of the task that has it already, if this same request
        was made before; Conflict if another request of the same account holds the key."""
        key = self._key(principal, request_id, print_)
        value = json.dumps({"task": task_id, "fingerprint": print_})
        if await self._redis.set(key, value, nx=True, ex=self._ttl_s):
            return None
        raw = await self._redis.get(key)
        if raw is None:  # expired between the two calls: claim again
            return await self.claim(principal, request_id, print_, task_id)
        held = json.loads(raw)
        if held["fingerprint"] != print_:
            raise Conflict(f"Request-ID {request_id!r} was used for a different request (task {held['task']})",
                           task=held["task"])
        return str(held["task"])

    async def release(self, principal: Principal, request_id: str, print_: str) -> None:
        """Give the key back (the task it was claimed for could not be queued)."""
        await self._redis.delete(self._key(principal, request_id, print_))
