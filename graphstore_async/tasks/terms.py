"""A task's asynchronous terms as one typed value, decided once at acceptance and stored beside its operation:
where and how the notification goes (notify mode), and the callback (monitor mode). The worker reads these
fields; it never parses a header. (The request record, tasks/request.py, keeps the headers as SPEC §3 has
them, for display.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from graphstore_async import formats
from graphstore_async.errors import BadAsyncHeader
from graphstore_async.formats import Format

# The formats the PROV graph is written in (tasks/provenance.py serialises each).
NOTIFICATION_FORMATS: tuple[Format, ...] = (
    formats.TURTLE, formats.N_TRIPLES, formats.N_QUADS, formats.RDF_XML, formats.JSON_LD,
)
_BY_MEDIA_TYPE = {f.media_type: f for f in formats.ALL_FORMATS}


@dataclass(frozen=True)
class Notify:
    """Notify mode: the notification's destination and form."""

    location: str
    method: str  # PUT or POST
    report_format: Format  # the PROV graph's format: an import's, update's or delete's notification, a failure's
    gzip: bool
    authorization: str | None = None  # sealed (tasks/credentials.py): what the notification sends as Authorization
    forwarded: bool = False  # that authorization is the caller's own (checked against the location again)
    client_request_id: str | None = None


@dataclass(frozen=True)
class Terms:
    notify: Notify | None = None
    callback: str | None = None  # Prefer: callback; url=…

    @property
    def deliveries(self) -> tuple[str, ...]:
        """The deliveries a task has: its notification, its callback."""
        return (("notification",) if self.notify else ()) + (("callback",) if self.callback else ())

    def without_credentials(self) -> Terms:
        if self.notify is None or self.notify.authorization is None:
            return self
        return replace(self, notify=replace(self.notify, authorization=None, forwarded=False))

    @property
    def holds_credentials(self) -> bool:
        return self.notify is not None and self.notify.authorization is not None

    def to_json(self) -> dict[str, Any]:
        notify = self.notify
        return {"callback": self.callback, "notify": None if notify is None else {
            "location": notify.location, "method": notify.method, "format": notify.report_format.media_type,
            "gzip": notify.gzip, "authorization": notify.authorization, "forwarded": notify.forwarded,
            "client_request_id": notify.client_request_id}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Terms:
        raw = data.get("notify")
        notify = None if raw is None else Notify(
            raw["location"], raw["method"], _BY_MEDIA_TYPE[raw["format"]], bool(raw["gzip"]), raw.get("authorization"),
            bool(raw.get("forwarded")), raw.get("client_request_id"))
        return cls(notify, data.get("callback"))


def report_format(asked: str | None, *, result: Format | None) -> Format:
    """The PROV graph's format, decided at acceptance. An operation without a result (import, update, delete)
    notifies with the graph: the asked type must be one we write (400 otherwise), Turtle when none is asked. An
    operation with a result notifies with it — its asked type was negotiated as the result's — and with the
    graph only when it fails: in the result's format when that is one the graph can take, else Turtle."""
    if result is not None:
        return result if result in NOTIFICATION_FORMATS else formats.TURTLE
    if asked is None:
        return formats.TURTLE
    fmt = _BY_MEDIA_TYPE.get(asked)
    if fmt is None or fmt not in NOTIFICATION_FORMATS:
        raise BadAsyncHeader(
            f"Asynchronous-Content-Type {asked} cannot be produced for a notification; available: "
            + ", ".join(f.media_type for f in NOTIFICATION_FORMATS), header="Asynchronous-Content-Type",
        )
    return fmt
