"""What an ended task did, as one typed value: the operation's HTTP status, what it changed, where its result is,
or the problem it ended with. Written once, with the task's end; read by the monitor, the status document, the
notification and the client's view of a status document (its JSON is the document's `outcome` and `error`).
Progress while a task runs ("statements read") is not part of it: it lives in the task's own counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphstore_async.operations import Outcome


@dataclass(frozen=True)
class Result:
    status: int | None  # the operation's own HTTP status (what the synchronous request would have answered)
    graph: str | None = None  # the graph it addressed or made
    location: str | None = None  # a POST that made a graph: its IRI
    added: int | None = None  # None: not known (a SPARQL update does not report its counts)
    removed: int | None = None
    processed: int | None = None  # statements read
    content_type: str | None = None  # a query's or export's result, in the spool
    skipped: str | None = None  # LOAD SILENT: why nothing was loaded
    error: dict[str, Any] | None = None  # the problem (RFC 9457) a failed or cancelled task ended with

    @classmethod
    def of(cls, outcome: Outcome, processed: int | None = None) -> Result:
        """`processed`: the statements read as the progress reports last counted them (a small import may never
        have reported: it read at least what it added)."""
        if outcome.statements_added is not None:
            processed = max(processed or 0, outcome.statements_added)
        return cls(outcome.status, outcome.graph, outcome.location, outcome.statements_added,
                   outcome.statements_removed, processed,
                   outcome.format.content_type if outcome.format else None, outcome.skipped)

    @classmethod
    def failed(cls, problem: dict[str, Any], processed: int | None = None) -> Result:
        status = problem.get("status")
        return cls(status if isinstance(status, int) else None, processed=processed, error=problem)

    def outcome_json(self) -> dict[str, Any]:
        """The status document's `outcome`."""
        if self.error is not None:
            return {"status": self.status}
        return {"status": self.status, "graph": self.graph, "location": self.location,
                "statements_added": self.added, "statements_removed": self.removed,
                "statements_processed": self.processed, "content_type": self.content_type,
                **({"skipped": self.skipped} if self.skipped else {})}

    def to_json(self) -> dict[str, Any]:
        return {**self.outcome_json(), "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(data.get("status"), data.get("graph"), data.get("location"), data.get("statements_added"),
                   data.get("statements_removed"), data.get("statements_processed"), data.get("content_type"),
                   data.get("skipped"), data.get("error"))
