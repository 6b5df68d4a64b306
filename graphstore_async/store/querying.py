"""A query's work on a store thread: run it on the engine and write its answer in the asked format.

What the engine raises becomes a domain error here (a syntax error with its line and column, a failed evaluation,
an I/O failure), and a result is dropped on the thread that made it: pyoxigraph's results may not cross threads.
Also the counts that EmbeddedStore asks of the engine itself.

Two things the engine does otherwise than SPARQL 1.1 are put right here:

* A function it does not know (`ex:f(?x)`, an extension function) fails the whole query, where §17.3 makes the
  call an expression error: a FILTER of it is false, a BIND of it leaves its variable unbound. So every IRI the
  text calls (custom_functions) that the engine itself says it does not know (engine_knows: asked once per IRI)
  is registered as a function that returns no value, which the engine takes for an expression error. An IRI the
  engine knows (the XSD casts) is never registered: a registered function would take the place of its own.
* A CONSTRUCT or DESCRIBE answer is an RDF graph, a set, but the engine may write a triple more than once: it never
  checks one with a blank node, forgets the triples it checked every 2^20 of them, and DESCRIBE does not check at
  all. So triples are written as they come, each the first time only (distinct): nothing is held back before the
  first is written, and the triples seen are remembered as 16-byte digests, at most DISTINCT_TRIPLES of them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast
from urllib.parse import urljoin

import pyoxigraph as ox

from graphstore_async import sparqltext
from graphstore_async.errors import BadRequest
from graphstore_async.formats import Format
from graphstore_async.store import Dataset
from graphstore_async.store.parsing import RDF, RESULTS, query_os_error, sparql_syntax_problem, write_results
from graphstore_async.targets import GraphName

log = logging.getLogger(__name__)
# ~80 MiB of digests at most, for a graph answer of more than a million distinct triples; past it a triple that
# comes later is not remembered, so a repeat of it is written again (as the engine itself does past 2^20)
DISTINCT_TRIPLES = 1 << 20
_PROBE = ox.Store()  # in memory and empty: engine_knows asks it
_ESCAPE = re.compile(r"\\(.)")  # in a local name
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def query_options(dataset: Dataset | None, base_iri: str | None) -> dict[str, Any]:
    """The keyword arguments of pyoxigraph's `Store.query` for a protocol dataset and base IRI."""
    options: dict[str, Any] = {"base_iri": base_iri}
    if dataset:
        options["default_graph"] = [ox.NamedNode(iri) for iri in dataset.default_graphs]
        options["named_graphs"] = [ox.NamedNode(iri) for iri in dataset.named_graphs]
    return options


def query_writer(engine: Callable[[], Any], query: str, format: Format,
                 options: dict[str, Any]) -> Callable[[Any], None]:
    """`write(out)`: the query run on `engine()` (the store's engine when it runs: a checkpoint during a write)
    and its answer serialized into `out`."""
    def write(out: Any) -> None:
        functions = custom_functions(query, options.get("base_iri"))  # lexes the text: here, off the loop
        try:
            result = engine().query(query, **options, **({"custom_functions": functions} if functions else {}))
        except SyntaxError as exc:
            raise sparql_syntax_problem(exc, "query") from exc
        except (RuntimeError, ValueError) as exc:
            raise BadRequest(f"the query failed: {exc}") from exc
        except OSError as exc:
            raise query_os_error(exc, query) from exc
        if isinstance(result, ox.QueryTriples) and format not in RDF:
            raise BadRequest(f"a graph result cannot be written as {format}")
        if not isinstance(result, ox.QueryTriples) and format not in RESULTS:
            raise BadRequest(f"a SELECT or ASK result cannot be written as {format}")
        failure: Exception | None = None
        try:  # solutions are computed as they are written: a SERVICE call can fail here too
            if isinstance(result, ox.QueryTriples):
                ox.serialize(distinct(result), out, RDF[format])
            else:
                write_results(result, out, format)
        except (RuntimeError, ValueError) as exc:
            failure = BadRequest(f"the query failed: {exc}")
        except OSError as exc:
            failure = query_os_error(exc, query)
        # The result must be dropped on this thread, so the error that goes to the reader is made without a
        # traceback that would keep it alive.
        del result
        if failure is not None:
            raise failure

    return write


def distinct(triples: Iterable[Any]) -> Iterator[Any]:
    """The triples in their order, each the first time only (up to DISTINCT_TRIPLES remembered)."""
    seen: set[bytes] = set()
    digest = hashlib.blake2b
    for triple in triples:
        key = digest(str(triple).encode(), digest_size=16).digest()  # N-Triples: one text per triple
        if key in seen:
            continue
        if len(seen) < DISTINCT_TRIPLES:
            seen.add(key)
            if len(seen) == DISTINCT_TRIPLES:
                log.warning("a graph answer passed %d distinct triples: later ones are written without checking "
                            "for repeats", DISTINCT_TRIPLES)
        yield triple


