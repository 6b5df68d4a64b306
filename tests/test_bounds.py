"""Unit tests of the pure bounds: the SPARQL scan (as the engine lexes), JSON nesting, RDF/XML entities, gzip
members. No server: these are the functions the HTTP tests in tests/web/test_hostile_input.py rely on."""

from __future__ import annotations

import gzip
import zlib

import pytest

from graphstore_async import bounds, formats
from graphstore_async.errors import BadEncoding, FetchRefused, PayloadTooLarge, TooComplex, UnsupportedMediaType
from graphstore_async.settings import Settings
from graphstore_async.sparqltext import NO_FETCH, QueryForm, Shape, scan, without_fetching
from graphstore_async.web.bodies import Limits, _Decoder

TARGET = "http://127.0.0.1:1/x"


@pytest.mark.parametrize(("text", "service", "load"), [
    (f"ASK {{ SERVICESILENT<{TARGET}>{{}} }}", (None,), ()),
    (f"ASK {{ # c\rSERVICE <{TARGET}> {{}} }}", (TARGET,), ()),
    (f"PREFIX service: <{TARGET}> ASK {{ service:x{{}} }}", (None, None), ()),
    (f"ASK {{ <http://x/\u00a0#> ?p ?o . SERVICE <{TARGET}> {{}} }}", (TARGET,), ()),
    (f"ASK {{ ?s ex:p\\#x . SERVICE <{TARGET}> {{}} }}", (TARGET,), ()),
    (f"ASK {{ ?s ex:p%41x . service silent <{TARGET}> {{}} }}", (TARGET,), ()),
    (f"ASK {{ ?s ?p trueSERVICE <{TARGET}> {{}} }}", (None,), ()),
    (f"ASK {{ FILTER(?a<1)#>\nSERVICE<{TARGET}>{{}} }}", (TARGET,), ()),
    (f"INSERT DATA {{ <a:b> <a:c> 1 }} ; LOAD <{TARGET}>", (), (TARGET,)),
    (f"LOADSILENT<{TARGET}>", (), (None,)),
    (f"load silent <{TARGET}> into graph <g:h>", (), (TARGET,)),
    (f'INSERT DATA {{ <a:b> <a:c> "LOAD <{TARGET}>" }}', (), ()),  # in a string: data, not an operation
    ("SELECT ?service ?download WHERE { ?s schema:serviceType ?service ; ex:load ?download }", (), ()),
])
def test_scan_finds_what_the_engine_would_fetch(text: str, service: tuple[str | None, ...],
                                               load: tuple[str | None, ...]) -> None:
    shape = scan(text)
    assert (shape.service, shape.load) == (service, load)


def test_scan_measures_depth_and_terms_outside_data_blocks() -> None:
    shape = scan("SELECT * WHERE { { VALUES (?x ?y) { (1 2) (3 4) (5 6) } } FILTER((?x < 3)) }")
    assert shape.form is QueryForm.SELECT
    assert shape.depth == 4  # { { and the VALUES block: { (
    assert shape.terms == scan("SELECT * WHERE { { VALUES (?x ?y) { } } FILTER((?x < 3)) }").terms
    assert scan("INSERT DATA { " + "<a:b> <a:c> 1 . " * 1000 + "}").terms == 3


def test_without_fetching_replaces_every_operand_and_nothing_else() -> None:
    text = f"SELECT * WHERE {{ SERVICE <{TARGET}> {{ ?s ?p <{TARGET}> }} SERVICE SILENT <http://y/> {{}} }}"
    checked = without_fetching(text, scan(text))
    assert checked.count(NO_FETCH) == 2 and checked.count(TARGET) == 1 and "http://y/" not in checked


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_sparql_bounds_refuse_with_the_limits() -> None:
    with pytest.raises(TooComplex, match="65 deep"):
        bounds.sparql("ASK " + "{" * 65 + "}" * 65, settings())
    with pytest.raises(TooComplex, match="tokens outside data blocks"):
        bounds.sparql("ASK { FILTER(" + "+".join("1" * 5000) + ") }", settings())
    with pytest.raises(PayloadTooLarge):
        bounds.sparql("ASK {}" + " " * 100, settings(max_query_bytes=50))
    with pytest.raises(FetchRefused, match="LOAD is disabled"):
        bounds.sparql(f"LOAD <{TARGET}>", settings())
    with pytest.raises(FetchRefused, match="plain <IRI>"):
        bounds.sparql(f"ASK {{ SERVICESILENT<{TARGET}>{{}} }}", settings(allow_service=True,
                                                                          service_endpoints=(TARGET,)))
    with pytest.raises(FetchRefused, match="not one of the endpoints"):
        bounds.sparql(f"ASK {{ SERVICE <{TARGET}> {{}} }}", settings(allow_service=True,
                                                                     service_endpoints=("http://y/",)))
    assert bounds.sparql(f"ASK {{ SERVICE <{TARGET}> {{}} }}", settings(
        allow_service=True, service_endpoints=("http://127.0.0.1:1/",))).service == (TARGET,)


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 3, 7, 1 << 20])
def test_json_depth_across_chunk_boundaries(size: int) -> None:
    text = b'{"a": "} ] \\" {{{ [[[", "b": [[{"c": "\\\\"}], {}], "d": "x\\"}"}'
    assert bounds.json_depth(chunks_of(text, size)) == 4
    deep = b"[" * 500 + b"]" * 500
    assert bounds.json_depth(chunks_of(deep, size)) == 500


