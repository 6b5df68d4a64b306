"""Arguments of a named view: `$name=value` bindings, `limit` and `offset`, applied to its query safely.

A value becomes an RDF term we write ourselves — an IRI the engine accepts (params.absolute_iri), a literal
with its quotes and backslashes escaped — never text copied into the query, so `$x=" } DROP ALL {` is just a
string. The terms go into a VALUES block placed first inside the query's WHERE pattern (so a binding also
restricts what aggregates see), or, for a query with no pattern to open (`DESCRIBE ?x`), after it; `limit` and
`offset` (ASCII digits: params.whole_number) combine with the view's own at the top level.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from graphstore_async.errors import BadRequest
from graphstore_async.params import absolute_iri, whole_number
from graphstore_async.sparqltext import QueryForm, Token, tokens

XSD = "http://www.w3.org/2001/XMLSchema#"
# Whole values, matched with fullmatch (a `$` would let a trailing newline through); digits are ASCII digits.
_LANG = re.compile(r"[a-zA-Z]+(-[a-zA-Z0-9]+)*")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?[0-9]*\.[0-9]+")
_DOUBLE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+")
_TYPED = re.compile(r'"(?P<lexical>(?:[^"\\]|\\.)*)"(?:@(?P<lang>[^@^]+)|\^\^(?P<type><[^>]*>|xsd:[A-Za-z]+))?',
                    re.DOTALL)
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ViewArguments:
    bindings: Mapping[str, str]  # variable name -> SPARQL term text, written by term()
    limit: int | None = None
    offset: int | None = None


def term(value: str) -> str:
    """A `$name=value` value as SPARQL term text: <IRI>, "literal"@lang, "lexical"^^<type>, or a number,
    a boolean, or — anything else, a half-quoted attempt to break out included — a plain string."""
    if value.startswith("<") and value.endswith(">"):
        return iri(value[1:-1])
    match = _TYPED.fullmatch(value) if value.startswith('"') else None
    if match is not None:
        lexical = _unescape(match["lexical"])
        if match["lang"]:
            if not _LANG.fullmatch(match["lang"]):
                raise BadRequest(f"{match['lang']!r} is not a language tag")
            return f"{literal(lexical)}@{match['lang']}"
        if match["type"]:
            datatype = match["type"]
            datatype = datatype[1:-1] if datatype.startswith("<") else XSD + datatype.removeprefix("xsd:")
            return f"{literal(lexical)}^^{iri(datatype)}"
        return literal(lexical)
    for pattern, datatype in ((_INTEGER, "integer"), (_DECIMAL, "decimal"), (_DOUBLE, "double")):
        if pattern.fullmatch(value):
            return f"{literal(value)}^^<{XSD}{datatype}>"
    if value in ("true", "false"):
        return f"{literal(value)}^^<{XSD}boolean>"
    return literal(value)


def iri(text: str) -> str:
    return f"<{absolute_iri(text)}>"


def literal(text: str) -> str:
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return f'"{escaped}"'


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m[1], m[1]), text)


def parse_arguments(arguments: Mapping[str, str], query: str) -> ViewArguments:
    """`$name=value`, `limit` and `offset` from a request's arguments; 400 for a variable the query lacks."""
    names = {t.text[1:] for t in tokens(query) if t.kind == "var"}
    bindings: dict[str, str] = {}
    for key, value in arguments.items():
        if not key.startswith("$"):
            continue
        name = key[1:]
        if not _VARIABLE.fullmatch(name) or name not in names:
            raise BadRequest(f"the view has no variable ?{name} to bind", variable=name)
        bindings[name] = term(value)
    return ViewArguments(bindings, _count(arguments, "limit"), _count(arguments, "offset"))


def _count(arguments: Mapping[str, str], name: str) -> int | None:
    return whole_number(arguments[name], what=name) if name in arguments else None


def apply(query: str, arguments: ViewArguments) -> str:
    """The query with the bindings as a VALUES block inside its WHERE pattern, and limit/offset applied."""
    if arguments.limit is not None or arguments.offset is not None:
        query = _paginate(query, list(tokens(query)), arguments.limit, arguments.offset)
    if not arguments.bindings:
        return query
    found = list(tokens(query))
    names = sorted(arguments.bindings)
    block = (f" VALUES ({' '.join('?' + n for n in names)}) "
             f"{{ ({' '.join(arguments.bindings[n] for n in names)}) }} ")
    position = _pattern_start(found)
    if position is None:  # no pattern to open (DESCRIBE ?x) or a template (CONSTRUCT WHERE): the query's own
        return f"{query}\n{block}"  # trailing VALUES clause instead
    return query[:position] + block + query[position:]


def _pattern_start(found: list[Token]) -> int | None:
    """Just after the '{' that opens the query's WHERE pattern; None when there is none to open: a DESCRIBE
    without WHERE, or the CONSTRUCT WHERE short form (whose pattern is its template)."""
    index, form = next(((i, QueryForm[t.text.upper()]) for i, t in enumerate(found)
                        if t.kind == "word" and t.text.upper() in QueryForm.__members__), (None, None))
    if index is None:
        return None
    rest = found[index + 1:]
    if form is QueryForm.CONSTRUCT:
        if rest and rest[0].is_keyword("WHERE"):
            return None
        if rest and rest[0].text == "{":  # the template: skip to its end
            rest = rest[_matching(rest, 0) + 1:]
    opening = next((t for t in rest if t.text == "{"), None)
    return None if opening is None else opening.start + 1


def _matching(found: list[Token], opening: int) -> int:
    depth = 0
    for i in range(opening, len(found)):
        depth += {"{": 1, "}": -1}.get(found[i].text, 0)
        if depth == 0:
            return i
    raise BadRequest("the view's query has an unbalanced '{'")


def _paginate(query: str, found: list[Token], limit: int | None, offset: int | None) -> str:
    """Top-level LIMIT/OFFSET replaced by the combination of the view's and the request's."""
    depth, own_limit, own_offset, cut, spans = 0, None, 0, None, []
    for i, t in enumerate(found):
        depth += {"{": 1, "}": -1}.get(t.text, 0)
        if depth == 0 and t.is_keyword("LIMIT", "OFFSET") and i + 1 < len(found) and found[i + 1].text.isdigit():
            value = int(found[i + 1].text)
            if t.is_keyword("LIMIT"):
                own_limit = value
            else:
                own_offset = value
            spans.append((t.start, found[i + 1].start + len(found[i + 1].text)))
        elif depth == 0 and t.is_keyword("VALUES") and cut is None and i > 0:
            cut = t.start
    for start, end in reversed(spans):
        query = query[:start] + query[end:]
        if cut is not None and cut > start:
            cut -= end - start
    total_offset = own_offset + (offset or 0)
    candidates = [x for x in (limit, None if own_limit is None else max(own_limit - (offset or 0), 0))
                  if x is not None]
    clause = (f" LIMIT {min(candidates)}" if candidates else "") + (f" OFFSET {total_offset}" if total_offset else "")
    if cut is None:
        return query + clause
    return query[:cut] + clause + " " + query[cut:]
