"""The notification graph as a receiver reads it: every format parses back (with rdflib, as a receiver would) to
the graph that was built, whatever the strings in it — quotes, newlines, backslashes, non-ASCII, control
characters (XML cannot carry most of them: they are replaced, in every format), IRIs outside our prefixes."""

from __future__ import annotations

import pytest
from helpers import parse_graph
from rdflib.compare import isomorphic

from graphstore_async import formats
from graphstore_async.tasks.provenance import Activity, activity_graph, serialize
from graphstore_async.tasks.terms import NOTIFICATION_FORMATS
from graphstore_async.taskstatus import TaskStatus

AWKWARD = 'a "quoted" \\ back\\slash,\nnew line\r\ttab \x01 control, «non-ASCII» 🚀, """ triple'

ACTIVITIES = [
    Activity(task_id="0ce4b548-53e1-4399-b31c-0b552acafd67", method="POST", started="2026-11-22T10:00:00.000Z",
             ended="2026-11-22T10:00:00.125Z", actor="http://127.0.0.1:8080/test",
             repository="http://127.0.0.1:8080/test/repo", status=TaskStatus.COMPLETED, status_code=201,
             client_request_id="batch-7", statements_added=1000, statements_removed=0,
             graph="http://example.org/graphs/a-b.c_d#frag"),
    Activity(task_id="5f0e8f1c-0000-4000-8000-000000000001", method="PUT", started="2026-11-22T10:00:00.000Z",
             ended="2026-11-22T10:00:01.000Z", actor="http://127.0.0.1:8080/test",
             repository="http://127.0.0.1:8080/test/repo", status=TaskStatus.FAILED, status_code=400,
             client_request_id=AWKWARD,
             error={"type": "https://w3id.org/graphstore-async/problems/syntax", "detail": AWKWARD, "line": 3,
                    "column": 14}),
    Activity(task_id="5f0e8f1c-0000-4000-8000-000000000002", method="DELETE", started=None, ended=None,
             actor="http://127.0.0.1:8080/test", repository="http://127.0.0.1:8080/test/repo",
             status=TaskStatus.RUNNING, statements_processed=0, with_status=True),
]


@pytest.mark.parametrize("fmt", NOTIFICATION_FORMATS, ids=lambda f: f.media_type)
@pytest.mark.parametrize("activity", ACTIVITIES, ids=lambda a: a.status.value)
def test_every_format_reads_back_as_the_graph_built(activity: Activity, fmt: formats.Format) -> None:
    built = activity_graph(activity)
    read = parse_graph(serialize(built, fmt), fmt.media_type)
    assert isomorphic(built, read), serialize(built, fmt).decode()


def test_turtle_uses_our_prefixes() -> None:
    text = serialize(activity_graph(ACTIVITIES[0]), formats.TURTLE).decode()
    assert "@prefix as: <https://www.w3.org/ns/activitystreams#> ." in text
    assert " a as:Update" in text and "gsa:outcome gsa:Completed" in text and "gsa:statusCode 201" in text, text
    assert "prov:generated <http://example.org/graphs/a-b.c_d#frag>" in text, text


def test_control_characters_are_replaced() -> None:
    built = activity_graph(ACTIVITIES[1])
    details = [str(o) for o in built.objects() if "quoted" in str(o)]
    assert details and all("\x01" not in d and "\ufffd control" in d and "\n" in d and "\t" in d for d in details)
