"""SPARQL text before the engine sees it (graphstore_async/sparqltext.py): the protocol's using-graph-uri and
using-named-graph-uri written into an update, the query form that picks the result formats, the one-LOAD update
the server fetches itself, and the text checked without fetching. `scan` has its tests in tests/test_bounds.py."""

from __future__ import annotations

import pyoxigraph
import pytest

from graphstore_async.errors import DatasetConflict
from graphstore_async.sparqltext import (
    NO_FETCH,
    Load,
    QueryForm,
    query_form,
    scan,
    single_load,
    with_using,
    without_fetching,
)

G1, G2, N1 = "http://example.org/g1", "http://example.org/g2", "http://example.org/n1"


def squeezed(text: str) -> str:
    return " ".join(text.split())


# -- with_using ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("update", ["INSERT { ?s ?p 1 } WHERE { ?s ?p ?o }", "WITH <http://x/> DELETE WHERE {}",
                                    "INSERT DATA { <a:b> <a:c> 1 }"])
def test_with_using_without_protocol_dataset_leaves_the_update_alone(update: str) -> None:
    assert with_using(update, [], []) == update


def test_with_using_writes_using_before_where() -> None:
    update = "INSERT { ?s <http://e/p> ?o } WHERE { ?s ?q ?o }"
    assert with_using(update, [G1], []) == f"INSERT {{ ?s <http://e/p> ?o }} USING <{G1}> WHERE {{ ?s ?q ?o }}"


def test_with_using_writes_every_graph_default_graphs_first() -> None:
    update = "DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }"
    assert squeezed(with_using(update, [G1, G2], [N1])) == squeezed(
        f"DELETE {{ ?s ?p ?o }} USING <{G1}> USING <{G2}> USING NAMED <{N1}> WHERE {{ ?s ?p ?o }}")
    assert squeezed(with_using(update, [], [N1])) == squeezed(
        f"DELETE {{ ?s ?p ?o }} USING NAMED <{N1}> WHERE {{ ?s ?p ?o }}")


def test_with_using_writes_into_each_operation_that_has_a_where() -> None:
    update = ("PREFIX ex: <http://example.org/>\n"
              "INSERT DATA { ex:a ex:p 1 } ;\n"
              "DELETE { ?s ex:p ?o } INSERT { ?s ex:q ?o } WHERE { ?s ex:p ?o } ;\n"
              "CLEAR SILENT GRAPH ex:old ;\n"
              "insert { ?s ex:r 1 } where { ?s ex:q ?o }")
    written = with_using(update, [G1], [])
    assert written.count(f"USING <{G1}>") == 2
    assert f"INSERT {{ ?s ex:q ?o }} USING <{G1}> WHERE {{ ?s ex:p ?o }}" in written
    assert f"insert {{ ?s ex:r 1 }} USING <{G1}> where {{ ?s ex:q ?o }}" in written
    pyoxigraph.Store().update(written)  # still an update the engine takes


def test_with_using_leaves_delete_where_alone_which_cannot_have_using() -> None:
    for update in ("DELETE WHERE { ?s ?p ?o }", "delete  # all of it\n where { ?s ?p ?o }"):
        assert with_using(update, [G1], [N1]) == update


def test_with_using_writes_only_at_the_top_level() -> None:
    update = "INSERT { ?s <a:p> ?n } WHERE { { SELECT ?s (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?s } }"
    written = with_using(update, [G1], [])
    assert written.count("USING") == 1
    assert written.startswith(f"INSERT {{ ?s <a:p> ?n }} USING <{G1}> WHERE {{ {{ SELECT")
    pyoxigraph.Store().update(written)


def test_with_using_is_not_fooled_by_where_in_strings_iris_comments_or_names() -> None:
    update = ('PREFIX where: <http://e/where#> INSERT { ?s <http://e/WHERE> "WHERE" } '
              "# WHERE\n WHERE { ?s where:p ?where }")
    written = with_using(update, [G1], [])
    assert written.count("USING") == 1
    assert written.endswith(f"# WHERE\n USING <{G1}> WHERE {{ ?s where:p ?where }}")


@pytest.mark.parametrize("update", [
    f"WITH <{G2}> DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o }}",
    f"DELETE {{ ?s ?p ?o }} USING <{G2}> WHERE {{ ?s ?p ?o }}",
    f"INSERT {{ ?s ?p ?o }} using named <{G2}> WHERE {{ ?s ?p ?o }}",
    f"INSERT DATA {{ <a:b> <a:c> 1 }} ; with <{G2}> INSERT {{ ?s ?p 2 }} WHERE {{ ?s ?p 1 }}",
])
def test_with_using_refuses_an_update_that_names_its_own_dataset_with_400(update: str) -> None:
    with pytest.raises(DatasetConflict) as refused:
        with_using(update, [G1], [])
    assert refused.value.problem()["status"] == 400
    assert refused.value.problem()["type"].endswith("/dataset-conflict")
    with pytest.raises(DatasetConflict):
        with_using(update, [], [N1])


def test_with_using_takes_using_and_with_in_strings_and_variables_as_data() -> None:
    update = 'INSERT { ?with <a:p> "USING WITH" } WHERE { ?with <a:q> ?using }'
    assert with_using(update, [G1], []) == (
        f'INSERT {{ ?with <a:p> "USING WITH" }} USING <{G1}> WHERE {{ ?with <a:q> ?using }}')


