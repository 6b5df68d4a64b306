"""What the protocol layer needs to know of SPARQL text before a store parses it.

A small tokenizer (comments, IRIs and string literals skipped, so a keyword inside them is never seen) answers:
which query form a query has (to negotiate its result format before running it), and how the protocol's
`using-graph-uri` / `using-named-graph-uri` apply to an update (as USING clauses before each top-level WHERE of
a DELETE/INSERT operation, SPARQL 1.1 Protocol §2.2.3). The store does the real parsing and reports syntax errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

from graphstore_async.errors import DatasetConflict

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
               |'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<iri><[^<>"{}|^`\\\s]*>)
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*:?)
  | (?P<var>[?$][A-Za-z0-9_]+)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class QueryForm(Enum):
    SELECT = "SELECT"
    CONSTRUCT = "CONSTRUCT"
    DESCRIBE = "DESCRIBE"
    ASK = "ASK"

    @property
    def is_graph(self) -> bool:
        return self in (QueryForm.CONSTRUCT, QueryForm.DESCRIBE)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def tokens(text: str) -> Iterator[Token]:
    """Significant tokens: whitespace and comments dropped. A word that ends in ':' is a prefixed name."""
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind not in ("ws", "comment"):
            yield Token(kind, match.group(), match.start())


def query_form(text: str) -> QueryForm | None:
    """The form of a query, or None when none is found (the store will then report the syntax error)."""
    for token in tokens(text):
        if token.kind == "word" and token.text.upper() in QueryForm.__members__:
            return QueryForm[token.text.upper()]
    return None


def uses_service(text: str) -> bool:
    """Whether the text has a SERVICE clause (a federated query makes the server fetch a URL)."""
    return any(token.is_keyword("SERVICE") for token in tokens(text))


def with_using(update: str, using: Sequence[str], using_named: Sequence[str]) -> str:
    """The update with the protocol's dataset as USING / USING NAMED clauses on each DELETE/INSERT ... WHERE.

    An update that names its own dataset (USING or WITH) together with protocol parameters is a 400
    (SPARQL 1.1 Protocol §2.2.3)."""
    if not using and not using_named:
        return update
    clause = " ".join([f"USING <{iri}>" for iri in using] + [f"USING NAMED <{iri}>" for iri in using_named])
    inserts: list[int] = []
    depth = 0
    previous: Token | None = None
    for token in tokens(update):
        if token.is_keyword("USING", "WITH"):
            raise DatasetConflict(
                "the update names its dataset with USING or WITH and the request also has using-graph-uri or "
                "using-named-graph-uri; give one or the other",
            )
        if token.text == "{":
            depth += 1
        elif token.text == "}":
            depth -= 1
        elif depth == 0 and token.is_keyword("WHERE") and not (previous and previous.is_keyword("DELETE")):
            inserts.append(token.start)
        previous = token
    for position in reversed(inserts):
        update = f"{update[:position]}{clause} {update[position:]}"
    return update
