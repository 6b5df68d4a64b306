"""The routes of app.py, read from its router (so that a route added later is tested by itself), each as a URL
with sample values; and a request sent on a plain socket, to see every byte of the answer (a HEAD's body must
be nothing at all, which a client that knows the method would not show)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from conftest import Running
from helpers import raw_exchange
from multidict import CIMultiDict

from graphstore_async.settings import Settings
from graphstore_async.web.app import create_app

PROBES = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND")
_PARAMETER = re.compile(r"\{(\w+)\}")


def resources(settings: Settings) -> list[web.Resource]:
    """Every resource of the application app.py makes, in the router's order."""
    return [r for r in create_app(settings).router.resources() if isinstance(r, web.Resource)]


def routed_methods(resource: web.Resource) -> set[str]:
    """The methods a handler was added for (the route for any other method aside)."""
    return {route.method for route in resource if route.method != hdrs.METH_ANY}


def url_of(running: Running, resource: web.Resource, values: dict[str, str]) -> str:
    names = _PARAMETER.findall(resource.canonical)
    missing = [name for name in names if name not in values]
    assert not missing, f"{resource.canonical}: give this test a sample value for {missing}"
    return running.url(resource.canonical.format(**{name: values[name] for name in names}))


def methods_in(allow: str) -> set[str]:
    return {method.strip() for method in allow.split(",") if method.strip()}


@dataclass
class RawAnswer:
    status: int
    headers: CIMultiDict[str]
    body: bytes


async def raw_request(method: str, url: str, headers: dict[str, str] | None = None) -> RawAnswer:
    """One request with no body on its own connection; the answer as sent, body bytes and all."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close",
             *(f"{name}: {value}" for name, value in (headers or {}).items())]
    answer = await raw_exchange(url, "\r\n".join(lines) + "\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.add(name.strip(), value.strip())
    return RawAnswer(int(status_line.split(" ")[1]), parsed, body)
