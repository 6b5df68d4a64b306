"""What the engine is trusted with: every query, update and RDF body is bounded here before pyoxigraph sees it.

pyoxigraph's parsers and evaluator recurse. Measured with pyoxigraph 0.5.13 on a store thread (8 MiB stack):
3,000 nested groups, 3,000 nested OPTIONALs, 1,000 nested EXISTS or CONCAT, a chain of 10,000 `+`, `||`,
UNION, BIND, MINUS, `!` or triple patterns, and JSON-LD nested 10,000 deep each kill the process with a stack
overflow (SIGSEGV); 64 of each and chains of 4,000 run in well under a second. Nested collections cost
exponential parse time (128 deep: 2.8 s, 256: 29 s). Hence, for SPARQL text: at most `max_query_depth` nested
brackets and `max_query_terms` tokens outside data blocks (DATA { … } and VALUES … { … }, whose rows the
engine keeps in flat lists), and `max_query_bytes` in all. For JSON-LD: at most `max_body_depth` nested
objects and arrays, and for Turtle, TriG, N-Triples and N-Quads at most as many nested RDF 1.2 triple terms
(`<< … >>`: 20,000 deep crashed loading and dumping; 5,000 did not). For RDF/XML: no entity declarations (a
667-byte "billion laughs" body stored a 300-million-character literal). Each check is linear and cheap, and
runs before anything reaches the engine; the callers run them off the event loop for large inputs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from itertools import accumulate

from graphstore_async import formats
from graphstore_async.errors import FetchRefused, PayloadTooLarge, TooComplex, UnsupportedMediaType
from graphstore_async.formats import Format
from graphstore_async.settings import Settings
from graphstore_async.sparqltext import Shape, query_form, scan

_JSON_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|"', re.DOTALL)  # a lone '"': a string cut short
_MAX_CARRY_BYTES = 16 * 1024 * 1024
_JSON_DELTA = {ord("{"): 1, ord("["): 1, ord("}"): -1, ord("]"): -1}
_ENTITY = b"<!ENTITY"
_TURTLE_FAMILY = (formats.TURTLE, formats.TRIG, formats.N_TRIPLES, formats.N_QUADS)
# Turtle-family text as far as triple-term nesting goes: long and short strings (with escapes), IRIs, escaped
# local-name characters (`\#` is no comment), comments, << and >>; last, a quote that opens nothing closed.
_TURTLE_STRUCTURE = re.compile(
    rb'"""(?:[^"\\]|\\.|"(?!""))*"""' rb"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    rb'|"(?:[^"\\\n\r]|\\.)*"' rb"|'(?:[^'\\\n\r]|\\.)*'"
    rb'|<[^<>"{}|^`\\\x00-\x20]*>|\\.|#[^\n\r]*|<<|>>'
    rb'|"""' rb"|'''" rb'|"' rb"|'",
    re.DOTALL)
_LONG_QUOTES = (b'"""', b"'''")
NEWLINE = b"\n"


def sparql(text: str, settings: Settings, *, what: str = "query") -> Shape:
    """The text's shape, once it is within bounds; TooComplex / PayloadTooLarge / FetchRefused otherwise.
    Proportional to the text's length: run it off the event loop for a large text."""
    size = len(text.encode())
    if size > settings.max_query_bytes:
        raise PayloadTooLarge(f"the {what} is {size} bytes; at most {settings.max_query_bytes} are accepted",
                              max_bytes=settings.max_query_bytes)
    shape = _plainly_within(text, settings) or scan(text)
    if shape.depth > settings.max_query_depth:
        raise TooComplex(f"the {what} nests brackets {shape.depth} deep; at most {settings.max_query_depth} are "
                         "accepted", depth=shape.depth, max_depth=settings.max_query_depth)
    if shape.terms > settings.max_query_terms:
        raise TooComplex(f"the {what} has {shape.terms} tokens outside data blocks; at most "
                         f"{settings.max_query_terms} are accepted (large data belongs in INSERT DATA or VALUES)",
                         terms=shape.terms, max_terms=settings.max_query_terms)
    _check_fetching(shape, settings)
    return shape


def _plainly_within(text: str, settings: Settings) -> Shape | None:
    """The shape of a text that cannot break a bound, found without scanning it (most queries: the scan costs
    ~50 us of Python, this ~3): one with no more brackets than the depth bound (nesting needs brackets), no more
    characters than the token bound (a token is at least one), and no SERVICE or LOAD anywhere in it (a keyword
    the engine reads is in the text). Its depth and terms are then these upper bounds. None: scan it."""
    brackets = sum(text.count(opening) for opening in ("{", "(", "[", "<<"))
    if brackets > settings.max_query_depth or len(text) > settings.max_query_terms:
        return None
    upper = text.upper()
    if "SERVICE" in upper or "LOAD" in upper:
        return None
    return Shape(query_form(text), (), (), brackets, len(text))


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


def check_body(fmt: Format, chunks: Callable[[], Iterable[bytes]], max_depth: int) -> None:
    """The bounds of an RDF body of this format, read (once, or twice) from `chunks()`: TooComplex past them."""
    if fmt is formats.JSON_LD:
        check_json(chunks(), max_depth)
    elif fmt is formats.RDF_XML:
        check_xml(chunks())
    elif fmt in _TURTLE_FAMILY and _holds(chunks(), b"<<"):  # only RDF 1.2 data pays for the exact scan
        depth = triple_term_depth(chunks())
        if depth > max_depth:
            raise TooComplex(f"the {fmt} body nests triple terms (<< … >>) {depth} deep; at most {max_depth} are "
                             "accepted", depth=depth, max_depth=max_depth)


def _holds(chunks: Iterable[bytes], needle: bytes) -> bool:
    """Whether the text holds `needle`, also across a chunk boundary, at the speed of bytes.find."""
    tail = b""
    for chunk in chunks:
        if needle in tail + chunk[:len(needle) - 1] or needle in chunk:
            return True
        tail = chunk[1 - len(needle):]
    return False


def triple_term_depth(chunks: Iterable[bytes]) -> int:
    """The deepest nesting of `<< … >>` in Turtle, TriG, N-Triples or N-Quads; strings, IRIs, comments and escaped
    local names skipped. The text is read a line at a time as far as chunks go (no token that counts spans a line
    end but a long string, which is carried on until it closes); a short string broken by a line end is the
    parser's error, which it meets before anything after it."""
    deepest = depth = 0
    pending = b""
    for chunk in itertools.chain(chunks, [b""]):  # the empty chunk last: what is pending is read then
        data = pending + chunk
        whole = not chunk or len(data) > _MAX_CARRY_BYTES
        cut = len(data) if whole else data.rfind(NEWLINE) + 1
        part, pending = data[:cut], data[cut:]
        for match in _TURTLE_STRUCTURE.finditer(part):
            token = match.group()
            if token == b"<<":
                depth += 1
                deepest = max(deepest, depth)
            elif token == b">>":
                depth = max(depth - 1, 0)
            elif token in _LONG_QUOTES and not whole:
                pending = part[match.start():] + pending  # a long string not closed yet: read on
                break
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
