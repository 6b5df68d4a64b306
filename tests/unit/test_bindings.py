"""A named view's arguments (graphstore_async/bindings.py): `$name=value` written as an RDF term, never as text
copied into the query; `limit` and `offset` combined with the view's own. The queries written are run on an
in-memory pyoxigraph store, so what is asserted is what the view answers. (DESCRIBE without a pattern, and values
matched whole, are in tests/web/test_bad_inputs.py.)"""

from __future__ import annotations

from collections.abc import Mapping

import pyoxigraph
import pytest

from graphstore_async import bindings
from graphstore_async.bindings import ViewArguments, apply, parse_arguments, term
from graphstore_async.errors import BadRequest

EX = "http://example.org/"
XSD = "http://www.w3.org/2001/XMLSchema#"


def squeezed(text: str) -> str:
    return " ".join(text.split())


def store() -> pyoxigraph.Store:
    """s1..s5 with ex:n 1..5 and an ex:label; s1 also has a French label."""
    data = pyoxigraph.Store()
    rows = "".join(f'<{EX}s{i}> <{EX}n> {i} ; <{EX}label> "s{i}" .\n' for i in range(1, 6))
    data.load((rows + f'<{EX}s1> <{EX}label> "un"@fr .').encode(), pyoxigraph.RdfFormat.TURTLE)
    return data


def answer(query: str, arguments: Mapping[str, str]) -> list[tuple[str, ...]]:
    """The view's rows for these arguments, each value as N-Triples term text."""
    written = apply(query, parse_arguments(arguments, query))
    solutions = store().query(written)
    assert isinstance(solutions, pyoxigraph.QuerySolutions)
    return [tuple(str(value) for value in row) for row in solutions]


def triples(query: str) -> list[str]:
    """A CONSTRUCT's triples, as N-Triples text without the final dot."""
    result = store().query(query)
    assert isinstance(result, pyoxigraph.QueryTriples)
    return [str(triple) for triple in result]


# -- term ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "written"), [
    (f"<{EX}s1>", f"<{EX}s1>"),
    ("<urn:isbn:0451450523>", "<urn:isbn:0451450523>"),
    ('"chat"@fr', '"chat"@fr'),
    ('"colour"@en-GB', '"colour"@en-GB'),
    ('"5"^^xsd:integer', f'"5"^^<{XSD}integer>'),
    ('"2026-01-31"^^xsd:date', f'"2026-01-31"^^<{XSD}date>'),
    (f'"x"^^<{EX}type>', f'"x"^^<{EX}type>'),
    ('"plain"', '"plain"'),
    ('""', '""'),
    ('"a\\"b"', '"a\\"b"'),  # an escaped quote inside a quoted literal
    ('"two\\nlines"', '"two\\nlines"'),
    ("42", f'"42"^^<{XSD}integer>'),
    ("-7", f'"-7"^^<{XSD}integer>'),
    ("+3", f'"+3"^^<{XSD}integer>'),
    ("2.5", f'"2.5"^^<{XSD}decimal>'),
    (".5", f'".5"^^<{XSD}decimal>'),
    ("1e3", f'"1e3"^^<{XSD}double>'),
    ("-1.5E-2", f'"-1.5E-2"^^<{XSD}double>'),
    ("true", f'"true"^^<{XSD}boolean>'),
    ("false", f'"false"^^<{XSD}boolean>'),
    ("TRUE", '"TRUE"'),  # SPARQL's booleans are lower case
    ("5.", '"5."'),  # not a SPARQL decimal
    ("hello", '"hello"'),
    ("", '""'),
    ("http://example.org/s1", '"http://example.org/s1"'),  # an IRI is written in <…>
])
def test_term_writes_each_kind_of_value(value: str, written: str) -> None:
    assert term(value) == written


