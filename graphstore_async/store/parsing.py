"""What passes between our formats and pyoxigraph's: RDF sources as it reads them (formats, options, validation
after bounds.py's checks, blank nodes named repeatably, line formats in blocks that parse alone), result formats,
and the problems its parsers and query evaluation report — syntax errors with line and column, store and SERVICE
failures without file names."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from graphstore_async import bounds, formats
from graphstore_async.errors import BadGateway, StoreUnavailable, SyntaxProblem
from graphstore_async.store import Progress, Source

log = logging.getLogger(__name__)
PROGRESS_EVERY = 50_000
DEFAULT_BODY_DEPTH = 100
_PARSER_PREFIX = re.compile(r"^Parser error at line \d+ (?:between columns \d+ and \d+|column \d+): ")
_SPARQL_POSITION = re.compile(r"error at (\d+):(\d+): ?(.*)", re.DOTALL)

# A statement of these never spans a line end: any run of whole lines parses alone, as it does in the whole body.
LINE_FORMATS = frozenset({formats.N_TRIPLES, formats.N_QUADS})
# A blank node label as these formats write it: `_:`, then label characters, not ending with a dot. In a body
# that parsed, every label matches exactly so (the character after one is never a label character); a match in a
# literal, an IRI or a comment is a label too many, which costs time, never correctness.
_LABEL = re.compile(rb"_:[\w\-:\x80-\xff]++(?:\.+[\w\-:\x80-\xff]++)*+")
_BLOOM_BITS = 1 << 25  # 4 MiB: about 1 false "seen" in 10,000 labels for a million labels
SHARED_LABELS_LIMIT = 100_000  # past this many labels shared between blocks, every line with a label is kept back
_QUADS_OF = {formats.N_TRIPLES: formats.N_QUADS, formats.TURTLE: formats.TRIG}  # a triples format's quads format

RDF = {  # our formats as pyoxigraph's
    formats.TURTLE: ox.RdfFormat.TURTLE,
    formats.N_TRIPLES: ox.RdfFormat.N_TRIPLES,
    formats.N_QUADS: ox.RdfFormat.N_QUADS,
    formats.TRIG: ox.RdfFormat.TRIG,
    formats.RDF_XML: ox.RdfFormat.RDF_XML,
    formats.JSON_LD: ox.RdfFormat.JSON_LD,
}


RESULTS = {  # result formats as pyoxigraph's
    formats.SPARQL_JSON: ox.QueryResultsFormat.JSON,
    formats.SPARQL_XML: ox.QueryResultsFormat.XML,
    formats.CSV: ox.QueryResultsFormat.CSV,
    formats.TSV: ox.QueryResultsFormat.TSV,
}
# An ASK answer in CSV and TSV, which the SPARQL 1.1 CSV/TSV note leaves out: as Jena writes it (and reads it back,
# as SPARQLWrapper's users do), a one-column table `_askResult` holding true or false. pyoxigraph writes a bare word.
BOOLEAN_TABLES = {formats.CSV: (b"_askResult\r\n", b"\r\n"), formats.TSV: (b"?_askResult\n", b"\n")}


def write_results(result: Any, out: Any, fmt: formats.Format) -> None:
    """A SELECT or ASK answer in one of RESULTS."""
    if isinstance(result, ox.QueryBoolean) and fmt in BOOLEAN_TABLES:
        header, end = BOOLEAN_TABLES[fmt]
        out.write(header + (b"true" if result else b"false") + end)
    else:
        result.serialize(out, RESULTS[fmt])


def parse_options(source: Source) -> dict[str, Any]:
    """How pyoxigraph reads a source: its file, format and base IRI."""
    options: dict[str, Any] = {"path": str(source.path), "format": RDF[source.format]}
    if source.base_iri:
        options["base_iri"] = source.base_iri
    return options


def scoped_quads(sources: Sequence[Source], target: Any, scope: str) -> Iterator[Any]:
    """The sources' triples in `target` (None: each quad in its own graph), each blank node named `{scope}{n:x}` by
    order of first appearance (parsing is deterministic, so a second pass over the same sources names them the
    same)."""
    names: dict[str, Any] = {}
    blank, quad = ox.BlankNode, ox.Quad

    def named(term: Any) -> Any:
        if type(term) is not blank:
            return term
        found = names.get(term.value)
        if found is None:
            found = names[term.value] = blank(f"{scope}{len(names):x}")
        return found

    for source in sources:
        names.clear()  # blank node labels are local to a document
        for q in ox.parse(**parse_options(source), rename_blank_nodes=False):
            yield quad(named(q.subject), q.predicate, named(q.object),
                       named(q.graph_name) if target is None else target)


def line_blocks(path: Path, size: int) -> Iterator[bytes]:
    """A line-format file in blocks of whole lines of about `size` bytes (a longer line is a block of its own).
    The same file and size always give the same blocks."""
    with path.open("rb") as fh:
        rest = b""
        while data := fh.read(size):
            block = rest + data
            end = max(block.rfind(b"\n"), block.rfind(b"\r")) + 1  # a lone CR ends a line too
            rest = block[end:]
            if end:
                yield block[:end]
        if rest:
            yield rest


def shared_labels(blocks: Iterable[bytes]) -> frozenset[bytes] | None:
    """The blank node labels found in more than one of `blocks` (and perhaps a few found in one only), or None when
    there are more than SHARED_LABELS_LIMIT: labels are local to a document, so a block parsed alone must not hold
    a label that another block holds too (kept_back). In bounded memory: the labels seen so far are a Bloom
    filter, which never answers "not seen" for a label it was given."""
    bits = bytearray(_BLOOM_BITS // 8)
    mask = _BLOOM_BITS - 1
    shared: set[bytes] = set()
    for block in blocks:
        if b"_:" not in block:
            continue
        for label in set(_LABEL.findall(block)):
            h = hash(label)
            step = (h >> 32) | 1
            seen = True
            for i in (h & mask, (h + step) & mask, (h + 2 * step) & mask):
                byte, bit = i >> 3, 1 << (i & 7)
                if not bits[byte] & bit:
                    seen = False
                    bits[byte] |= bit
            if seen:
                shared.add(label)
                if len(shared) > SHARED_LABELS_LIMIT:
                    return None
    return frozenset(shared)


def kept_back(block: bytes, shared: frozenset[bytes] | None) -> tuple[bytes, bytes]:
    """`block` split into the lines that may be parsed alone and the lines that must be parsed with those of the
    other blocks kept back: those holding a label in `shared` (None: any label), and with them every line of the
    block holding one of their labels. A line ends at LF here (a CR inside one only makes it longer)."""
    if (shared is not None and not shared) or b"_:" not in block:
        return block, b""
    found = _LABEL.findall(block)
    hot = set(found) if shared is None else shared.intersection(found)
    spans: dict[int, int] = {}  # the lines kept back: start -> end
    pending = set(hot)
    while pending:
        more: set[bytes] = set()
        for match in _LABEL.finditer(block):
            if match.group() in pending:
                start = block.rfind(b"\n", 0, match.start()) + 1
                if start not in spans:
                    spans[start] = end = block.find(b"\n", match.end()) + 1 or len(block)
                    more.update(_LABEL.findall(block, start, end))
        pending = more - hot
        hot |= pending
    if not spans:
        return block, b""
    kept, back, at = [], [], 0
    for start in sorted(spans):
        kept.append(block[at:start])
        back.append(block[start:spans[start]])
        at = spans[start]
    kept.append(block[at:])
    return b"".join(kept), b"".join(back)


def _bounded(source: Source, max_body_depth: int) -> None:
    """The checks a body passes before the parser sees it (bounds.check_body): nesting, entities."""
    def chunks() -> Iterator[bytes]:
        with source.path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                yield chunk

    bounds.check_body(source.format, chunks, max_body_depth)


def validate(source: Source, *, progress: Progress | None = None, before: int = 0,
             max_body_depth: int = DEFAULT_BODY_DEPTH) -> int:
    """Parse a source once without storing it (after its bounds are checked); the number of statements, or
    SyntaxProblem / TooComplex."""
    _bounded(source, max_body_depth)
    count = 0
    try:
        for count, _ in enumerate(ox.parse(**parse_options(source)), start=1):
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(before + count)
    except SyntaxError as exc:
        raise rdf_syntax_problem(exc, source, hint=_sibling_hint(source, count)) from exc
    if progress is not None:
        progress(before + count)
    return count


def rdf_syntax_problem(exc: SyntaxError, source: Source, hint: str = "") -> SyntaxProblem:
    line, column = exc.lineno, exc.offset
    message = _PARSER_PREFIX.sub("", str(exc.msg or exc))
    where = f" at line {line}, column {column}" if line else ""
    return SyntaxProblem(f"the {source.format} body does not parse{where}: {message}{hint}", line=line, column=column)


def _sibling_hint(source: Source, parsed: int) -> str:
    """For a triples format that failed after `parsed` statements where its quads format (the same syntax, and
    graphs) reads on: a body of quads sent with the wrong type, which a hint names. Only on the error path, and
    bounded by it: the second parse stops at the statement the first one failed on."""
    sibling = _QUADS_OF.get(source.format)
    if sibling is None:
        return ""
    try:
        quads = ox.parse(**{**parse_options(source), "format": RDF[sibling]})
        if next(itertools.islice(quads, parsed, None), None) is None:
            return ""
    except (SyntaxError, ValueError):
        return ""
    return (f"; the body looks like {sibling} (it names graphs): send it as {sibling.media_type}, which a graph "
            "target takes too (every quad goes into that graph)")


def sparql_syntax_problem(exc: SyntaxError, what: str) -> SyntaxProblem:
    match = _SPARQL_POSITION.match(str(exc))
    if match is None:
        return SyntaxProblem(f"the {what} does not parse: {exc}")
    line, column, message = int(match[1]), int(match[2]), match[3]
    return SyntaxProblem(f"the {what} does not parse at line {line}, column {column}: {message}", line=line,
                         column=column)


def query_os_error(exc: OSError, query: str) -> Exception:
    """pyoxigraph raises OSError both for its store and for a SERVICE call that failed: the second is the
    remote endpoint's fault (502), not ours. A query without SERVICE cannot have failed that way."""
    if "SERVICE" in query.upper():
        return BadGateway(f"the query failed, probably at a SERVICE endpoint: {exc}")
    log.error("reading the store failed: %s", exc)  # it may name files: logged, never sent
    return StoreUnavailable("the store could not be read; the failure is logged")
