"""The Prefer request header (RFC 7240) as monitor mode reads it: respond-async, wait=N, callback; url=U.

`wait` is a finite number of seconds (400 otherwise); the server waits at most its `max_wait_s` whatever it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from graphstore_async.errors import BadRequest

_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class Preferences:
    respond_async: bool = False
    wait_s: float | None = None
    callback_url: str | None = None

    @property
    def asynchronous(self) -> bool:
        return self.respond_async or self.callback_url is not None


def parse_prefer(values: Iterable[str]) -> Preferences:
    """Every Prefer header of a request, merged; unknown preferences are ignored, as RFC 7240 says. A preference
    given more than once counts once, as first given (RFC 7240 §2: "only the first instance is to be
    considered"): a later repeat is not read at all, so a bad value in it is ignored too, while a bad value in
    the first is a 400. callback and odata.callback are one preference."""
    respond_async, wait_s, callback = False, None, None
    seen: set[str] = set()
    for value in values:
        for item in _split(value, ","):
            name, _, rest = item.partition(";")
            token, _, token_value = name.partition("=")
            token = _SAME_PREFERENCE.get(token.strip().lower(), token.strip().lower())
            if token in seen:
                continue
            seen.add(token)
            if token == "respond-async":
                respond_async = True
            elif token == "wait":
                wait_s = _seconds(_unquote(token_value))
            elif token == "callback":
                callback = _callback_url(rest)
    return Preferences(respond_async, wait_s, callback)


_SAME_PREFERENCE = {"odata.callback": "callback"}


def _callback_url(parameters: str) -> str:
    for parameter in _split(parameters, ";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "url" and value.strip():
            return _unquote(value)
    raise BadRequest("Prefer: callback needs a url parameter, e.g. callback; url=\"https://example.org/done\"",
                     header="Prefer")


def _seconds(text: str) -> float:
    """RFC 7240's delta-seconds, and a decimal fraction: ASCII digits only. `float` would also take nan, inf,
    1e309 (inf again) and non-ASCII digits, and a wait of nan or inf never ends."""
    if text.startswith("-") and _SECONDS.fullmatch(text[1:]):
        raise BadRequest("Prefer: wait must not be negative", header="Prefer")
    seconds = float(text) if _SECONDS.fullmatch(text) else math.nan
    if not math.isfinite(seconds):
        raise BadRequest(f"Prefer: wait={text!r} is not a number of seconds (digits, and a decimal fraction)",
                         header="Prefer")
    return seconds


def _split(text: str, separator: str) -> list[str]:
    """Split on `separator` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _unquote(text: str) -> str:
    text = text.strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