# -- query_form ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "form"), [
    ("SELECT * WHERE { ?s ?p ?o }", QueryForm.SELECT),
    ("select ?s { ?s ?p ?o }", QueryForm.SELECT),
    ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", QueryForm.CONSTRUCT),
    ("construct where { ?s ?p ?o }", QueryForm.CONSTRUCT),
    ("DESCRIBE <http://example.org/x>", QueryForm.DESCRIBE),
    ("ASK { ?s ?p ?o }", QueryForm.ASK),
    ("PREFIX select: <http://e/select#> BASE <http://e/construct/> ASK { select:x ?p ?o }", QueryForm.ASK),
    ("# SELECT\nDESCRIBE ?x WHERE { ?x ?p ?o }", QueryForm.DESCRIBE),
])
def test_query_form_is_the_first_form_keyword(query: str, form: QueryForm) -> None:
    assert query_form(query) is form


@pytest.mark.parametrize("text", ["", "   ", "# SELECT", "INSERT DATA { <a:b> <a:c> 1 }", "PREFIX ex: <http://e/>",
                                  '"SELECT"', "?select"])
def test_query_form_is_none_without_one(text: str) -> None:
    assert query_form(text) is None


def test_query_form_says_which_forms_give_graphs() -> None:
    assert [form for form in QueryForm if form.is_graph] == [QueryForm.CONSTRUCT, QueryForm.DESCRIBE]


# -- single_load -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("update", "load"), [
    (f"LOAD <{G1}>", Load(G1, False, None)),
    (f"load silent <{G1}>", Load(G1, True, None)),
    (f"LOAD <{G1}> INTO GRAPH <{G2}>", Load(G1, False, G2)),
    (f"LOAD SILENT <{G1}> into graph <{G2}> ;", Load(G1, True, G2)),
    (f"# fetch it\nLOAD\n<{G1}>  # and keep it\n INTO GRAPH <{G2}>", Load(G1, False, G2)),
])
def test_single_load_reads_one_load(update: str, load: Load) -> None:
    assert single_load(update) == load


@pytest.mark.parametrize("update", [
    "", "INSERT DATA { <a:b> <a:c> 1 }", f"LOAD <{G1}> ; LOAD <{G2}>", f"LOAD <{G1}> ; CLEAR ALL",
    f"CLEAR ALL ; LOAD <{G1}>", "LOAD ex:data", f"LOAD <{G1}> INTO <{G2}>", f"LOAD <{G1}> INTO GRAPH ex:g",
    f"PREFIX ex: <http://e/> LOAD <{G1}>", f"LOAD SILENT SILENT <{G1}>", "LOAD", f"LOAD <{G1}> <{G2}>",
])
def test_single_load_is_none_for_anything_else(update: str) -> None:
    assert single_load(update) is None


@pytest.mark.parametrize("update", [f"; LOAD <{G1}>", f"LOAD <{G1}> ; ;", f"LOAD <{G1}>;;", f"; ; LOAD <{G1}>",
                                    f"LOAD <{G1}> INTO GRAPH <{G2}> ; ;", f"LOAD ; <{G1}>", f"LOAD SILENT ; <{G1}>",
                                    f"LOAD <{G1}> INTO ; GRAPH <{G2}>", f"LOAD <{G1}> INTO GRAPH ; <{G2}>",
                                    f"LOAD <{G1}> ; ; # two"])
def test_single_load_is_none_for_what_the_engine_would_not_parse(update: str) -> None:
    """The server carries out a single LOAD itself, without the engine's syntax check: what SPARQL's grammar
    refuses must not pass as one."""
    with pytest.raises(SyntaxError):
        pyoxigraph.Store().update(update.replace("LOAD", "CLEAR SILENT GRAPH"))
    with pytest.raises(SyntaxError):
        pyoxigraph.Store().update(update.replace(G1, NO_FETCH))
    assert single_load(update) is None


@pytest.mark.parametrize("update", [f"LOAD <{G1}>", f"LOAD <{G1}> ;", f"LOAD <{G1}>;", f"LOAD <{G1}> ; # done\n",
                                    f"LOAD SILENT <{G1}> ;", f"LOAD <{G1}> INTO GRAPH <{G2}>;",
                                    f"LOAD<{G1}>INTO GRAPH<{G2}>;"])
def test_single_load_reads_only_what_the_engine_parses(update: str) -> None:
    """Each text read as one LOAD is one the engine parses too: run with a source it cannot fetch, it fails
    when it carries the LOAD out (or, SILENT, not at all), never as a syntax error."""
    assert single_load(update) is not None
    try:
        pyoxigraph.Store().update(update.replace(G1, NO_FETCH))
    except SyntaxError:  # pragma: no cover - the failure this test is for
        pytest.fail(f"{update!r} is read as a LOAD but the engine does not parse it")
    except OSError:
        pass  # the LOAD itself, not its syntax


# -- without_fetching -----------------------------------------------------------------------------------------


def test_without_fetching_replaces_the_load_source_and_keeps_its_graph() -> None:
    update = f"LOAD SILENT <{G1}> INTO GRAPH <{G1}>"
    checked = without_fetching(update, scan(update))
    assert checked == f"LOAD SILENT <{NO_FETCH}> INTO GRAPH <{G1}>"


def test_without_fetching_leaves_text_without_fetching_unchanged() -> None:
    query = f"SELECT * WHERE {{ GRAPH <{G1}> {{ ?s ?p ?o }} }}"
    assert without_fetching(query, scan(query)) == query


def test_without_fetching_keeps_the_text_around_every_operand() -> None:
    update = f"INSERT DATA {{ <a:b> <a:c> 1 }} ;\nLOAD <{G1}> ; LOAD <{G2}> INTO GRAPH <{N1}>"
    checked = without_fetching(update, scan(update))
    assert checked == f"INSERT DATA {{ <a:b> <a:c> 1 }} ;\nLOAD <{NO_FETCH}> ; LOAD <{NO_FETCH}> INTO GRAPH <{N1}>"
