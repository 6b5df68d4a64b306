"""Named views (SPEC §5): stored queries at /{account}/{repo}/{view}, run now or later, delivered anywhere.

PUT stores a query (parsed first), DELETE removes it, GET with `Accept: application/sparql-query` returns its
text, GET or POST runs it: `/{view}.srj|.srx|.csv|.tsv|.ttl|.nt|.nq|.jsonld` picks the format, `$name=value`
arguments bind variables (bindings.py), `limit` and `offset` apply. Running needs read; managing needs write.
A view runs through the same path as any query: synchronously, or as a task in notify or monitor mode.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

from aiohttp import web

from graphstore_async import bindings, formats, sparqltext
from graphstore_async.auth import Grant
from graphstore_async.errors import BadRequest, UnsupportedMediaType
from graphstore_async.operations import Kind, Operation
from graphstore_async.web import asynchronous, context
from graphstore_async.web.bodies import read_utf8
from graphstore_async.web.sparql import (
    MAX_OPERATION_BYTES,
    OFF_LOOP_CHARS,
    bounded,
    check_syntax,
    form_fields,
    result_formats,
    time_limited,
)

EXTENSIONS = {f.extension: f for f in formats.ALL_FORMATS}
EXTENSIONS["nq"] = formats.N_QUADS


def _name_and_format(request: web.Request) -> tuple[str, formats.Format | None]:
    name = request.match_info["view"]
    stem, dot, extension = name.rpartition(".")
    if dot and extension in EXTENSIONS:
        return stem, EXTENSIONS[extension]
    return name, None


async def listing(request: web.Request) -> web.Response:
    repo = await context.repository(request, Grant.READ)
    views = [{"name": name, "form": (sparqltext.query_form(text) or sparqltext.QueryForm.SELECT).value,
              "modified": datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds"),
              "url": f"{context.base_url(request)}/{repo.id}/{name}"}
             for name, text, mtime in repo.views()]
    return web.json_response({"views": views})


async def put(request: web.Request) -> web.Response:
    repo = await context.repository(request, Grant.WRITE)
    name, fmt = _name_and_format(request)
    media = formats.media_type_of(request.headers.get("Content-Type"))
    if fmt is not None:
        raise BadRequest(f"a view's name cannot end in .{request.match_info['view'].rpartition('.')[2]}")
    if media != formats.SPARQL_QUERY:
        raise UnsupportedMediaType(f"a view is stored from a body of type {formats.SPARQL_QUERY}, "
                                   f"not {media or 'none'}")
    text = await read_utf8(request, context.limits(request), MAX_OPERATION_BYTES)
    await check_syntax(repo.store, text, await bounded(request, text, "view's query"), update=False)
    created = repo.put_view(name, text)
    return web.Response(status=201 if created else 204,
                        headers={"Location": f"{context.base_url(request)}/{repo.id}/{name}"})


async def delete(request: web.Request) -> web.Response:
    repo = await context.repository(request, Grant.WRITE)
    name = _name_and_format(request)[0]
    repo.delete_view(name)
    return web.Response(status=204)


def _bound(text: str, arguments: dict[str, str]) -> str:
    return bindings.apply(text, bindings.parse_arguments(arguments, text))


async def run(request: web.Request) -> web.StreamResponse:
    repo = await context.repository(request, Grant.READ)
    name, fmt = _name_and_format(request)
    text = repo.view(name)
    accept = request.headers.get("Accept", "")
    if request.method in ("GET", "HEAD") and fmt is None and formats.media_type_of(accept) == formats.SPARQL_QUERY:
        return web.Response(text=text, headers={"Content-Type": formats.SPARQL_QUERY})
    asked = asynchronous.asked_of(request, request.app[context.EGRESS])
    arguments = dict(request.query)
    if request.method == "POST":
        if formats.media_type_of(request.headers.get("Content-Type")) != formats.FORM:
            raise UnsupportedMediaType(f"a view's arguments are POSTed as {formats.FORM}")
        arguments.update(form_fields(await read_utf8(request, context.limits(request), MAX_OPERATION_BYTES)))
    if len(text) < OFF_LOOP_CHARS:
        query = _bound(text, arguments)
    else:  # the bindings are placed by tokenizing the view: proportional to its size
        query = await asyncio.to_thread(_bound, text, arguments)
    offers, default = result_formats((await bounded(request, query, "view's query")).form)
    if fmt is not None and fmt not in offers:
        raise BadRequest(f"this view's result cannot be written as .{fmt.extension}; available: "
                         + ", ".join("." + f.extension for f in offers))
    if asked is not None:
        fmt = fmt or asynchronous.result_format(request, asked, offers, default)
    else:
        fmt = fmt or formats.negotiate(accept or None, offers, default)
    op = Operation(Kind.QUERY, repo.id, text=query, result_type=fmt.media_type,
                   base_iri=f"{context.base_url(request)}/{repo.id}/{name}")
    op = time_limited(request, op, [arguments["timeout"]] if "timeout" in arguments else [], task=asked is not None)
    return await asynchronous.run_or_submit(request, repo.store, op, asked, None,
                                            [hashlib.sha256(query.encode()).hexdigest()])
