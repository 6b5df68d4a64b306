"""Media types <-> RDF and SPARQL result formats, and content negotiation (RFC 9110 Accept with q-values)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from graphstore_async.errors import NotAcceptable, UnsupportedMediaType


class Kind(Enum):
    GRAPH = "graph"  # triples
    DATASET = "dataset"  # quads
    RESULTS = "results"  # SPARQL SELECT/ASK results


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    kind: Kind
    aliases: tuple[str, ...] = ()
    textual: bool = True

    @property
    def content_type(self) -> str:
        """The Content-Type we send: SPARQL result types exactly, line-based RDF text with its charset."""
        if self.kind is Kind.RESULTS or not self.textual:
            return self.media_type
        return f"{self.media_type}; charset=utf-8"

    @property
    def is_dataset(self) -> bool:
        return self.kind is Kind.DATASET

    def __str__(self) -> str:
        return self.name


TURTLE = Format("Turtle", "text/turtle", "ttl", Kind.GRAPH, ("application/x-turtle",))
N_TRIPLES = Format("N-Triples", "application/n-triples", "nt", Kind.GRAPH)
N_QUADS = Format("N-Quads", "application/n-quads", "nq", Kind.DATASET, ("text/x-nquads",))
TRIG = Format("TriG", "application/trig", "trig", Kind.DATASET, ("application/x-trig",))
RDF_XML = Format("RDF/XML", "application/rdf+xml", "rdf", Kind.GRAPH, ("application/xml", "text/xml"), textual=False)
JSON_LD = Format("JSON-LD", "application/ld+json", "jsonld", Kind.GRAPH, ("application/json",), textual=False)

SPARQL_JSON = Format("SPARQL JSON", "application/sparql-results+json", "srj", Kind.RESULTS, ("application/json",))
SPARQL_XML = Format("SPARQL XML", "application/sparql-results+xml", "srx", Kind.RESULTS, ("application/xml",))
CSV = Format("CSV", "text/csv", "csv", Kind.RESULTS)
TSV = Format("TSV", "text/tab-separated-values", "tsv", Kind.RESULTS)

RDF_FORMATS: tuple[Format, ...] = (TURTLE, N_TRIPLES, N_QUADS, TRIG, RDF_XML, JSON_LD)
DATASET_FORMATS: tuple[Format, ...] = (N_QUADS, TRIG)
SELECT_FORMATS: tuple[Format, ...] = (SPARQL_JSON, SPARQL_XML, CSV, TSV)
ASK_FORMATS: tuple[Format, ...] = SELECT_FORMATS  # CSV and TSV as Jena writes them (store/parsing.py)
ALL_FORMATS: tuple[Format, ...] = RDF_FORMATS + SELECT_FORMATS

SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
PROBLEM_JSON = "application/problem+json"


def media_type_of(header: str | None) -> str:
    """'Text/Turtle; charset=UTF-8' -> 'text/turtle'."""
    return (header or "").split(";", 1)[0].strip().lower()


def charset_of(header: str | None) -> str | None:
    for param in (header or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def rdf_format_for(content_type: str | None) -> Format:
    """The RDF format of a request body, from its Content-Type; 415 for anything else."""
    media = media_type_of(content_type)
    for fmt in RDF_FORMATS:
        # the same names negotiation answers with: application/json is JSON-LD, application/xml is RDF/XML
        if media == fmt.media_type or media in fmt.aliases:
            return fmt
    if not media:
        raise UnsupportedMediaType("the request has a body but no Content-Type; send one of " + _names(RDF_FORMATS))
    raise UnsupportedMediaType(f"cannot read {media!r}; send one of " + _names(RDF_FORMATS), media_type=media)


def by_extension(extension: str, offers: Sequence[Format]) -> Format | None:
    return next((f for f in offers if f.extension == extension), None)


_EXACT = 3  # specificity of a range naming the type itself


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float

    def matches(self, media_type: str) -> int:
        """Specificity of the match (3 exact, 2 type/*, 1 */*), 0 when it does not match."""
        t, _, s = media_type.partition("/")
        if self.type == "*" and self.subtype == "*":
            return 1
        if self.type == t and self.subtype == "*":
            return 2
        return _EXACT if (self.type, self.subtype) == (t, s) else 0


def parse_accept(header: str | None) -> list[MediaRange]:
    ranges: list[MediaRange] = []
    for item in (header or "").split(","):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        if "/" not in media:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                q = _qvalue(value.strip())
        t, _, s = media.partition("/")
        ranges.append(MediaRange(t, s, q))
    return ranges


# RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?", re.ASCII)


def _qvalue(text: str) -> float:
    """The weight a q parameter gives; anything outside the qvalue grammar (nan, inf, -1, 2, .5, soon) is 0,
    so that junk never makes a range more acceptable than the client wrote."""
    return float(text) if _QVALUE.fullmatch(text) else 0.0


def negotiate(accept: str | None, offers: Sequence[Format], default: Format | None = None) -> Format:
    """The best offer for an Accept header: highest q, then the most specific range, then the default, then
    our order of offers. An absent or empty Accept takes the default (or the first offer)."""
    ranges = parse_accept(accept)
    if not ranges:
        return default or offers[0]
    best: tuple[float, int, int, int] | None = None
    chosen: Format | None = None
    for index, offer in enumerate(offers):
        q, specificity = _offer_quality(ranges, offer)
        if q <= 0:
            continue
        rank = (q, specificity, int(offer is default), -index)
        if best is None or rank > best:
            best, chosen = rank, offer
    if chosen is None:
        raise NotAcceptable(
            f"none of the acceptable types ({accept}) can be produced; available: " + _names(offers),
            available=[f.media_type for f in offers],
        )
    return chosen


def _offer_quality(ranges: Sequence[MediaRange], offer: Format) -> tuple[float, int]:
    """q and specificity of an offer. We label the answer with its real media type, so the client's q for
    that type decides (the most specific matching range, RFC 9110 §12.5.1). When the client does not name
    the real type itself, an other name it names exactly (application/x-turtle, text/xml) may also match;
    an other name never matches through a wildcard: */* or application/* says nothing about text/turtle."""
    q, specificity = _quality(ranges, offer.media_type)
    if specificity == _EXACT:
        return q, specificity
    for alias in offer.aliases:
        by_name, alias_specificity = _quality(ranges, alias)
        if alias_specificity == _EXACT and (by_name, _EXACT) > (q, specificity):
            q, specificity = by_name, _EXACT
    return q, specificity


def _quality(ranges: Sequence[MediaRange], media_type: str) -> tuple[float, int]:
    """q of the most specific range that matches (RFC 9110 §12.5.1)."""
    found: tuple[int, MediaRange] | None = None
    for r in ranges:
        spec = r.matches(media_type)
        if spec and (found is None or spec > found[0]):
            found = (spec, r)
    if found is None:
        return 0.0, 0
    return found[1].q, found[0]


def _names(formats: Sequence[Format]) -> str:
    return ", ".join(f.media_type for f in formats)
