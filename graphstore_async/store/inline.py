"""Queries that may run on the event loop: one triple pattern, whose every solution costs one index step.

A selective query (one subject's properties) takes the engine a few tens of microseconds, less than handing it to
a store thread and taking its answer back (threads.py, streams.py: the hand-overs, and the GIL changing hands,
cost the loop more than such a query does). But nothing in pyoxigraph interrupts a query, so a query may run on
the loop only when its cost is known to be small before it runs. That is the case here:

* the WHERE clause is exactly one triple pattern, with no variable or blank node twice, no property path, no
  FILTER, OPTIONAL, UNION, GRAPH, BIND, VALUES, subquery or SERVICE: the engine answers it with one scan of one
  index of the default graph, in which *every* entry it reads is a solution (a repeated variable would be a
  filter: `?x ?p ?x` may read millions of entries for no solution);
* SELECT with `*` or plain variables (no DISTINCT, REDUCED, expression or aggregate), ASK, or CONSTRUCT whose
  template is `WHERE` alone or one triple naming every variable of the pattern (CONSTRUCT writes each triple once:
  a template without them could write one triple for a scan of the whole store); no FROM (and, EmbeddedStore
  checks, no protocol dataset); after the pattern at most a LIMIT (no ORDER BY, GROUP BY or OFFSET, which read
  everything before the first solution);
* the text is short, so its parse is bounded too.

The work is then proportional to the output, and EmbeddedStore bounds that: the answer is written into memory and
the attempt given up past INLINE_BYTES, the query then running again on a store thread like any other. What runs
on the loop is one parse and one index scan of at most ~INLINE_BYTES of output (a single value larger than that,
a literal of megabytes, is written whole first).

The test is one regular expression over a strict subset of SPARQL's syntax — ASCII names, IRIs as sparqltext
lexes them, strings without escapes, no comments — matched token by token as the engine's lexer does (each token
atomic, the longest, as in sparqltext). What it does not recognise runs on a store thread, as before: it is a test
for sure-cheap, not for everything that happens to be cheap.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox

from graphstore_async.formats import Format
from graphstore_async.store.parsing import RDF, RESULTS, write_results

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

INLINE_BYTES = 16 * 1024  # what an answer computed on the loop may write (a few hundred solutions)
MAX_TEXT_CHARS = 2048

_END = r"(?![A-Za-z0-9_])"  # a keyword or a name ends here
_IRI = r"<[^<>\"{}|^`\\\x00-\x20]*>"
_PNAME = r"(?>(?:[A-Za-z][A-Za-z0-9_-]*)?:(?:[A-Za-z0-9_][A-Za-z0-9_-]*)?)(?![A-Za-z0-9_:.-])"
_VAR = r"(?>[?$][A-Za-z0-9_]+)" + _END
_BNODE = r"(?>_:[A-Za-z0-9_]+)" + _END
_LITERAL = (r"(?>\"[^\"\\\r\n]*\"(?:@[A-Za-z]+(?:-[A-Za-z0-9]+)*" + _END + r"|\^\^(?:" + _IRI + "|" + _PNAME
            + r"))?|[0-9]+(?:\.[0-9]+)?(?![0-9.eE])|(?:true|false)" + _END + ")")


_S = r"[ \t\r\n]*"  # SPARQL's white space (no comments here)


def _triple(name: str) -> str:
    """`{ subject predicate object .? }`; its terms in groups `name`s, `name`p, `name`o."""
    return (rf"\{{{_S}(?P<{name}s>{_IRI}|{_PNAME}|{_VAR}|{_BNODE}){_S}"
            rf"(?P<{name}p>{_IRI}|{_PNAME}|{_VAR}|a(?![A-Za-z0-9_:.-])){_S}"
            rf"(?P<{name}o>{_IRI}|{_PNAME}|{_VAR}|{_BNODE}|{_LITERAL}){_S}(?:\.{_S})?\}}")


def _keyword(word: str) -> str:
    return f"(?i:{word}){_END}"


_QUERY = re.compile(
    rf"""{_S}(?:(?:{_keyword("BASE")}{_S}{_IRI}|{_keyword("PREFIX")}{_S}(?:[A-Za-z][A-Za-z0-9_-]*)?:{_S}{_IRI}){_S})*
    (?:{_keyword("SELECT")}{_S}(?:\*{_S}|(?:{_VAR}{_S})+)(?:{_keyword("WHERE")}{_S})?
      |(?P<ask>{_keyword("ASK")}){_S}(?:{_keyword("WHERE")}{_S})?
      |{_keyword("CONSTRUCT")}{_S}(?:{_triple("t")}{_S}(?:{_keyword("WHERE")}{_S})?|{_keyword("WHERE")}{_S}))
    {_triple("w")}{_S}
    (?P<limit>{_keyword("LIMIT")}{_S}[0-9]+(?![0-9.eE]){_S})?""",
    re.VERBOSE | re.ASCII,
)
_VARIABLE = re.compile(r"[?$_]")


def single_pattern(text: str) -> bool:
    """Whether the query is one a loop may run (the module's docstring says which, and why)."""
    if len(text) > MAX_TEXT_CHARS:
        return False
    match = _QUERY.fullmatch(text)
    if match is None or (match["ask"] and match["limit"]):  # ASK has no LIMIT
        return False
    names = [_name(match[group]) for group in ("ws", "wp", "wo") if _VARIABLE.match(match[group])]
    if len(names) != len(set(names)):
        return False
    if match["ts"] is not None:  # CONSTRUCT { template } WHERE
        template = {_name(match[group]) for group in ("ts", "tp", "to") if _VARIABLE.match(match[group])}
        return set(names) <= template
    return True


def _name(term: str) -> str:
    """`?x` and `$x` are one variable; a blank node label is one of its own (`_:x`)."""
    return term[1:] if term[0] in "?$" else term


def answer(store: Any, query: str, fmt: Format, kwargs: dict[str, Any]) -> bytes | None:
    """On the loop, for a query `single_pattern` knows to be cheap: its whole answer, or None when it is larger
    than INLINE_BYTES or anything went wrong (its run on a store thread then says what)."""
    out = _Budget(INLINE_BYTES)
    try:
        result = store.query(query, **kwargs)
        if isinstance(result, ox.QueryTriples):
            if fmt not in RDF:
                return None
            result.serialize(out, RDF[fmt])
        elif fmt in RESULTS:
            write_results(result, out, fmt)
        else:
            return None
    except Exception:  # past the budget (_OverBudget), or an error in the query
        return None
    return out.getvalue()


class _OverBudget(Exception):
    pass


class _Budget(io.BytesIO):
    """What is written, in memory, up to `limit` bytes (then _OverBudget)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def write(self, data: ReadableBuffer, /) -> int:
        if self.tell() + memoryview(data).nbytes > self._limit:
            raise _OverBudget()
        return super().write(data)
