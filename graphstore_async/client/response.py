"""A finished HTTP exchange, read whole: status, headers, body; and the problem of an error answer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphstore_async.client.errors import HTTPError
from graphstore_async.formats import charset_of, media_type_of


@dataclass(frozen=True)
class Response:
    """An answer. For an asynchronous operation's result, `status` is the operation's own status (the
    monitor's `AsyncResult` header: 201 for a PUT that made its graph, …), not the monitor's 200."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (a multidict proxy)
    body: bytes = field(repr=False)
    url: str = ""

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters ('' when there is no Content-Type)."""
        return media_type_of(self.headers.get("Content-Type"))

    def text(self) -> str:
        return self.body.decode(charset_of(self.headers.get("Content-Type")) or "utf-8")

    def json(self) -> Any:
        return json.loads(self.body)

    def problem(self) -> dict[str, Any]:
        """The body as a problem object, when it is one (or any JSON object); else its text as the detail."""
        try:
            value = self.json()
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        text = self.body.decode("utf-8", "replace").strip()
        return {"status": self.status, "detail": text[:1000]} if text else {"status": self.status}

    def raise_for_status(self, method: str = "") -> Response:
        """HTTPError for a 4xx or 5xx answer; the response itself otherwise."""
        if self.status >= 400:
            raise HTTPError(self.status, self.problem(), url=self.url, method=method)
        return self
