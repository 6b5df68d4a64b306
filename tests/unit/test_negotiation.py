"""Content negotiation and media types as pure functions (graphstore_async/formats.py): the format a response
takes for an Accept header, and the RDF format a request body is read as for its Content-Type."""

from __future__ import annotations

import pytest

from graphstore_async import formats
from graphstore_async.errors import NotAcceptable, UnsupportedMediaType
from graphstore_async.formats import (
    ASK_FORMATS,
    CSV,
    JSON_LD,
    N_QUADS,
    N_TRIPLES,
    RDF_FORMATS,
    RDF_XML,
    SELECT_FORMATS,
    SPARQL_JSON,
    SPARQL_XML,
    TRIG,
    TSV,
    TURTLE,
    Format,
    negotiate,
)

# -- negotiate -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "", "   ", ",", "turtle", "text"])
def test_negotiate_without_a_usable_accept_takes_the_default(accept: str | None) -> None:
    assert negotiate(accept, RDF_FORMATS, N_TRIPLES) is N_TRIPLES
    assert negotiate(accept, SELECT_FORMATS) is SPARQL_JSON  # no default: the first offer


@pytest.mark.parametrize(("accept", "offers", "chosen"), [
    ("text/turtle", RDF_FORMATS, TURTLE),
    ("application/n-triples", RDF_FORMATS, N_TRIPLES),
    ("application/rdf+xml", RDF_FORMATS, RDF_XML),
    ("application/ld+json", RDF_FORMATS, JSON_LD),
    ("application/trig", RDF_FORMATS, TRIG),
    ("text/csv", SELECT_FORMATS, CSV),
    ("text/tab-separated-values", SELECT_FORMATS, TSV),
    ("application/sparql-results+xml", SELECT_FORMATS, SPARQL_XML),
    ("TEXT/Turtle", RDF_FORMATS, TURTLE),  # media types are case-insensitive
    (" text/turtle ; charset=utf-8 ", RDF_FORMATS, TURTLE),  # parameters other than q do not matter
    ("image/png, text/turtle", RDF_FORMATS, TURTLE),
])
def test_negotiate_takes_the_type_asked_for(accept: str, offers: tuple[Format, ...], chosen: Format) -> None:
    assert negotiate(accept, offers, offers[0]) is chosen


@pytest.mark.parametrize(("accept", "offers", "chosen"), [
    ("application/x-turtle", RDF_FORMATS, TURTLE),
    ("text/x-nquads", RDF_FORMATS, N_QUADS),
    ("application/x-trig", RDF_FORMATS, TRIG),
    ("text/xml", RDF_FORMATS, RDF_XML),
    ("application/json", RDF_FORMATS, JSON_LD),  # a graph as JSON is JSON-LD
    ("application/json", SELECT_FORMATS, SPARQL_JSON),  # results as JSON are SPARQL JSON
    ("application/xml", RDF_FORMATS, RDF_XML),
    ("application/xml", ASK_FORMATS, SPARQL_XML),
])
def test_negotiate_knows_each_format_by_its_other_names(accept: str, offers: tuple[Format, ...],
                                                        chosen: Format) -> None:
    assert negotiate(accept, offers) is chosen


@pytest.mark.parametrize(("accept", "chosen"), [
    ("application/n-triples;q=0.5, text/turtle;q=0.9", TURTLE),
    ("text/turtle;q=0.4, application/n-triples", N_TRIPLES),  # q defaults to 1
    ("text/turtle;Q=0.4, application/n-triples;q=0.5", N_TRIPLES),  # the q key is case-insensitive
    ("text/turtle;q=0.001, application/rdf+xml;q=0.002", RDF_XML),
    ("text/turtle;q=2, application/n-triples;q=1", N_TRIPLES),  # 2 is no qvalue: junk, as q=0
    ("application/n-triples;q=2, text/turtle;q=1", TURTLE),
    ("text/turtle;q=1.000, application/n-triples;q=0.999", TURTLE),  # the longest qvalues the grammar allows
])
def test_negotiate_prefers_the_highest_q(accept: str, chosen: Format) -> None:
    assert negotiate(accept, RDF_FORMATS) is chosen


@pytest.mark.parametrize("accept", [
    "text/turtle;q=0", "text/turtle;q=0.0", "text/turtle;q=-1", "text/turtle;q=soon", "text/turtle;q=",
    "text/turtle;q=nan",  # junk like the others, not a q of 1
    "text/turtle;q=inf", "text/turtle;q=-inf", "text/turtle;q=2", "text/turtle;q=1.5", "text/turtle;q=1.0001",
    "text/turtle;q=0.0001", "text/turtle;q=.5", "text/turtle;q=1e0", "text/turtle;q=+1", "text/turtle;q=\u0661",
    'text/turtle;q="1"',
])
def test_negotiate_takes_q_0_and_junk_q_as_not_acceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept, (TURTLE, N_TRIPLES))


