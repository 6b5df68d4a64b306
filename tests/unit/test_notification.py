"""The notification and callback of an ended task, made by pure functions (tasks/notification.py): headers, body
and encoding for each kind of operation and each way it can end. No server, no Redis."""

from __future__ import annotations

import gzip
import inspect
import warnings
from pathlib import Path

import pytest
import rdflib
from rdflib import URIRef

from graphstore_async import errors, formats
from graphstore_async.operations import Kind, Operation, Outcome
from graphstore_async.tasks.notification import callback_for, carries_result, notification_for
from graphstore_async.tasks.records import Task
from graphstore_async.tasks.request import RequestRecord
from graphstore_async.tasks.result import Result
from graphstore_async.tasks.terms import Notify, Terms, report_format
from graphstore_async.taskstatus import TaskStatus
from graphstore_async.vocab import GSA

TASK_ID = "0b7f2a36-5c1e-4e0e-9a59-0d1f6f3e8b11"
BASE = "http://127.0.0.1:8080"
RESULT = Path("/spool/tasks/result")


def task(kind: Kind, status: TaskStatus, result: Result | None, notify: Notify | None, *,
         result_type: str | None = None, callback: str | None = None) -> Task:
    op = Operation(kind, "alice/repo", result_type=result_type, text="ASK {}" if kind is Kind.QUERY else None)
    record = RequestRecord({"Request-ID": TASK_ID}, "POST", "alice/repo")
    return Task(TASK_ID, status, "alice", "alice/repo", op, Terms(notify, callback), record, BASE,
                "2026-12-02T00:00:00.000Z", started="2026-12-02T00:00:01.000Z", ended="2026-12-02T00:00:02.000Z",
                result=result)


def notify(fmt: formats.Format = formats.TURTLE, *, gzip_: bool = False, method: str = "POST",
           client_request_id: str | None = None) -> Notify:
    return Notify("http://receiver.example/n", method, fmt, gzip_, client_request_id=client_request_id)


def graph_of(body: bytes, fmt: formats.Format) -> rdflib.Graph:
    with warnings.catch_warnings():  # rdflib's JSON-LD parser uses its own deprecated ConjunctiveGraph
        warnings.simplefilter("ignore", DeprecationWarning)
        return rdflib.Graph().parse(data=body, format={formats.TURTLE: "turtle", formats.N_TRIPLES: "nt",
                                                       formats.JSON_LD: "json-ld", formats.RDF_XML: "xml"}[fmt])


NODE = URIRef(f"urn:uuid:{TASK_ID}")


@pytest.mark.parametrize("fmt", [formats.TURTLE, formats.N_TRIPLES, formats.JSON_LD, formats.RDF_XML],
                         ids=lambda f: f.media_type)
def test_an_import_notifies_with_the_prov_graph_in_the_decided_format(fmt: formats.Format) -> None:
    ended = task(Kind.GRAPH_PUT, TaskStatus.COMPLETED, Result(201, graph="http://g", added=7, removed=2),
                 notify(fmt, method="PUT", client_request_id="c-1"))
    note = notification_for(ended, RESULT, "Bearer t")
    assert (note.url, note.method, note.message_id) == ("http://receiver.example/n", "PUT", TASK_ID)
    assert note.headers == {"Request-ID": TASK_ID, "Authorization": "Bearer t", "Client-Request-ID": "c-1",
                            "Content-Type": fmt.content_type}
    assert isinstance(note.body, bytes)
    graph = graph_of(note.body, fmt)
    assert graph.value(NODE, GSA.outcome) == GSA.Completed
    assert graph.value(NODE, GSA.statusCode).toPython() == 201
    assert graph.value(NODE, GSA.statementsAdded).toPython() == 7
    assert graph.value(NODE, GSA.statementsRemoved).toPython() == 2


def test_gzip_compresses_the_graph_and_says_so() -> None:
    ended = task(Kind.UPDATE, TaskStatus.COMPLETED, Result(204), notify(gzip_=True))
    note = notification_for(ended, RESULT, None)
    assert note.headers["Content-Encoding"] == "gzip" and "Authorization" not in note.headers
    assert isinstance(note.body, bytes)
    assert graph_of(gzip.decompress(note.body), formats.TURTLE).value(NODE, GSA.outcome) == GSA.Completed


