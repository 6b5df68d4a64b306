"""Log lines as text or JSON (one object per line), set up once by cli.py (`--log-format`, `log_format`).

A line's structured values ride on its record as `extra=fields(name=value, …)`; the id of the request being
handled is a context variable (set by the HTTP middleware), so every line written while a request is handled
carries it, in whatever module, thread (asyncio.to_thread copies the context) or library the line comes from.

    text: 2026-05-01 12:00:00,123 INFO graphstore_async.request GET /{account}/{repo}/sparql 200 request_id=… user=alice
    json: {"time": "2026-05-01T12:00:00.123Z", "level": "INFO", "logger": "graphstore_async.request",
           "message": "GET /{account}/{repo}/sparql 200", "request_id": "…", "route": "/{account}/{repo}/sparql", …}

What goes into the values is chosen by the callers, never a request's headers or body: no token, no secret.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_FIELDS = "gsa_fields"  # the record attribute that holds a line's values


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a logging call: the line's structured values (None values are left out)."""
    return {_FIELDS: {name: value for name, value in values.items() if value is not None}}


def values_of(record: logging.LogRecord) -> dict[str, Any]:
    """A record's structured values, the request id first (when it was written while a request was handled)."""
    found: dict[str, Any] = getattr(record, _FIELDS, None) or {}
    request_id = getattr(record, "request_id", None)
    return {"request_id": request_id, **found} if request_id and "request_id" not in found else dict(found)


class _RequestContext(logging.Filter):
    """Stamps each record with the id of the request being handled, where the record is made."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """The classic line, then the values as key=value (quoted when they hold spaces, quotes or control
    characters, so one record stays one line)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = " ".join(f"{name}={_text(value)}" for name, value in values_of(record).items())
        if not pairs:
            return line
        head, newline, rest = line.partition("\n")  # after the message, before a traceback
        return f"{head} {pairs}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the values, and a traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in values_of(record).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _text(value: Any) -> str:
    text = str(value)
    if text and text.isprintable() and " " not in text and '"' not in text and "=" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def handler(log_format: str) -> logging.Handler:
    """A stderr handler writing `log_format` ("text" or "json") lines."""
    if log_format not in FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    made = logging.StreamHandler()
    made.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    made.addFilter(_RequestContext())
    return made


def setup(log_format: str, level: str) -> None:
    """The root logger's one handler, once per process (left alone when something set logging up already,
    as pytest does)."""
    logging.basicConfig(level=level.upper(), handlers=[handler(log_format)])
