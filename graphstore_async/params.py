"""Values a request carries in its parameters and path, checked in one place before anything uses them.

* An IRI (`?graph=`, `default-graph-uri`, `using-graph-uri`, a directly identified graph, a view's `$x=<…>`) is
  valid when the engine says so: pyoxigraph's `NamedNode` is its own definition (RFC 3987, absolute, with a
  scheme), so an IRI we accept is one the store will take, and a bad one is a 400 here, not a 500 there.
* A whole number (`limit`, `offset`) is ASCII digits only, and few enough of them to fit in 64 bits: `str.isdigit`
  and `int` also take `²` or `٣` and blanks and `_`.
* A time in seconds (`timeout`) is ASCII digits with at most one point and more than zero: `float` would also take
  `1e9`, `inf`, `nan`, `-1`, ` 5` and `٣`.
* A task id is a UUID in its canonical form before it becomes part of a Redis key: `<id>:deliveries` is
  another key of the same task.
"""

from __future__ import annotations

import re
import uuid

import pyoxigraph

from graphstore_async.errors import BadRequest, TaskNotFound

MAX_DIGITS = 18  # below 2**63
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")
_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?|\.[0-9]{1,6}")


def absolute_iri(text: str, *, what: str = "IRI") -> str:
    """`text`, if it is an absolute IRI the engine accepts; 400 saying why not."""
    try:
        pyoxigraph.NamedNode(text)
    except ValueError as exc:
        raise BadRequest(f"{what} {text!r} is not an absolute IRI: {exc}", parameter=what) from exc
    return text


def whole_number(text: str, *, what: str) -> int:
    """`text` as a non-negative integer: ASCII digits, at most MAX_DIGITS of them; 400 otherwise."""
    if not _DIGITS.fullmatch(text):
        raise BadRequest(f"{what} must be a whole number of at most {MAX_DIGITS} digits 0-9, not {text!r}",
                         parameter=what)
    return int(text)


def seconds(text: str, *, what: str) -> float:
    """`text` as a positive number of seconds: ASCII digits, at most one point (`30`, `2.5`, `.5`); 400 otherwise."""
    if not _SECONDS.fullmatch(text) or float(text) == 0:
        raise BadRequest(f"{what} must be a number of seconds above 0, in digits 0-9 with at most one '.' (at most 9 "
                         f"digits before it and 6 after), not {text!r}", parameter=what)
    return float(text)


def task_id(text: str) -> str:
    """`text`, if it can be a task's id (a UUID, as new_task_id writes it); else there is no such task (404)."""
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        canonical = None
    if canonical != text:
        raise TaskNotFound(f"there is no task {text!r}", task=text)
    return text
