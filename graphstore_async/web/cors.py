"""CORS (the Fetch standard's cross-origin protocol): which pages on other origins may read our answers in a
browser. Off unless `cors_origins` lists origins.

A browser sends `Origin` with a cross-origin request, and before one that is not "simple" (a PUT or DELETE, a
Content-Type other than a form's, an Authorization or Prefer header) a preflight: OPTIONS with
Access-Control-Request-Method. The router answers every OPTIONS with 204 and the resource's true Allow (app.py);
this module only adds headers, when a response is prepared (aiohttp's on_response_prepare: a streamed result's
headers leave before any middleware sees the response):

* an origin the list names: Access-Control-Allow-Origin with that origin, and Allow-Credentials;
* any other origin, with `*` in the list: Access-Control-Allow-Origin `*`, never with credentials (a page
  elsewhere must not read with a user's cookies or cached Basic credentials; browsers refuse both together);
* any other origin: nothing, and the browser keeps the answer from the page.

Every answer to an allowed origin exposes the headers a client reads (Location, Request-ID, …); an allowed
preflight also gets Access-Control-Allow-Methods (the Allow), -Allow-Headers and -Max-Age. Once the list is
not empty every response says Vary: Origin, as its CORS headers depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from graphstore_async.settings import Settings
from graphstore_async.tasks.request import CAPTURED_HEADERS

ANY = "*"
PREFLIGHT_MAX_AGE_S = 3600  # how long a browser may keep a preflight's answer (Chromium keeps at most 7200 s)
# What a page may send: the terms of an asynchronous request (those a task records) and the content headers.
REQUEST_HEADERS = ", ".join(sorted(
    {*CAPTURED_HEADERS, "Accept", "Accept-Asynchronous", "Content-Encoding"} - {"Context"}))
# What a page may read besides the safelisted ones (Content-Type, Content-Length, …).
EXPOSED_HEADERS = ", ".join(("Accept-Patch", "Allow", "AsyncResult", "Client-Request-ID", "Location",
                             "Preference-Applied", "Request-ID", "Retry-After", "WWW-Authenticate"))
_DEFAULT_PORTS = {"http": 80, "https": 443}


def serialized_origin(entry: str) -> str:
    """An origin as a browser sends it in `Origin` (scheme://host[:port], lower case, no default port); ValueError
    for anything that is not an origin (a path, credentials, another scheme)."""
    refused = ValueError(f"cors_origins: {entry!r} is not an origin (scheme://host[:port]) nor {ANY}")
    try:
        parts = urlsplit(entry.strip())
        port = parts.port
    except ValueError as exc:
        raise refused from exc
    if (parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None
            or parts.path not in ("", "/") or parts.query or parts.fragment or "?" in entry or "#" in entry):
        raise refused
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class Cors:
    """Which origins may read: those listed (with credentials), and any other if `*` is listed (without)."""

    origins: frozenset[str] = frozenset()
    any_origin: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Cors:
        """The policy of `cors_origins`; a bad entry fails at start-up, not on the first request."""
        entries = [entry.strip() for entry in settings.cors_origins]
        return cls(frozenset(serialized_origin(e) for e in entries if e != ANY), ANY in entries)

    def __bool__(self) -> bool:
        return bool(self.origins) or self.any_origin

    def headers(self, *, method: str, origin: str | None, preflight: bool, allow: str | None) -> dict[str, str]:
        """The CORS headers of an answer to a request from `origin` (None: no Origin header, not a browser's
        cross-origin request). `preflight`: an OPTIONS with Access-Control-Request-Method; `allow`: the
        resource's Allow, as the router's OPTIONS answer gives it."""
        if origin is None:
            return {}
        if origin in self.origins:
            found = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
        elif self.any_origin:
            found = {"Access-Control-Allow-Origin": ANY}
        else:
            return {}
        if method == hdrs.METH_OPTIONS and preflight and allow is not None:
            found.update({"Access-Control-Allow-Methods": allow, "Access-Control-Allow-Headers": REQUEST_HEADERS,
                          "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S)})
        else:
            found["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return found

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """aiohttp's hook, for every response of the application just before its headers are sent."""
        preflight = request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
        allow = response.headers.get(hdrs.ALLOW) if response.status == 204 else None
        response.headers.update(self.headers(method=request.method, origin=request.headers.get(hdrs.ORIGIN),
                                             preflight=preflight, allow=allow))
        response.headers[hdrs.VARY] = varied(response.headers, hdrs.ORIGIN)


def varied(headers: Mapping[str, str], name: str) -> str:
    """The Vary header with `name` in it (once)."""
    current = headers.get(hdrs.VARY)
    if not current:
        return name
    if name.lower() in (item.strip().lower() for item in current.split(",")):
        return current
    return f"{current}, {name}"
