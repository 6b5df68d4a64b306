"""A client's Request-ID as an idempotency key: the same request again gets the task it already has; a
different request under the same key is a conflict (409). Keys are per account and live as long as tasks do.

Anonymous callers (on a server with accounts) share one account, so their Request-IDs would collide: one
client's key would hand another client its task, or a 409 naming it. An anonymous key is therefore scoped by
the request's fingerprint as well: the same request under the same key is still the same task (a retry), and a
different request under it is simply a new task, never a conflict that reveals somebody else's task id.

The key is claimed by the script that writes the task (tasks/submission.py), so a key never names a task that
was not written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from graphstore_async.auth import Principal


def fingerprint(method: str, target: str, body_digests: Iterable[str]) -> str:
    """What makes two requests the same: method, target (path and query) and the digests of their bodies."""
    return hashlib.sha256(json.dumps([method, target, list(body_digests)]).encode()).hexdigest()


def scope(principal: Principal, print_: str) -> str:
    """Whose keys a Request-ID is one of: the account's; for an anonymous caller, the request's own."""
    if principal.anonymous and not principal.admin:  # admin: an open server, where everybody is one account
        return f"{principal.account}:{print_}"
    return principal.account
