"""The notification graph: what an asynchronous request did, in ActivityStreams + PROV-O (built with rdflib).

    <urn:uuid:ID> a as:Update, htm:PUT ;
        as:id <urn:uuid:ID> ; as:actor <user> ; as:object <repository> ; as:inReplyTo "client request id" ;
        prov:startedAtTime "…"^^xsd:dateTime ; prov:endedAtTime "…"^^xsd:dateTime ;
        gsa:outcome gsa:Completed ; gsa:statusCode 201 ; gsa:statementsAdded 1000 ; gsa:statementsRemoved 0 ;
        prov:generated <graph> ;
        gsa:error [ a gsa:Problem ; gsa:problemType <…> ; gsa:detail "…" ; gsa:line 9 ; gsa:column 3 ] .

Serialised as Turtle, N-Triples, N-Quads, RDF/XML or JSON-LD; JSON-LD is compacted with pyld against
vocab/context.jsonld, with a document loader that never goes to the network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from pyld import jsonld
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

from graphstore_async import formats
from graphstore_async.errors import BadRequest
from graphstore_async.formats import Format
from graphstore_async.tasks.records import Task
from graphstore_async.taskstatus import TaskStatus
from graphstore_async.vocab import AS, CONTEXT_FILE, GSA, HTM, PROV

_OUTCOMES = {TaskStatus.COMPLETED: GSA.Completed, TaskStatus.FAILED: GSA.Failed, TaskStatus.CANCELLED: GSA.Cancelled}
_STATUSES = {TaskStatus.PENDING: GSA.Pending, TaskStatus.RUNNING: GSA.Running, **_OUTCOMES}
_METHODS = {"GET": HTM.GET, "PUT": HTM.PUT, "POST": HTM.POST, "PATCH": HTM.PATCH, "DELETE": HTM.DELETE}
_PREFIXES = (("as", str(AS._NS)), ("prov", str(PROV._NS)), ("htm", str(HTM._NS)), ("gsa", str(GSA._NS)),
             ("xsd", str(XSD)))
_TURTLE_HEAD = "".join(f"@prefix {prefix}: <{namespace}> .\n" for prefix, namespace in _PREFIXES)
_LOCAL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # replaced in every format alike
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_IRI_ESCAPES = {c: f"\\u{c:04X}" for c in (*range(0x21), *map(ord, '<>"{}|^`\\'))}
_STRING_ESCAPES = {**{c: f"\\u{c:04X}" for c in range(0x20)}, ord("\n"): "\\n", ord("\r"): "\\r",
                   ord("\t"): "\\t", ord('"'): '\\"', ord("\\"): "\\\\"}


@dataclass(frozen=True)
class Activity:
    task_id: str
    method: str
    started: str | None
    ended: str | None
    actor: str
    repository: str
    status: TaskStatus
    status_code: int | None = None
    client_request_id: str | None = None
    statements_added: int | None = None
    statements_removed: int | None = None
    graph: str | None = None
    error: dict[str, Any] | None = None
    statements_processed: int | None = None  # status documents: progress so far
    with_status: bool = False  # status documents say gsa:status (pending and running included)


def activity_of(task: Task, *, status_document: bool = False) -> Activity:
    """What a task did, from its record: for its notification, or (with its status and progress so far) for
    its status document."""
    result = task.result
    return Activity(
        task_id=task.id, method=task.record.method, started=task.started, ended=task.ended,
        actor=f"{task.base_url}/{task.account}", repository=f"{task.base_url}/{task.repository}",
        status=task.status, status_code=None if result is None else result.status,
        client_request_id=task.record.header("Client-Request-ID"),
        statements_added=None if result is None else result.added,
        statements_removed=None if result is None else result.removed,
        graph=None if result is None else result.graph, error=task.error,
        statements_processed=task.statements if status_document else None, with_status=status_document,
    )


def activity_graph(activity: Activity) -> Graph:
    graph = Graph(bind_namespaces="none")
    node = URIRef(f"urn:uuid:{activity.task_id}")
    add = graph.add
    add((node, RDF.type, AS.Update))
    add((node, RDF.type, _METHODS[activity.method]))
    add((node, AS.id, node))
    for term, time in ((PROV.startedAtTime, activity.started), (PROV.endedAtTime, activity.ended)):
        if time:
            add((node, term, Literal(time, datatype=XSD.dateTime)))
    add((node, AS.actor, URIRef(activity.actor)))
    add((node, AS.object, URIRef(activity.repository)))
    if activity.client_request_id:
        add((node, AS.inReplyTo, _text(activity.client_request_id)))
    if activity.status in _OUTCOMES:
        add((node, GSA.outcome, _OUTCOMES[activity.status]))
    if activity.with_status:
        add((node, GSA.status, _STATUSES[activity.status]))
    for term, number in ((GSA.statusCode, activity.status_code), (GSA.statementsAdded, activity.statements_added),
                         (GSA.statementsRemoved, activity.statements_removed),
                         (GSA.statementsProcessed, activity.statements_processed)):
        if number is not None:
            add((node, term, Literal(number)))
    if activity.graph:
        add((node, PROV.generated, URIRef(activity.graph)))
    if activity.error:
        _add_problem(graph, node, activity.error)
    return graph


def _add_problem(graph: Graph, node: URIRef, error: dict[str, Any]) -> None:
    problem = BNode()
    graph.add((node, GSA.error, problem))
    graph.add((problem, RDF.type, GSA.Problem))
    graph.add((problem, GSA.problemType, URIRef(str(error.get("type", "about:blank")))))
    graph.add((problem, GSA.detail, _text(str(error.get("detail", "")))))
    for key, term in (("line", GSA.line), ("column", GSA.column)):
        if isinstance(error.get(key), int):
            graph.add((problem, term, Literal(error[key])))


def _text(value: str) -> Literal:
    return Literal(_NOT_IN_XML.sub("\ufffd", value))


def serialize(graph: Graph, fmt: Format) -> bytes:
    if fmt is formats.JSON_LD:
        expanded = json.loads(graph.serialize(format="json-ld"))
        compacted = jsonld.compact(expanded, _context(), options={"documentLoader": _no_network})
        return json.dumps(compacted, ensure_ascii=False).encode()
    if fmt in (formats.N_TRIPLES, formats.N_QUADS):  # a graph's N-Quads are its N-Triples (default graph)
        return graph.serialize(format="nt", encoding="utf-8")
    if fmt is formats.RDF_XML:
        return graph.serialize(format="xml", encoding="utf-8")
    if fmt is formats.TURTLE:
        return turtle(graph)
    raise BadRequest(f"a notification cannot be written as {fmt}")


def turtle(graph: Graph) -> bytes:
    """Turtle, one subject at a time with our prefixes. Written here rather than by rdflib's serializer, which
    spends ~0.5 ms on a notification's dozen triples: most of what a small task costs its worker."""
    out = [_TURTLE_HEAD]
    for subject in sorted(set(graph.subjects()), key=lambda s: (isinstance(s, BNode), str(s))):
        pairs = sorted(graph.predicate_objects(subject), key=lambda po: (po[0] != RDF.type, str(po[0])))
        lines = " ;\n    ".join(f"{'a' if p == RDF.type else _turtle_term(p)} {_turtle_term(o)}" for p, o in pairs)
        out.append(f"\n{_turtle_term(subject)} {lines} .\n")
    return "".join(out).encode()


def _turtle_term(term: Any) -> str:
    if isinstance(term, URIRef):
        return _turtle_iri(str(term))
    if isinstance(term, BNode):
        return f"_:{term}"
    assert isinstance(term, Literal)
    lexical = str(term)
    if term.datatype == XSD.integer and _INTEGER.match(lexical):
        return lexical
    quoted = '"' + lexical.translate(_STRING_ESCAPES) + '"'
    if term.language:
        return f"{quoted}@{term.language}"
    if term.datatype is None or term.datatype == XSD.string:
        return quoted
    return f"{quoted}^^{_turtle_iri(str(term.datatype))}"


def _turtle_iri(iri: str) -> str:
    for prefix, namespace in _PREFIXES:
        if iri.startswith(namespace) and _LOCAL_NAME.match(iri, len(namespace)):
            return f"{prefix}:{iri[len(namespace):]}"
    return f"<{iri.translate(_IRI_ESCAPES)}>"


@cache
def _context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads(CONTEXT_FILE.read_text())
    return context


def _no_network(url: str, options: dict[str, Any] | None = None) -> Any:
    raise jsonld.JsonLdError(f"remote context {url} refused: contexts are local", "loading document failed")
