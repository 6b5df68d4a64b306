"""Namespaces of notifications and status graphs: ActivityStreams, PROV-O, HTTP methods, and ours.

Our own terms are defined in vocab/graphstore.ttl (with labels and comments); GSA lists the same terms, and a
test keeps the two in step. `_fail = True`: a misspelt term is an error, not a new IRI.
"""

# ruff: noqa: N815 — RDF terms keep their own camelCase spelling
from __future__ import annotations

from pathlib import Path

from rdflib.namespace import PROV, DefinedNamespace, Namespace
from rdflib.term import URIRef

VOCAB_DIR = Path(__file__).resolve().parent.parent / "vocab"
CONTEXT_FILE = VOCAB_DIR / "context.jsonld"


class AS(DefinedNamespace):
    """ActivityStreams 2.0 terms that notifications use."""

    _fail = True
    _NS = Namespace("https://www.w3.org/ns/activitystreams#")

    Activity: URIRef
    Update: URIRef
    id: URIRef
    actor: URIRef
    object: URIRef
    inReplyTo: URIRef
    summary: URIRef


class HTM(DefinedNamespace):
    """W3C HTTP Vocabulary in RDF: methods."""

    _fail = True
    _NS = Namespace("http://www.w3.org/2011/http-methods#")

    GET: URIRef
    PUT: URIRef
    POST: URIRef
    PATCH: URIRef
    DELETE: URIRef


class GSA(DefinedNamespace):
    """graphstore-async terms (vocab/graphstore.ttl)."""

    _fail = True
    _NS = Namespace("https://w3id.org/graphstore-async/ns#")

    Outcome: URIRef
    Status: URIRef
    Pending: URIRef
    Running: URIRef
    status: URIRef
    statementsProcessed: URIRef
    Completed: URIRef
    Failed: URIRef
    Cancelled: URIRef
    outcome: URIRef
    statusCode: URIRef
    statementsAdded: URIRef
    statementsRemoved: URIRef
    error: URIRef
    Problem: URIRef
    problemType: URIRef
    detail: URIRef
    line: URIRef
    column: URIRef


__all__ = ["AS", "CONTEXT_FILE", "GSA", "HTM", "PROV", "VOCAB_DIR"]