def test_negotiate_with_a_wildcard_takes_the_default_then_our_order() -> None:
    assert negotiate("*/*", RDF_FORMATS, N_TRIPLES) is N_TRIPLES
    assert negotiate("*/*", RDF_FORMATS) is TURTLE
    assert negotiate("*/*;q=0.1", SELECT_FORMATS, CSV) is CSV


@pytest.mark.parametrize(("accept", "offers", "default", "chosen"), [
    ("text/*", SELECT_FORMATS, SPARQL_JSON, CSV),  # the default is not text/*: the first text/* offer
    ("text/*", SELECT_FORMATS, TSV, TSV),
    ("application/*", (CSV, SPARQL_XML, SPARQL_JSON), CSV, SPARQL_XML),
    ("application/*", SELECT_FORMATS, None, SPARQL_JSON),
    ("text/*;q=0.5, application/sparql-results+xml;q=0.4", SELECT_FORMATS, None, CSV),
])
def test_negotiate_with_a_type_wildcard_takes_an_offer_of_that_type(accept: str, offers: tuple[Format, ...],
                                                                    default: Format | None, chosen: Format) -> None:
    assert negotiate(accept, offers, default) is chosen


def test_negotiate_takes_the_q_of_the_most_specific_matching_range() -> None:
    # RFC 9110 §12.5.1: text/csv;q=0.1 overrides text/*;q=0.5 for CSV, so TSV (0.5) wins
    assert negotiate("text/*;q=0.5, text/csv;q=0.1", SELECT_FORMATS) is TSV
    assert negotiate("*/*;q=0.3, text/*;q=0.6, text/csv;q=0.9", SELECT_FORMATS) is CSV
    assert negotiate("*/*;q=0.3, text/*;q=0.6", SELECT_FORMATS) is CSV
    assert negotiate("*/*;q=0.9, text/*;q=0.6", SELECT_FORMATS) is SPARQL_JSON
    # the same q: the more specific range wins over our order
    assert negotiate("*/*;q=0.5, text/tab-separated-values;q=0.5", SELECT_FORMATS) is TSV


def test_negotiate_never_sends_a_type_the_client_refused_behind_a_wildcard() -> None:
    """Turtle is sent as text/turtle: its other name (application/x-turtle) matching */* must not bring it back."""
    assert negotiate("text/turtle;q=0, */*", RDF_FORMATS) is N_TRIPLES
    assert negotiate("text/turtle;q=0, */*", RDF_FORMATS, TURTLE) is N_TRIPLES
    assert negotiate("*/*;q=0.5, text/turtle;q=0.1", RDF_FORMATS) is N_TRIPLES
    assert negotiate("application/rdf+xml;q=0, */*", (RDF_XML, TURTLE)) is TURTLE
    assert negotiate("application/*", RDF_FORMATS, TURTLE) is N_TRIPLES  # text/turtle is not application/*
    assert negotiate("text/*", RDF_FORMATS, RDF_XML) is TURTLE  # application/rdf+xml is not text/* (text/xml is)
    assert negotiate("application/*", SELECT_FORMATS, None) is SPARQL_JSON
    assert negotiate("*/*;q=0.9, application/x-turtle;q=0.1", RDF_FORMATS, N_TRIPLES) is N_TRIPLES


@pytest.mark.parametrize(("accept", "offers", "chosen"), [
    ("*/*;q=0.5, application/x-turtle", RDF_FORMATS, TURTLE),  # named exactly, its other name counts
    ("*/*;q=0, application/x-turtle", RDF_FORMATS, TURTLE),
    ("application/*;q=0.1, application/json", RDF_FORMATS, JSON_LD),
    ("text/xml;q=0.9, application/n-triples;q=0.5", RDF_FORMATS, RDF_XML),
])
def test_negotiate_takes_an_other_name_given_exactly(accept: str, offers: tuple[Format, ...],
                                                     chosen: Format) -> None:
    assert negotiate(accept, offers) is chosen


@pytest.mark.parametrize("accept", [
    "text/turtle;q=0, application/x-turtle",  # we would send text/turtle, which the client refused
    "application/x-turtle, text/turtle;q=0",
])
def test_negotiate_never_lets_an_other_name_override_a_refused_type(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept, RDF_FORMATS, TURTLE)
    assert negotiate(accept + ", */*;q=0.1", RDF_FORMATS, TURTLE) is N_TRIPLES


def test_negotiate_weighs_the_real_type_over_its_other_name() -> None:
    # text/turtle;q=0.1 is what the client says of what we send; application/x-turtle;q=1 does not lift it
    assert negotiate("text/turtle;q=0.1, application/x-turtle, application/n-triples;q=0.5", RDF_FORMATS) \
        is N_TRIPLES