@pytest.mark.parametrize(("value", "written"), [
    ('say "hi"', '"say \\"hi\\""'),
    ('" } DROP ALL {', '"\\" } DROP ALL {"'),
    ('"x" } ; DROP ALL ; SELECT * {"', '"\\"x\\" } ; DROP ALL ; SELECT * {\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("line\nbreak\r\ttab", '"line\\nbreak\\r\\ttab"'),
    ('"x"@', '"\\"x\\"@"'),  # half a language tag
    ('"x"^^xsd:', '"\\"x\\"^^xsd:"'),  # half a datatype
    ('"open', '"\\"open"'),
    ("<no end", '"<no end"'),
])
def test_term_keeps_anything_else_a_plain_string(value: str, written: str) -> None:
    assert term(value) == written


@pytest.mark.parametrize(("value", "says"), [
    ("<relative/path>", "not an absolute IRI"),
    ("<>", "not an absolute IRI"),
    ("<http://example.org/a b>", "not an absolute IRI"),
    ("<http://example.org/>{}<x:y>", "not an absolute IRI"),
    ('"x"^^<not an iri>', "not an absolute IRI"),
    ('"x"@en_US', "is not a language tag"),
    ('"x"@123', "is not a language tag"),
    ('"x"@en-', "is not a language tag"),
])
def test_term_refuses_a_bad_iri_or_language_tag_with_400(value: str, says: str) -> None:
    with pytest.raises(BadRequest, match=says) as refused:
        term(value)
    assert refused.value.status == 400


def test_literal_escapes_what_would_end_the_string() -> None:
    assert bindings.literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


# -- parse_arguments ----------------------------------------------------------------------------------------------


def test_parse_arguments_binds_variables_and_reads_limit_and_offset() -> None:
    query = "SELECT ?s ?label WHERE { ?s <http://example.org/label> ?label }"
    arguments = parse_arguments({"$s": f"<{EX}s1>", "$label": "un", "limit": "10", "offset": "20",
                                 "format": "csv", "other": "x"}, query)
    assert arguments == ViewArguments({"s": f"<{EX}s1>", "label": '"un"'}, 10, 20)


def test_parse_arguments_without_arguments_binds_nothing() -> None:
    assert parse_arguments({}, "SELECT * WHERE { ?s ?p ?o }") == ViewArguments({}, None, None)


def test_parse_arguments_finds_variables_written_with_a_dollar_too() -> None:
    assert parse_arguments({"$s": "1"}, "SELECT * WHERE { $s ?p ?o }").bindings == {"s": f'"1"^^<{XSD}integer>'}


@pytest.mark.parametrize(("name", "query"), [
    ("x", "SELECT * WHERE { ?s ?p ?o }"),
    ("S", "SELECT * WHERE { ?s ?p ?o }"),  # variable names are case-sensitive
    ("x", 'SELECT * WHERE { ?s ?p "?x" }'),  # in a string: not a variable
    ("x", "SELECT * WHERE { ?s ?p ?o } # ?x"),  # in a comment: not a variable
    ("x", "SELECT * WHERE { ?s ?p <http://e/?x> }"),
    ("", "SELECT * WHERE { ?s ?p ?o }"),
    ("s o", "SELECT * WHERE { ?s ?p ?o }"),
    ("s)", "SELECT * WHERE { ?s ?p ?o }"),
])
def test_parse_arguments_refuses_a_variable_the_query_lacks_with_400(name: str, query: str) -> None:
    with pytest.raises(BadRequest, match="no variable") as refused:
        parse_arguments({f"${name}": "1"}, query)
    problem = refused.value.problem()
    assert (problem["status"], problem["variable"]) == (400, name)


@pytest.mark.parametrize(("key", "value"), [("limit", "ten"), ("limit", "-1"), ("offset", "1.5"), ("offset", ""),
                                            ("limit", "9" * 19)])
def test_parse_arguments_refuses_a_limit_or_offset_that_is_not_a_whole_number_with_400(key: str, value: str) -> None:
    with pytest.raises(BadRequest, match=key) as refused:
        parse_arguments({key: value}, "SELECT * WHERE { ?s ?p ?o }")
    assert refused.value.problem()["parameter"] == key


def test_parse_arguments_refuses_a_bad_value_with_400() -> None:
    with pytest.raises(BadRequest, match="not an absolute IRI"):
        parse_arguments({"$s": "<s1>"}, "SELECT * WHERE { ?s ?p ?o }")


# -- apply: what the view answers ----------------------------------------------------------------------------------

LABELS = f"SELECT ?s ?label WHERE {{ ?s <{EX}label> ?label }}"


def test_apply_without_arguments_leaves_the_query_alone() -> None:
    assert apply(LABELS, ViewArguments({})) == LABELS


def test_apply_puts_the_bindings_first_inside_the_where_pattern() -> None:
    query = f"SELECT ?label WHERE {{ ?s <{EX}label> ?label }}"
    written = apply(query, parse_arguments({"$s": f"<{EX}s1>", "$label": '"un"@fr'}, query))
    assert squeezed(written) == squeezed(
        f'SELECT ?label WHERE {{ VALUES (?label ?s) {{ ("un"@fr <{EX}s1>) }} ?s <{EX}label> ?label }}')


@pytest.mark.parametrize(("arguments", "rows"), [
    ({"$s": f"<{EX}s1>"}, [(f"<{EX}s1>", '"s1"'), (f"<{EX}s1>", '"un"@fr')]),
    ({"$label": "s2"}, [(f"<{EX}s2>", '"s2"')]),
    ({"$label": '"un"@fr'}, [(f"<{EX}s1>", '"un"@fr')]),
    ({"$label": "un"}, []),  # a plain string is not the French label
    ({"$s": f"<{EX}s9>"}, []),
    ({"$label": '" } DROP ALL {'}, []),  # just a string
    ({"$s": f"<{EX}s3>", "$label": "s3"}, [(f"<{EX}s3>", '"s3"')]),
])
def test_apply_restricts_the_view_to_the_bound_values(arguments: dict[str, str], rows: list[tuple[str, ...]]) -> None:
    assert sorted(answer(LABELS, arguments)) == sorted(rows)


def test_apply_binds_numbers_as_numbers() -> None:
    query = f"SELECT ?s WHERE {{ ?s <{EX}n> ?n }}"
    assert answer(query, {"$n": "3"}) == [(f"<{EX}s3>",)]
    assert answer(query, {"$n": '"3"'}) == []  # the string "3" is not the number 3


def test_apply_binds_before_aggregates_count() -> None:
    query = f"SELECT (COUNT(*) AS ?count) WHERE {{ ?s <{EX}label> ?label }}"
    assert answer(query, {"$s": f"<{EX}s1>"}) == [(f'"2"^^<{XSD}integer>',)]


def test_apply_binds_in_the_where_pattern_of_a_construct_not_its_template() -> None:
    query = f"CONSTRUCT {{ ?s <{EX}name> ?label }} WHERE {{ ?s <{EX}label> ?label }}"
    written = apply(query, parse_arguments({"$s": f"<{EX}s2>"}, query))
    assert squeezed(written) == squeezed(
        f"CONSTRUCT {{ ?s <{EX}name> ?label }} WHERE {{ VALUES (?s) {{ (<{EX}s2>) }} ?s <{EX}label> ?label }}")
    assert triples(written) == [f'<{EX}s2> <{EX}name> "s2"']


def test_apply_binds_a_construct_where_after_its_pattern() -> None:
    query = f"CONSTRUCT WHERE {{ ?s <{EX}label> ?label }}"
    written = apply(query, parse_arguments({"$s": f"<{EX}s4>"}, query))
    assert squeezed(written) == squeezed(f"{query} VALUES (?s) {{ (<{EX}s4>) }}")
    assert triples(written) == [f'<{EX}s4> <{EX}label> "s4"']


def test_apply_refuses_a_construct_whose_template_does_not_close_with_400() -> None:
    query = f"CONSTRUCT {{ ?s <{EX}name> ?label WHERE {{ ?s <{EX}label> ?label }}"
    with pytest.raises(BadRequest, match="unbalanced"):
        apply(query, parse_arguments({"$s": f"<{EX}s2>"}, query))


# -- apply: limit and offset -----------------------------------------------------------------------------------------

NUMBERS = f"SELECT ?n WHERE {{ ?s <{EX}n> ?n }} ORDER BY ?n"


def numbers(query: str, arguments: Mapping[str, str]) -> list[int]:
    return [int(row[0].split('"')[1]) for row in answer(query, arguments)]


@pytest.mark.parametrize(("view", "arguments", "rows"), [
    (NUMBERS, {"limit": "2"}, [1, 2]),
    (NUMBERS, {"offset": "3"}, [4, 5]),
    (NUMBERS, {"limit": "2", "offset": "1"}, [2, 3]),
    (NUMBERS, {"limit": "0"}, []),
    (NUMBERS + " LIMIT 3", {}, [1, 2, 3]),
    (NUMBERS + " LIMIT 3", {"limit": "10"}, [1, 2, 3]),  # the view's own limit stays the most it gives
    (NUMBERS + " LIMIT 3", {"limit": "2"}, [1, 2]),
    (NUMBERS + " LIMIT 3", {"offset": "2"}, [3]),  # pages within the view's rows
    (NUMBERS + " LIMIT 3", {"offset": "4"}, []),  # past the view's end, even where the data goes on
    (NUMBERS + " OFFSET 1", {"offset": "2"}, [4, 5]),
    (NUMBERS + " OFFSET 1 LIMIT 3", {"offset": "1", "limit": "5"}, [3, 4]),
    (NUMBERS + " limit 4 offset 1", {"limit": "1", "offset": "2"}, [4]),
])
def test_apply_pages_within_the_view(view: str, arguments: dict[str, str], rows: list[int]) -> None:
    assert numbers(view, arguments) == rows


def test_apply_keeps_limits_inside_subqueries() -> None:
    view = f"SELECT ?n WHERE {{ {{ SELECT ?n WHERE {{ ?s <{EX}n> ?n }} ORDER BY DESC(?n) LIMIT 3 }} }} ORDER BY ?n"
    written = apply(view, parse_arguments({"limit": "2"}, view))
    assert "LIMIT 3" in written and written.endswith(" LIMIT 2")
    assert numbers(view, {"limit": "2"}) == [3, 4]


def test_apply_puts_limit_before_a_trailing_values_clause() -> None:
    view = f"SELECT ?n WHERE {{ ?s <{EX}n> ?n }} ORDER BY ?n VALUES ?s {{ <{EX}s2> <{EX}s4> <{EX}s5> }}"
    written = apply(view, parse_arguments({"limit": "2"}, view))
    assert squeezed(written) == squeezed(
        f"SELECT ?n WHERE {{ ?s <{EX}n> ?n }} ORDER BY ?n LIMIT 2 VALUES ?s {{ <{EX}s2> <{EX}s4> <{EX}s5> }}")
    assert numbers(view, {"limit": "2"}) == [2, 4]


def test_apply_pages_and_binds_together() -> None:
    view = f"SELECT ?n WHERE {{ ?s <{EX}n> ?n . FILTER(?n > ?min) }} ORDER BY ?n LIMIT 10"
    assert numbers(view, {"$min": "1", "limit": "2", "offset": "1"}) == [3, 4]