# -- extension functions ---------------------------------------------------------------------------------------

def custom_functions(text: str, base_iri: str | None) -> dict[Any, Callable[..., None]]:
    """pyoxigraph's `custom_functions` for a query or an update (its `custom_functions=` keyword): each function
    the text calls that the engine does not know, as one that returns no value. Empty for most texts."""
    return {ox.NamedNode(iri): _no_value for iri in called_functions(text, base_iri) if not engine_knows(iri)}


def _no_value(*_arguments: Any) -> None:
    """A function the engine does not know: no value, which the engine takes for an expression error."""
    return None


def called_functions(text: str, base_iri: str | None) -> set[str]:
    """The IRIs the text calls: an IRI or a prefixed name followed by `(` (only white space and comments between,
    as the lexer drops them). Prefixed names are expanded with the text's PREFIX declarations, and relative IRIs
    resolved against its BASE or `base_iri`, as the engine does; a prefix that is not declared is the engine's
    syntax error, and not looked at here. A predicate followed by a collection (`?s ex:p (1 2)`) is taken too:
    registering it changes nothing, as nothing calls it."""
    if "(" not in text:
        return set()
    listed = list(sparqltext.tokens(text))
    prefixes: dict[str, str] = {}
    base = base_iri
    found: set[str] = set()
    for index, token in enumerate(listed[:-1]):
        following = listed[index + 1]
        if token.is_keyword("BASE") and following.kind == "iri":
            base = _resolved(following.text[1:-1], base)
        elif (token.is_keyword("PREFIX") and following.kind == "pname" and index + 2 < len(listed)
              and listed[index + 2].kind == "iri"):
            prefixes[following.text[:-1]] = _resolved(listed[index + 2].text[1:-1], base)
        elif following.kind == "other" and following.text == "(" and token.kind in ("iri", "pname"):
            iri = _resolved(token.text[1:-1], base) if token.kind == "iri" else _expanded(token.text, prefixes)
            if iri is not None and _valid(iri):
                found.add(iri)
    return found


def _resolved(iri: str, base: str | None) -> str:
    """An absolute IRI as it is (urljoin would drop an empty fragment: `…/fn#`), a relative one against `base`."""
    return urljoin(base, iri) if base and not _SCHEME.match(iri) else iri


def _expanded(pname: str, prefixes: dict[str, str]) -> str | None:
    prefix, _, local = pname.partition(":")
    namespace = prefixes.get(prefix)
    if namespace is None:
        return None
    return namespace + _ESCAPE.sub(r"\1", local)  # `\x` stands for x; %HH stays as it is


def _valid(iri: str) -> bool:
    try:
        ox.NamedNode(iri)  # a valid IRI is also safe to write between < and >
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def engine_knows(iri: str) -> bool:
    """Whether the engine has a function of this (valid) IRI: an XSD cast, say. Asked of an empty store; only a
    function it says it does not support is unknown (a known one may say that it wants other arguments)."""
    try:
        list(cast(ox.QuerySolutions, _PROBE.query(f"SELECT * WHERE {{ BIND(<{iri}>() AS ?x) }}")))
    except (SyntaxError, RuntimeError, ValueError, OSError) as exc:
        return f"<{iri}> is not supported" not in str(exc)
    return True


# -- counts ----------------------------------------------------------------------------------------------------

def node(graph: GraphName) -> Any:
    return ox.DefaultGraph() if graph is None else ox.NamedNode(graph)


def count(store: Any, graph: GraphName) -> int:
    """How many statements the default graph (None) or a named graph holds."""
    if graph is None:
        solutions = store.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    else:
        iri = ox.NamedNode(graph)  # a valid IRI, so safe to write between < and >
        solutions = store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {iri} {{ ?s ?p ?o }} }}")
    return int(next(iter(cast(ox.QuerySolutions, solutions)))["n"].value)


def outside(store: Any, graph: Any, limit: int) -> int:
    """How many statements the store holds outside a named graph, counting up to `limit` (reading, at most, the
    graph's statements and `limit` others)."""
    query = (f"SELECT (COUNT(*) AS ?n) WHERE {{ SELECT * WHERE {{ {{ ?s ?p ?o }} UNION "
             f"{{ GRAPH ?g {{ ?s ?p ?o }} FILTER (?g != {graph}) }} }} LIMIT {limit} }}")
    return int(next(iter(store.query(query)))["n"].value)
