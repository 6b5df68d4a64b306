"""PATCH with a SPARQL update (Graph Store Protocol, RFC 5789): the update confined to its target graph.

The target graph becomes the default graph of each of the update's operations, written into the text, which the
engine then runs as one transaction like any update:

    INSERT DATA { T }  DELETE DATA { T }  DELETE WHERE { T }   ->  … { GRAPH <g> { T } }
    DELETE { T } INSERT { T } WHERE { P }  (or either template alone)  ->  WITH <g> DELETE { T } …

so every triple the update writes, deletes or matches without naming a graph is one of <g>'s. For the default
graph nothing is written: it is every operation's default graph already. An update that names a graph itself —
GRAPH, WITH or USING anywhere, or a graph management operation (LOAD, CLEAR, CREATE, DROP, ADD, MOVE, COPY) —
would reach past its target, and is refused (422, RFC 5789 §2.2), as is anything whose operations cannot be told
apart here. The text has been parsed by the engine before (web/graphstore.py checks its syntax first, so a syntax
error is reported at the client's own line and column), and is read here as sparqltext lexes it, the way the
engine does: braces are counted outside strings, IRIs and comments.

Like the engine, which matches keywords case-insensitively by length with no word boundary, a bare word or a
prefix *containing* GRAPH, WITH or USING counts as naming a graph (`graph:x { … }` can be GRAPH `:x`).
"""

from __future__ import annotations

from collections.abc import Sequence

from graphstore_async.errors import UnprocessablePatch
from graphstore_async.sparqltext import Token, keyword_in, tokens

MANAGEMENT = ("LOAD", "CLEAR", "CREATE", "DROP", "ADD", "MOVE", "COPY")
NAMING = ("GRAPH", "WITH", "USING")
_PROLOGUE = {"BASE": 1, "PREFIX": 2, "VERSION": 1}  # a declaration's keyword, and how many tokens follow it


def confine(update: str, graph: str | None) -> str:
    """`update` with `graph` (an absolute IRI; None: the default graph) as the default graph of every operation;
    UnprocessablePatch when it names a graph of its own or is not made of DELETE/INSERT operations."""
    listed = list(tokens(update))
    for token in listed:
        named = keyword_in(token, NAMING)
        if named is not None:
            raise UnprocessablePatch(
                f"the patch names a graph ({named} at character {token.start + 1}): a PATCH changes its target "
                "graph only, which is the default graph of its operations; send updates of other graphs to the "
                "SPARQL endpoint", keyword=named)
    insertions: list[tuple[int, str]] = []
    index = 0
    while index < len(listed):
        token = listed[index]
        if token.kind == "other" and token.text == ";":
            index += 1
        elif token.kind == "word" and token.text.upper() in _PROLOGUE:
            index += 1 + _PROLOGUE[token.text.upper()]
        else:
            index = _operation(listed, index, graph, insertions)
    for position, text in sorted(insertions, reverse=True):
        update = f"{update[:position]}{text}{update[position:]}"
    return update


def _operation(listed: Sequence[Token], index: int, graph: str | None, insertions: list[tuple[int, str]]) -> int:
    """Read the operation at `index`, note what confines it, and return the index after it."""
    first = listed[index]
    word = first.text.upper() if first.kind == "word" else ""
    if word in MANAGEMENT:
        raise management(word)
    following = listed[index + 1] if index + 1 < len(listed) else None
    if word not in ("INSERT", "DELETE") or following is None:
        raise _unreadable(first)
    if following.is_keyword("DATA") or (word == "DELETE" and following.is_keyword("WHERE")):
        opening = index + 2
        closing = _closing(listed, opening)
        if graph is not None:  # the quads' block becomes one GRAPH block: … { GRAPH <g> { T } }
            insertions.append((listed[opening].start + 1, f" GRAPH <{graph}> {{"))
            insertions.append((listed[closing].start, "} "))
        return closing + 1
    if following.text != "{":
        raise _unreadable(first)
    # DELETE { T } INSERT { T } WHERE { P }, or one template alone: WITH names the default graph of all three
    if graph is not None:
        insertions.append((first.start, f"WITH <{graph}> "))
    after = _closing(listed, index + 1) + 1
    if word == "DELETE" and after < len(listed) and listed[after].is_keyword("INSERT"):
        after = _closing(listed, after + 1) + 1
    if after >= len(listed) or not listed[after].is_keyword("WHERE"):
        raise _unreadable(first)
    return _closing(listed, after + 1) + 1


def management(operation: str) -> UnprocessablePatch:
    """The refusal of a graph management operation (LOAD, CLEAR, …) in a patch."""
    return UnprocessablePatch(f"a PATCH holds INSERT and DELETE operations on its graph; {operation} manages graphs "
                              "and belongs at the SPARQL endpoint", operation=operation)


def _closing(listed: Sequence[Token], opening: int) -> int:
    """The index of the `}` that closes the `{` at `opening`."""
    if opening >= len(listed) or listed[opening].text != "{" or listed[opening].kind != "other":
        raise _unreadable(listed[min(opening, len(listed) - 1)])
    depth = 0
    for index in range(opening, len(listed)):
        token = listed[index]
        if token.kind == "other" and token.text == "{":
            depth += 1
        elif token.kind == "other" and token.text == "}":
            depth -= 1
            if depth == 0:
                return index
    raise _unreadable(listed[opening])


def _unreadable(token: Token) -> UnprocessablePatch:
    return UnprocessablePatch(
        f"the patch cannot be confined to its graph: at character {token.start + 1} ({token.text[:40]!r}) an "
        "INSERT DATA, DELETE DATA, DELETE WHERE or DELETE/INSERT … WHERE operation was expected")