def test_a_completed_query_notifies_with_its_result_file() -> None:
    ended = task(Kind.QUERY, TaskStatus.COMPLETED, Result(200, content_type=formats.SPARQL_JSON.content_type),
                 notify(report_format(None, result=formats.SPARQL_JSON)), result_type=formats.SPARQL_JSON.media_type)
    assert carries_result(ended)
    note = notification_for(ended, RESULT, None)
    assert note.body == RESULT and note.headers["Content-Type"] == formats.SPARQL_JSON.content_type


def test_a_failed_query_notifies_with_the_graph_and_its_problem() -> None:
    problem = errors.SyntaxProblem("bad", line=3, column=9).problem()
    ended = task(Kind.QUERY, TaskStatus.FAILED, Result.failed(problem), notify(report_format(
        None, result=formats.SPARQL_JSON)), result_type=formats.SPARQL_JSON.media_type)
    note = notification_for(ended, RESULT, None)
    assert note.headers["Content-Type"] == formats.TURTLE.content_type  # a result format no graph can take
    assert isinstance(note.body, bytes)
    graph = graph_of(note.body, formats.TURTLE)
    assert graph.value(NODE, GSA.outcome) == GSA.Failed
    error = graph.value(NODE, GSA.error)
    assert graph.value(error, GSA.line).toPython() == 3 and graph.value(error, GSA.column).toPython() == 9


def test_a_failed_construct_notifies_in_its_own_rdf_format() -> None:
    fmt = report_format(formats.N_TRIPLES.media_type, result=formats.N_TRIPLES)
    ended = task(Kind.QUERY, TaskStatus.CANCELLED, Result.failed(errors.Cancelled("stop").problem()), notify(fmt),
                 result_type=formats.N_TRIPLES.media_type)
    note = notification_for(ended, RESULT, None)
    assert note.headers["Content-Type"] == formats.N_TRIPLES.content_type
    assert isinstance(note.body, bytes)
    assert graph_of(note.body, formats.N_TRIPLES).value(NODE, GSA.outcome) == GSA.Cancelled


def test_the_report_format_is_decided_strictly() -> None:
    assert report_format(None, result=None) is formats.TURTLE
    assert report_format(formats.JSON_LD.media_type, result=None) is formats.JSON_LD
    with pytest.raises(errors.BadAsyncHeader) as refused:
        report_format(formats.SPARQL_JSON.media_type, result=None)  # an import's graph cannot be SPARQL JSON
    assert refused.value.extensions["header"] == "Asynchronous-Content-Type"
    with pytest.raises(errors.BadAsyncHeader):
        report_format("text/plain", result=None)


def test_a_callback_is_a_get_with_the_request_id() -> None:
    ended = task(Kind.GRAPH_DELETE, TaskStatus.COMPLETED, Result(204), None, callback="http://cb.example/x")
    note = callback_for(ended)
    assert (note.url, note.method, note.body, dict(note.headers)) == (
        "http://cb.example/x", "GET", None, {"Request-ID": TASK_ID})
    assert note.message_id == f"{TASK_ID}-callback"


def test_terms_and_results_survive_their_json() -> None:
    terms = Terms(Notify("http://r/n", "PUT", formats.JSON_LD, True, "sealed:x", True, "c"), "http://cb/")
    assert Terms.from_json(terms.to_json()) == terms
    assert terms.deliveries == ("notification", "callback")
    assert terms.without_credentials().notify is not None
    assert not terms.without_credentials().holds_credentials
    result = Result(201, "http://g", "http://g", 5, 0, 9, None, None)
    assert Result.from_json(result.to_json()) == result
    failed = Result.failed(errors.QueryTimeout("late").problem(), processed=3)
    assert Result.from_json(failed.to_json()).error == failed.error and failed.status == 503


def test_every_problem_class_has_its_type_in_the_clients_table() -> None:
    classes = {c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.GraphStoreError)
               and c is not errors.ClientError}
    assert classes == set(errors.PROBLEM_CLASSES)
    assert all(errors.PROBLEM_TYPES[cls("x").type_uri] is cls for cls in classes if cls is not errors.QueueFull)
    assert errors.PROBLEM_TYPES[errors.QueueFull("x").type_uri] is errors.QueueFull
    assert errors.BY_STATUS[404] is errors.NotFound and errors.BY_STATUS[503] is errors.Unavailable


def test_a_result_has_read_at_least_what_it_added() -> None:
    assert Result.of(Outcome(204, statements_added=5), processed=0).processed == 5  # no progress report came
    assert Result.of(Outcome(204, statements_added=5), processed=9).processed == 9
    assert Result.of(Outcome(204), processed=None).processed is None  # an update does not count
