"""The request record (SPEC §3): the terms of the original request, captured as headers, with its method,
repository and arguments — kept with the task for display and for the notification.

Credentials in it (Authorization, Asynchronous-Authorization) are sealed when stored (tasks/credentials.py)
and masked in every view of it that leaves the task store (`public`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CAPTURED_HEADERS = (
    "Prefer",
    "Asynchronous-Authorization",
    "Asynchronous-Content-Type",
    "Asynchronous-Content-Encoding",
    "Asynchronous-Location",
    "Asynchronous-Method",
    "Authorization",
    "Client-Request-ID",
    "Content-Type",
    "Context",
    "Request-ID",
)
CREDENTIAL_HEADERS = frozenset({"Authorization", "Asynchronous-Authorization"})
MASK = "***"  # a credential's place in a record that no longer (or never did) keep it


@dataclass(frozen=True)
class RequestRecord:
    """The terms of the original request, captured as headers, plus method, repository and arguments."""

    headers: Mapping[str, str]
    method: str
    repository: str
    arguments: Mapping[str, list[str]] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def without_credentials(self) -> RequestRecord:
        """The record with each credential replaced by a mask: the fact that one was given, not its value."""
        headers = {k: (MASK if k in CREDENTIAL_HEADERS else v) for k, v in self.headers.items()}
        return RequestRecord(headers, self.method, self.repository, self.arguments)

    def public(self) -> dict[str, Any]:
        """The record without credentials: for status documents and logs."""
        headers = self.without_credentials().headers
        return {"headers": headers, "method": self.method, "repository": self.repository,
                "arguments": dict(self.arguments)}

    def to_json(self) -> str:
        return json.dumps({"headers": dict(self.headers), "method": self.method, "repository": self.repository,
                           "arguments": dict(self.arguments)})

    @classmethod
    def from_json(cls, text: str) -> RequestRecord:
        data = json.loads(text)
        return cls(data["headers"], data["method"], data["repository"], data.get("arguments", {}))