@pytest.mark.parametrize(("accept", "offers"), [
    ("image/png", RDF_FORMATS),
    ("text/html, application/xhtml+xml", RDF_FORMATS),
    ("text/turtle", ASK_FORMATS),  # ASK is a result: CSV and TSV, never a graph format
    ("application/n-triples", ASK_FORMATS),
    ("application/sparql-results+json", RDF_FORMATS),
    ("text/turtle", SELECT_FORMATS),
    ("*/*;q=0", RDF_FORMATS),
])
def test_negotiate_refuses_what_cannot_be_produced_with_406(accept: str, offers: tuple[Format, ...]) -> None:
    with pytest.raises(NotAcceptable) as refused:
        negotiate(accept, offers, offers[0])
    problem = refused.value.problem()
    assert problem["status"] == 406
    assert problem["type"].endswith("/not-acceptable")
    assert problem["available"] == [f.media_type for f in offers]
    assert accept in problem["detail"]


# -- media_type_of, charset_of ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "media_type"), [
    ("Text/Turtle; charset=UTF-8", "text/turtle"),
    ("  application/ld+json  ", "application/ld+json"),
    ("application/sparql-update;charset=utf-8;x=y", "application/sparql-update"),
    ("", ""),
    (None, ""),
])
def test_media_type_of_drops_parameters_and_case(header: str | None, media_type: str) -> None:
    assert formats.media_type_of(header) == media_type


@pytest.mark.parametrize(("header", "charset"), [
    ("text/turtle; charset=UTF-8", "utf-8"),
    ('text/turtle; charset="ISO-8859-1"', "iso-8859-1"),
    ("text/plain; format=flowed; Charset = utf-16 ", "utf-16"),
    ("text/turtle", None),
    ("text/turtle; format=flowed", None),
    ("", None),
    (None, None),
])
def test_charset_of_reads_the_charset_parameter(header: str | None, charset: str | None) -> None:
    assert formats.charset_of(header) == charset


# -- rdf_format_for (request bodies) ---------------------------------------------------------------------------


@pytest.mark.parametrize(("content_type", "fmt"), [
    ("text/turtle", TURTLE),
    ("text/turtle; charset=utf-8", TURTLE),
    ("TEXT/TURTLE", TURTLE),
    ("application/x-turtle", TURTLE),
    ("application/n-triples", N_TRIPLES),
    ("application/n-quads", N_QUADS),
    ("text/x-nquads", N_QUADS),
    ("application/trig", TRIG),
    ("application/x-trig", TRIG),
    ("application/rdf+xml", RDF_XML),
    ("text/xml", RDF_XML),
    ("application/ld+json", JSON_LD),
    ("application/json", JSON_LD),
])
def test_rdf_format_for_reads_each_rdf_type_and_its_other_names(content_type: str, fmt: Format) -> None:
    assert formats.rdf_format_for(content_type) is fmt


def test_rdf_format_for_reads_application_xml_as_rdf_xml_as_it_does_text_xml() -> None:
    """application/xml is RDF/XML's other name (as it is in negotiation); text/xml is read as RDF/XML."""
    assert formats.rdf_format_for("application/xml") is RDF_XML


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/octet-stream", "application/sparql-results+json", "text/csv", "text/html",
    "application/sparql-update", "turtle",
])
def test_rdf_format_for_refuses_other_types_with_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        formats.rdf_format_for(content_type)
    problem = refused.value.problem()
    assert problem["status"] == 415
    assert problem["media_type"] == content_type
    assert "text/turtle" in problem["detail"]  # says what to send instead


@pytest.mark.parametrize("content_type", [None, "", "  ", "; charset=utf-8"])
def test_rdf_format_for_without_a_content_type_is_415_saying_so(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType, match="no Content-Type") as refused:
        formats.rdf_format_for(content_type)
    assert refused.value.status == 415
    assert "media_type" not in refused.value.problem()


def test_content_type_sent_has_a_charset_for_line_based_rdf_only() -> None:
    assert TURTLE.content_type == "text/turtle; charset=utf-8"
    assert N_QUADS.content_type == "application/n-quads; charset=utf-8"
    assert RDF_XML.content_type == "application/rdf+xml"
    assert JSON_LD.content_type == "application/ld+json"
    assert SPARQL_JSON.content_type == "application/sparql-results+json"
    assert CSV.content_type == "text/csv"


def test_by_extension_finds_a_format_among_the_offers_only() -> None:
    assert formats.by_extension("ttl", RDF_FORMATS) is TURTLE
    assert formats.by_extension("nq", RDF_FORMATS) is N_QUADS
    assert formats.by_extension("csv", RDF_FORMATS) is None
    assert formats.by_extension("TTL", RDF_FORMATS) is None  # callers lower-case first