@pytest.mark.parametrize("size", [1, 5, 1 << 20])
def test_entity_declarations_are_found_across_chunk_boundaries(size: int) -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "x">]><r/>'
    with pytest.raises(TooComplex):
        bounds.check_xml(chunks_of(body, size))
    bounds.check_xml(chunks_of(b'<?xml version="1.0"?><r>&amp;ENTITY</r>', size))
    with pytest.raises(UnsupportedMediaType):
        bounds.check_xml([b'\xff\xfe<\x00r\x00/\x00>\x00'])


def decode(body: bytes, size: int) -> bytes:
    decoder = _Decoder("gzip", Limits(max_bytes=10**9, max_gzip_ratio=1000))
    out = b"".join(decoder.feed(chunk) for chunk in chunks_of(body, size))
    decoder.finish()
    return out


@pytest.mark.parametrize("size", [1, 2, 10, 1 << 20])
def test_every_gzip_member_is_decoded(size: int) -> None:
    members = gzip.compress(b"first\n") + gzip.compress(b"") + gzip.compress(b"second\n")
    assert decode(members, size) == b"first\nsecond\n"
    for trailer in (b"junk", b"\x1f\x8b\x08junk", b"\x00\x00"):
        with pytest.raises(BadEncoding):
            decode(gzip.compress(b"x") + trailer, size)
    raw_deflate = zlib.compress(b"x")
    with pytest.raises(BadEncoding):
        decode(raw_deflate, size)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1 << 20])
def test_triple_term_depth_across_chunk_boundaries(size: int) -> None:
    nested = b"<http://a/o>"
    for _ in range(70):
        nested = b"<<( <http://a/s> <http://a/p> " + nested + b" )>>"
    text = (b"<http://a/s> <http://a/p> " + nested + b' .\n<http://a/x> <http://a/p> "<< << >> \\" <<" .\n'
            b'<http://a/x> <http://a/p> """a\n<<<<\n""" . # << << <<\nex:a\\#b ex:c <<( ex:d ex:e ex:f )>> .\n'
            b"<http://a/x#<<> <http://a/p> '<<' .\n")
    assert bounds.triple_term_depth(chunks_of(text, size)) == 70  # strings, comments, IRIs, escapes: not counted
    with pytest.raises(TooComplex, match="70 deep"):
        bounds.check_body(formats.TURTLE, lambda: chunks_of(text, size), 64)
    bounds.check_body(formats.N_TRIPLES, lambda: chunks_of(b'<a:b> <a:c> "no triple terms" .\n', size), 64)


@pytest.mark.parametrize("text", [
    "SELECT * WHERE { ?s ?p ?o }",
    "ASK { ?s ?p <<( ?a ?b ?c )>> }",
    f"SELECT * WHERE {{ SERVICE <{TARGET}> {{}} }}",
    "PREFIX ex: <http://x/> SELECT ?load WHERE { ?s ex:download ?load }",
    "SELECT * WHERE " + "{" * 70 + "}" * 70,
    "SELECT * WHERE { FILTER(" + "+".join("1" * 5000) + ") }",
])
def test_the_unscanned_path_decides_as_the_scan_does(text: str) -> None:
    """bounds.sparql skips the scan for a text too small to break a bound and naming no SERVICE or LOAD: the same
    answer as scanning, and its depth and terms bound the scan's from above."""
    found: object
    try:
        found = bounds.sparql(text, settings())
    except (TooComplex, FetchRefused) as exc:
        found = type(exc)
    scanned = scan(text)
    too_complex = scanned.depth > 64 or scanned.terms > 8_000
    fetches = bool(scanned.service or scanned.load)
    assert (found is TooComplex) == too_complex and (found is FetchRefused) == (fetches and not too_complex)
    if isinstance(found, Shape):
        assert found.form is scanned.form
        assert found.depth >= scanned.depth and found.terms >= scanned.terms
