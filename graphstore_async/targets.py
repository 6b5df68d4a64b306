"""What a graph-store operation addresses — one named graph, the default graph, or the whole dataset — as one type
from the request to the store, and in the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GraphName = str | None  # an IRI; None for the default graph


@dataclass(frozen=True)
class Target:
    graph: GraphName = None  # the named graph's IRI; None: the default graph (or, with `dataset`, every graph)
    dataset: bool = False  # the whole dataset: every graph, the default one included

    @classmethod
    def named(cls, iri: str) -> Target:
        return cls(iri)

    def describe(self) -> str:
        if self.dataset:
            return "the whole dataset"
        return "the default graph" if self.graph is None else f"graph <{self.graph}>"

    def to_json(self) -> dict[str, Any]:
        return {"graph": self.graph, "dataset": self.dataset}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Target:
        return cls(data.get("graph"), bool(data.get("dataset")))


DEFAULT_GRAPH = Target()
DATASET = Target(dataset=True)
