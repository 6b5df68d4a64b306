"""What the engine is trusted with: every query, update and RDF body is bounded here before pyoxigraph sees it.

pyoxigraph's parsers and evaluator recurse. Measured with pyoxigraph 0.5.13 on a store thread (8 MiB stack):
3,000 nested groups, 3,000 nested OPTIONALs, 1,000 nested EXISTS or CONCAT, a chain of 10,000 `+`, `||`,
UNION, BIND, MINUS, `!` or triple patterns, and JSON-LD nested 10,000 deep each kill the process with a stack
overflow (SIGSEGV); 64 of each and chains of 4,000 run in well under a second. Nested collections cost
exponential parse time (128 deep: 2.8 s, 256: 29 s). Hence, for SPARQL text: at most `max_query_depth` nested
brackets and `max_query_terms` tokens outside data blocks (DATA { … } and VALUES … { … }, whose rows the
engine keeps in flat lists), and `max_query_bytes` in all. For JSON-LD: at most `max_json_depth` nested
objects and arrays. For RDF/XML: no entity declarations (a 667-byte "billion laughs" body stored a
300-million-character literal). Each check is linear and cheap, and runs
before anything reaches the engine; the callers run them off the event loop for large inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import accumulate

from graphstore_async.errors import FetchRefused, PayloadTooLarge, TooComplex, UnsupportedMediaType
from graphstore_async.settings import Settings
from graphstore_async.sparqltext import Shape, scan

_JSON_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|"', re.DOTALL)  # a lone '"': a string cut short
_MAX_CARRY_BYTES = 16 * 1024 * 1024
_JSON_DELTA = {ord("{"): 1, ord("["): 1, ord("}"): -1, ord("]"): -1}
_ENTITY = b"<!ENTITY"


def sparql(text: str, settings: Settings, *, what: str = "query") -> Shape:
    """The text's shape, once it is within bounds; TooComplex / PayloadTooLarge / FetchRefused otherwise.
    Proportional to the text's length: run it off the event loop for a large text."""
    size = len(text.encode())
    if size > settings.max_query_bytes:
        raise PayloadTooLarge(f"the {what} is {size} bytes; at most {settings.max_query_bytes} are accepted",
                              max_bytes=settings.max_query_bytes)
    shape = scan(text)
    if shape.depth > settings.max_query_depth:
        raise TooComplex(f"the {what} nests brackets {shape.depth} deep; at most {settings.max_query_depth} are "
                         "accepted", depth=shape.depth, max_depth=settings.max_query_depth)
    if shape.terms > settings.max_query_terms:
        raise TooComplex(f"the {what} has {shape.terms} tokens outside data blocks; at most "
                         f"{settings.max_query_terms} are accepted (large data belongs in INSERT DATA or VALUES)",
                         terms=shape.terms, max_terms=settings.max_query_terms)
    _check_fetching(shape, settings)
    return shape


def _check_fetching(shape: Shape, settings: Settings) -> None:
    if shape.load and not settings.allow_load:
        raise FetchRefused("SPARQL LOAD is disabled on this server (it makes the server fetch a URL)")
    if not shape.service:
        return
    if not settings.allow_service:
        raise FetchRefused("federated queries (SERVICE) are disabled on this server")
    for endpoint in shape.service:
        if endpoint is None:
            raise FetchRefused("a SERVICE endpoint must be written as a plain <IRI> here (not a variable, a "
                               "prefixed name, or a keyword run together with another)")
        if not any(endpoint.startswith(prefix) for prefix in settings.service_endpoints):
            raise FetchRefused(f"SERVICE <{endpoint}> is not one of the endpoints this server may query",
                               endpoint=endpoint)


def json_depth(chunks: Iterable[bytes]) -> int:
    """The deepest nesting of objects and arrays in a JSON text given in chunks (strings skipped). A string
    cut by a chunk boundary is carried over to the next chunk."""
    deepest = depth = 0
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        carry = b""
        structure = bytearray()
        for match in _JSON_STRUCTURE.finditer(data):
            token = match.group()
            if token == b'"':  # a string the chunk cuts short: finish it with the next chunk
                carry = data[match.start():]
                break
            if len(token) == 1:
                structure.append(token[0])
        if structure:
            levels = list(accumulate((_JSON_DELTA[b] for b in structure), initial=depth))
            deepest = max(deepest, max(levels))
            depth = levels[-1]
        if len(carry) > _MAX_CARRY_BYTES:
            break  # a string this long is the parser's to refuse
    return deepest


def check_json(chunks: Iterable[bytes], max_depth: int) -> None:
    depth = json_depth(chunks)
    if depth > max_depth:
        raise TooComplex(f"the JSON-LD body nests objects and arrays {depth} deep; at most {max_depth} are "
                         "accepted", depth=depth, max_depth=max_depth)


def check_xml(chunks: Iterable[bytes]) -> None:
    """Refuse RDF/XML that declares entities (`<!ENTITY`, anywhere: the parser is not trusted to ignore one
    out of place) or is not UTF-8."""
    tail = b""  # the last bytes seen: a declaration may straddle chunks
    for number, chunk in enumerate(chunks):
        if number == 0 and chunk.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00")):
            raise UnsupportedMediaType("RDF/XML bodies must be UTF-8")
        window = tail + chunk
        if _ENTITY in window:
            raise TooComplex("RDF/XML that declares entities (<!ENTITY) is refused: entity expansion can blow a "
                             "small body up to gigabytes; send the document with its entities expanded")
        tail = window[-(len(_ENTITY) - 1):]
