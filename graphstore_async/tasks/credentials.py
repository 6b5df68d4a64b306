"""Credentials a task keeps until its notification is sent: sealed at rest, forwarded only where they may go.

The notification carries `Asynchronous-Authorization`, or else the caller's own `Authorization`. A token in clear
in Redis for a task's whole retention would be a token anyone with Redis access could use, so the one the
notification will send is sealed (Fernet: AES-CBC + HMAC, from the `cryptography` package) with the server's key,
kept in the task's terms (tasks/terms.py) and removed once the deliveries are over; the request record only says
that a credential was given. The caller's own `Authorization` is kept at all only when it will be forwarded — to
the server's own origin (notify-to-self needs it) or to an origin the operator lists in `notify_forward_auth_to`;
a token sent to a third party is a leaked token.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from graphstore_async.egress import origin_of
from graphstore_async.errors import EgressRefused
from graphstore_async.settings import Settings

SEALED_PREFIX = "sealed:"
KEY_FILE = "sealing.key"


def may_forward(location: str, own_origin: str | None, listed: Iterable[str]) -> bool:
    """Whether the caller's own Authorization may go with a notification to `location`: the own origin (as
    egress.exempt_origin says it is) or a listed one, compared as the client connects (egress.origin_of)."""
    try:
        target = origin_of(location)
        allowed = {origin_of(origin) for origin in (*([own_origin] if own_origin else []), *listed)}
    except EgressRefused:
        return False
    return target in allowed


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        if settings.sealing_key:
            return cls(settings.sealing_key.encode())
        return cls(_key_file(settings.data_dir / KEY_FILE))

    def seal(self, secret: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, stored: str | None) -> str | None:
        """The secret, or None when there is none or it cannot be opened (another key, or tampered with)."""
        if not stored or not stored.startswith(SEALED_PREFIX):
            return None
        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED_PREFIX).encode()).decode()
        except (InvalidToken, UnicodeDecodeError):
            return None


def _key_file(path: Path) -> bytes:
    """The key kept in `path`, made (mode 0600, atomically: two processes starting at once agree) if absent."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(Fernet.generate_key())
    try:
        os.link(draft, path)  # fails if another process made it first: then theirs is the key
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_bytes().strip()
