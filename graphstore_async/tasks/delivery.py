"""Sending one notification or callback attempt, and when to try again: back-off, the egress policy, Standard
Webhooks signatures. (Each attempt is a job of its own: tasks/dispatch.py.)

Retried (`next_delay`): connection errors, time-outs, 408, 429 and 5xx (Retry-After honoured), with exponential
back-off and jitter, until `notify_attempts` attempts or `notify_span_s` have passed. Redirects are not
followed and count as failures, like any other 4xx, at once.

Egress: every request goes through `outbound.Client` — the one egress policy, checked at the URL and again at
connect time for every address (see graphstore_async/egress.py). A refusal is final. The server's own origin
(`egress.exempt_origin`: base_url, else the address the task was submitted on) may be reached too.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import hmac
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from graphstore_async import outbound
from graphstore_async.errors import EgressRefused
from graphstore_async.settings import Settings

RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Notification:
    """One HTTP request a task sends when it has ended: its notification or its callback (tasks/notification.py
    makes them)."""

    url: str
    method: str
    headers: Mapping[str, str]
    body: Path | bytes | None  # a file is streamed from the spool on each attempt
    message_id: str  # Standard Webhooks' webhook-id


@dataclass(frozen=True)
class Attempt:
    number: int
    at: float
    status: int | None
    error: str | None
    duration_ms: int
    refused: bool = False  # by the egress policy: final, since asking again meets the same policy

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        return {"attempt": self.number, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
                "status": self.status, "error": self.error, "duration_ms": self.duration_ms,
                "refused": self.refused}


class Deliverer:
    """One ClientSession for every notification a worker sends."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = outbound.Client.from_settings(settings)
        self._secret = _signing_key(settings.notify_signing_key)

    async def close(self) -> None:
        await self._client.close()

    async def attempt(self, note: Notification, number: int, own_origin: str | None,
                      ) -> tuple[Attempt, float | None]:
        """Send `note` once; the attempt, and the delay the receiver asked for (Retry-After), if any."""
        started, clock = time.time(), time.monotonic()
        headers = dict(note.headers)
        try:
            if self._secret:
                headers.update(_signature(self._secret, note.message_id, note.body))
            with note.body.open("rb") if isinstance(note.body, Path) else contextlib.nullcontext(note.body) as data:
                async with self._client.request(note.method, note.url, own_origin=own_origin, headers=headers,
                                                data=data) as response:
                    await response.read()
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    return Attempt(number, started, response.status, None, _ms(clock)), retry_after
        except EgressRefused as exc:
            return Attempt(number, started, None, f"refused: {exc.detail}", _ms(clock), refused=True), None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Attempt(number, started, None, f"{type(exc).__name__}: {exc}", _ms(clock)), None


def next_delay(attempt: Attempt, retry_after: float | None, number: int, first_at: float, now: float,
               settings: Settings) -> float | None:
    """How long until the next attempt, or None when there is to be none: success, an answer not worth asking
    again, `notify_attempts` made, or the next one would start past `notify_span_s` after the first."""
    if attempt.succeeded or not _retryable(attempt) or number >= settings.notify_attempts:
        return None
    delay = retry_after if retry_after is not None else _backoff(settings.notify_backoff_s, number)
    if now + delay - first_at > settings.notify_span_s:
        return None
    return delay


def _retryable(attempt: Attempt) -> bool:
    if attempt.status is None:
        return not attempt.refused
    return attempt.status in RETRY_STATUSES or attempt.status >= 500


def _backoff(base_s: float, number: int) -> float:
    """Exponential back-off with jitter: somewhere in [d/2, d] for d = base * 2^(n-1)."""
    ceiling: float = base_s * 2.0 ** (number - 1)
    return ceiling / 2 + random.random() * ceiling / 2


def _retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds (ASCII digits: `str.isdigit` alone also takes '²' and '٣', which float
    refuses or reads as 3) or an HTTP-date; None for anything else."""
    if not value:
        return None
    seconds = value.strip(" \t")
    if seconds.isascii() and seconds.isdigit():
        return float(seconds)
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


def _ms(clock: float) -> int:
    return int((time.monotonic() - clock) * 1000)
