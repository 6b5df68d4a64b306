"""What the protocol layer needs to know of SPARQL text before the engine sees it.

The engine is not trusted with hostile text, so this module lexes a query or an update exactly as pyoxigraph's
grammar (spargebra) does wherever a difference could hide text: white space is only space, tab, CR and LF; a
comment ends at CR or LF; an IRI is `<` + IRI characters + `>` (U+00A0 and other non-ASCII characters
included); strings, variables, prefixed names (with `\\`-escapes and `%HH` in local names) and blank node
labels as in SPARQL 1.1's grammar. On that token stream `scan` answers, in one pass:

* the query form (to negotiate the result format before running);
* whether the text could make the engine fetch a URL: SERVICE or LOAD. The engine's parser matches keywords
  case-insensitively by length, with no word boundary (`SERVICESILENT<…>{}` is SERVICE SILENT, and
  `service:x{}` can be SERVICE `:x`), so a bare word or a prefix that *contains* SERVICE or LOAD counts;
  variables, IRIs, strings and local names cannot hold a keyword the engine would act on;
* how deep brackets (and RDF 1.2 triple terms, `<< … >>`) nest and how many tokens lie outside data blocks
  (DATA { … } and VALUES … { … }): the engine's parser and evaluator recurse on both, and crash the process
  (stack overflow) past a few thousand.

It also writes the protocol's `using-graph-uri` / `using-named-graph-uri` into an update, as USING clauses
before each top-level WHERE of a DELETE/INSERT operation (SPARQL 1.1 Protocol §2.2.3). The store does the real
parsing and reports syntax errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from graphstore_async.errors import DatasetConflict

# SPARQL 1.1 grammar [164]-[173], as spargebra has them (its PN_CHARS_BASE stops at U+FFFD).
_BASE = ("A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d\u2070-\u218f"
         "\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd")
_U = _BASE + "_"
_CHARS = _U + r"\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
_PLX = r"(?:%[0-9A-Fa-f]{2}|\\[_~.\-!$&'()*+,;=/?#@%])"
_PREFIX = rf"[{_BASE}](?:[{_CHARS}.]*[{_CHARS}])?"
_LOCAL = rf"(?:[{_U}:0-9]|{_PLX})(?:(?:[{_CHARS}.:]|{_PLX})*(?:[{_CHARS}:]|{_PLX}))?"
_ESCAPE = r"""(?:\\[tbnrf"'\\]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})"""

_TOKEN = re.compile(
    rf"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>\#[^\r\n]*)
  | (?P<string>'''(?:(?:''|')?(?:[^'\\]|{_ESCAPE}))*'''|\"\"\"(?:(?:\"\"|\")?(?:[^"\\]|{_ESCAPE}))*\"\"\"
               |'(?:[^'\\\n\r]|{_ESCAPE})*'|"(?:[^"\\\n\r]|{_ESCAPE})*")
  | (?P<iri><[^<>"{{}}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][0-9{_U}][0-9{_U}\u00b7\u0300-\u036f\u203f-\u2040]*)
  | (?P<bnode>_:[0-9{_U}](?:[{_CHARS}.]*[{_CHARS}])?)
  | (?P<pname>(?:{_PREFIX})?:(?:{_LOCAL})?)
  | (?P<word>[{_U}][{_CHARS}]*)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<other><<\(|\)>>|<<|>>|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_FETCHING = ("SERVICE", "LOAD")
NO_FETCH = "urn:graphstore-async:not-fetched"
# << >> and <<( )>>: RDF 1.2 triple terms, one level each
_OPENING, _CLOSING = frozenset(("{", "(", "[", "<<", "<<(")), frozenset(("}", ")", "]", ">>", ")>>"))


class QueryForm(Enum):
    SELECT = "SELECT"
    CONSTRUCT = "CONSTRUCT"
    DESCRIBE = "DESCRIBE"
    ASK = "ASK"

    @property
    def is_graph(self) -> bool:
        return self in (QueryForm.CONSTRUCT, QueryForm.DESCRIBE)


class Token(NamedTuple):  # one per token of every query: a tuple is made ~3 times faster than a frozen dataclass
    kind: str
    text: str
    start: int

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


@dataclass(frozen=True)
class Shape:
    """What `scan` found in a query or an update."""

    form: QueryForm | None  # None for an update, or text with no query form (the store reports the error)
    service: tuple[str | None, ...]  # each SERVICE's endpoint IRI; None where it is not a plain <IRI>
    load: tuple[str | None, ...]  # each LOAD's source IRI, likewise
    depth: int  # deepest nesting of { ( [ << (an upper bound when bounds.sparql did not need to scan)
    terms: int  # tokens outside DATA { … } and VALUES … { … } blocks (likewise)
    operand_spans: tuple[tuple[int, int], ...] = ()  # where the plain <IRI> operands of SERVICE and LOAD are

    @property
    def fetches(self) -> bool:
        return bool(self.service or self.load)


def tokens(text: str) -> Iterator[Token]:
    """Significant tokens: white space and comments dropped."""
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


def keyword_in(token: Token, words: Sequence[str]) -> str | None:
    """The first of `words` (upper case) that the engine could read at the start of, or inside, this token: it
    matches keywords case-insensitively by length with no word boundary, in a bare word or a prefix."""
    if token.kind == "word":
        upper = token.text.upper()
    elif token.kind == "pname":
        upper = token.text.partition(":")[0].upper()
    else:
        return None
    return next((word for word in words if word in upper), None)


def scan(text: str) -> Shape:
    """One pass over the text: form, fetching operations, nesting depth and size outside data blocks."""
    form: QueryForm | None = None
    found: dict[str, list[str | None]] = {"SERVICE": [], "LOAD": []}
    depth = deepest = terms = 0
    data_depth: int | None = None  # the depth at which a DATA/VALUES block opened, while inside one
    pending_data = False  # DATA or VALUES seen, its '{' not yet
    listed = list(tokens(text))
    spans: list[tuple[int, int]] = []
    for index, token in enumerate(listed):
        char = token.text if token.kind == "other" else ""
        if char in _OPENING:
            depth += 1
            deepest = max(deepest, depth)
            if char == "{" and pending_data:
                pending_data, data_depth = False, depth
        elif char in _CLOSING:
            if data_depth is not None and depth == data_depth:
                data_depth = None
            depth -= 1
        keyword = keyword_in(token, _FETCHING)  # looked for inside data blocks too: the engine is the judge of those
        if keyword is not None:
            operand = _operand(listed, index) if token.text.upper() == keyword else None
            found[keyword].append(operand.text[1:-1] if operand else None)
            if operand is not None:
                spans.append((operand.start, operand.start + len(operand.text)))
        if data_depth is not None:
            continue
        terms += 1
        if token.kind == "word":
            upper = token.text.upper()
            if form is None and upper in QueryForm.__members__:
                form = QueryForm[upper]
            elif upper in ("DATA", "VALUES"):
                pending_data = True
    return Shape(form, tuple(found["SERVICE"]), tuple(found["LOAD"]), deepest, terms, tuple(spans))


def _operand(listed: Sequence[Token], index: int) -> Token | None:
    """The IRI after SERVICE/LOAD (and an optional SILENT), or None when it is anything but a plain <IRI>."""
    following = listed[index + 1:index + 3]
    if following and following[0].is_keyword("SILENT"):
        following = following[1:]
    if following and following[0].kind == "iri":
        return following[0]
    return None


def without_fetching(text: str, shape: Shape) -> str:
    """The text with every SERVICE and LOAD operand replaced by an IRI the engine cannot fetch (a URN), for a
    syntax check that must not fetch anything. Only for a shape whose every operand is a plain <IRI>."""
    assert None not in shape.service and None not in shape.load
    for start, end in sorted(shape.operand_spans, reverse=True):
        text = f"{text[:start]}<{NO_FETCH}>{text[end:]}"
    return text


@dataclass(frozen=True)
class Load:
    """An update that is one LOAD operation: `LOAD [SILENT] <source> [INTO GRAPH <graph>]`."""

    source: str
    silent: bool
    graph: str | None


def single_load(update: str) -> Load | None:
    """The update as one LOAD with plain <IRI>s, or None when it is anything else.

    The server carries out such a LOAD itself and the engine never parses it, so this is the syntax check: the
    significant tokens must be exactly `LOAD SILENT? IRIREF ( INTO GRAPH IRIREF )? ';'?`. SPARQL 1.1 Update
    ([29] `Update ::= Prologue ( Update1 ( ';' Update )? )?`) allows one `;` after the last operation (an
    empty Update follows it), but not one before the first nor two in a row, and pyoxigraph agrees: `; LOAD
    <u>` and `LOAD <u> ; ;` are syntax errors there. A prologue (BASE, PREFIX), or keywords the engine would
    read without a space between them (LOADSILENT), give None too: the caller refuses rather than guesses."""
    found = list(tokens(update))
    if found and found[-1].text == ";" and found[-1].kind == "other":
        found = found[:-1]
    words = [t.text.upper() if t.kind == "word" else t.kind for t in found]
    silent = words[1:2] == ["SILENT"]
    rest = words[2:] if silent else words[1:]
    if words[:1] != ["LOAD"] or rest not in (["iri"], ["iri", "INTO", "GRAPH", "iri"]):
        return None
    iris = [t.text[1:-1] for t in found if t.kind == "iri"]
    return Load(iris[0], silent, iris[1] if len(iris) == 2 else None)


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
