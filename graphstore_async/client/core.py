"""The Client: one aiohttp session; each operation synchronous, in notify mode, in monitor mode, or both."""

from __future__ import annotations

import asyncio
import io
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, overload

import aiohttp

from graphstore_async import formats
from graphstore_async.client.errors import ClientError, TransportError
from graphstore_async.client.operation import AsyncOperation
from graphstore_async.client.response import Response
from graphstore_async.targets import Target

Data = bytes | str | Path
CHUNK = 256 * 1024


Graph = str | None | Target  # an IRI; None for the default graph; a Target (DATASET: the whole dataset — GET
# exports every graph, PUT replaces them all, POST creates a new graph)


@dataclass(frozen=True)
class Notify:
    """Notify mode: when the task is over, the server sends its outcome (or the result) to `location`."""

    location: str | None
    method: str = "POST"
    content_type: str | None = None
    gzip: bool = False
    authorization: str | None = None

    def headers(self) -> dict[str, str]:
        sent = {"Accept-Asynchronous": "notify", "Asynchronous-Method": self.method,
                "Asynchronous-Content-Encoding": "gzip" if self.gzip else "identity"}
        optional = {"Asynchronous-Location": self.location, "Asynchronous-Content-Type": self.content_type,
                    "Asynchronous-Authorization": self.authorization}
        sent.update({name: value for name, value in optional.items() if value is not None})
        return sent


def target_of(graph: Graph) -> Target:
    return graph if isinstance(graph, Target) else Target(graph)


def graph_params(graph: Graph) -> list[tuple[str, str]]:
    target = target_of(graph)
    if target.dataset:
        return []
    return [("default", "")] if target.graph is None else [("graph", target.graph)]


def content_type_for(data: Data, content_type: str | None) -> str:
    if content_type is not None:
        return content_type
    if isinstance(data, Path):
        fmt = formats.by_extension(data.name.rpartition(".")[2].lower(), formats.RDF_FORMATS)
        if fmt is not None:
            return fmt.media_type
        raise ValueError(f"cannot tell the RDF format of {data} from its extension; give content_type")
    raise ValueError("give the content_type of the data")


async def _gzip_file(fh: IO[bytes]) -> AsyncIterator[bytes]:
    """The file gzip-compressed, chunk by chunk (read off the event loop)."""
    compressor = zlib.compressobj(wbits=31)  # 31: the gzip container
    while chunk := await asyncio.to_thread(fh.read, CHUNK):
        if packed := compressor.compress(chunk):
            yield packed
    yield compressor.flush()


@asynccontextmanager
async def _payload(data: Data | None, gzip: bool) -> AsyncIterator[Any]:
    """What aiohttp sends: bytes, or for a Path the open file (streamed with its Content-Length) or its gzip
    stream (chunked)."""
    if data is None:
        yield None
    elif isinstance(data, Path):
        with data.open("rb") as fh:
            yield _gzip_file(fh) if gzip else fh
    else:
        raw = data.encode() if isinstance(data, str) else data
        raw = zlib.compress(raw, wbits=31) if gzip else raw
        yield io.BytesIO(raw) if len(raw) > CHUNK else raw  # aiohttp writes a large buffer in pieces


class Client:
    """`async with Client("http://127.0.0.1:8080", token=…) as client: await client.query("a/r", "ASK {}")`.

    Every operation answers a Response when run synchronously and raises HTTPError for a 4xx/5xx answer. With
    `notify=Notify(…)` and/or `respond_async=True` (`wait=N`: the server may answer at once when done within N s)
    it answers an AsyncOperation instead; see AsyncOperation for an answer given at once."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=30)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def repo_url(self, repo: str, path: str = "") -> str:
        return f"{self.base_url}/{repo}{path}"

    # -- the transport ---------------------------------------------------------------------------------------------

    async def fetch(self, method: str, url: str, *, params: Sequence[tuple[str, str]] = (),
                    headers: Mapping[str, str] | None = None, data: Any = None) -> Response:
        """One request; its answer read whole, whatever its status. TransportError when there is no answer."""
        if self._session is None:
            raise ClientError("use the client as `async with Client(…) as client`")
        try:
            async with self._session.request(method, url, params=list(params), headers=headers,
                                             data=data) as answer:
                return Response(answer.status, answer.headers, await answer.read(), str(answer.url))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{method} {url}: {exc or type(exc).__name__}") from exc

    async def _fetch(self, method: str, url: str) -> Response:
        return await self.fetch(method, url)

    async def _send(self, method: str, url: str, *, params: Sequence[tuple[str, str]] = (),
                    headers: Mapping[str, str] | None = None, data: Data | None = None, gzip: bool = False,
                    notify: Notify | None = None, respond_async: bool = False, wait: float | None = None,
                    client_request_id: str | None = None) -> Response | AsyncOperation:
        sent = dict(headers or {})
        if gzip:
            sent["Content-Encoding"] = "gzip"
        if notify is not None:
            sent.update(notify.headers())
        if wait is not None and not respond_async:
            raise ValueError("wait= goes with respond_async=True")
        if respond_async:
            sent["Prefer"] = "respond-async" if wait is None else f"respond-async, wait={wait:g}"
        if client_request_id is not None:
            sent["Client-Request-ID"] = client_request_id
        async with _payload(data, gzip) as payload:
            response = await self.fetch(method, url, params=params, headers=sent, data=payload)
        response.raise_for_status(method)
        if notify is None and not respond_async:
            return response
        if response.status == 202:
            return AsyncOperation.accepted(self._fetch, response)
        return AsyncOperation.answered(self._fetch, response)

    # -- tasks -----------------------------------------------------------------------------------------------------

    def task(self, task_id: str) -> AsyncOperation:
        """The task with this id (status unknown until poll())."""
        return AsyncOperation(self._fetch, request_id=task_id, monitor_url=f"{self.base_url}/tasks/{task_id}")

    async def tasks(self, *, status: str | None = None, repository: str | None = None,
                    limit: int | None = None) -> list[dict[str, Any]]:
        """Status documents of the caller's tasks (every task, for an administrator), newest first."""
        params = [(name, str(value)) for name, value in
                  (("status", status), ("repository", repository), ("limit", limit)) if value is not None]
        response = (await self.fetch("GET", f"{self.base_url}/tasks", params=params)).raise_for_status("GET")
        found: list[dict[str, Any]] = response.json()["tasks"]
        return found

    # -- operations ------------------------------------------------------------------------------------------------
    # Each has three signatures, so that a type checker knows what comes back: synchronous (a Response), notify
    # mode (an AsyncOperation), monitor mode (an AsyncOperation).

    @overload
    async def query(self, repo: str, text: str, *, accept: str | None = ..., get: bool = ...,
                    default_graphs: Sequence[str] = ..., named_graphs: Sequence[str] = ..., notify: None = ...,
                    respond_async: Literal[False] = ..., client_request_id: str | None = ...) -> Response: ...
    @overload
    async def query(self, repo: str, text: str, *, accept: str | None = ..., get: bool = ...,
                    default_graphs: Sequence[str] = ..., named_graphs: Sequence[str] = ..., notify: Notify,
                    respond_async: bool = ..., wait: float | None = ...,
                    client_request_id: str | None = ...) -> AsyncOperation: ...
    @overload
    async def query(self, repo: str, text: str, *, accept: str | None = ..., get: bool = ...,
                    default_graphs: Sequence[str] = ..., named_graphs: Sequence[str] = ...,
                    notify: Notify | None = ..., respond_async: Literal[True], wait: float | None = ...,
                    client_request_id: str | None = ...) -> AsyncOperation: ...

    async def query(self, repo: str, text: str, *, accept: str | None = None, get: bool = False,
                    default_graphs: Sequence[str] = (), named_graphs: Sequence[str] = (),
                    notify: Notify | None = None, respond_async: bool = False, wait: float | None = None,
                    client_request_id: str | None = None) -> Response | AsyncOperation:
        """A SPARQL query: POSTed as application/sparql-query (or sent with GET when `get`)."""
        params = [("default-graph-uri", g) for g in default_graphs] + [("named-graph-uri", g) for g in named_graphs]
        headers = {"Accept": accept} if accept else {}
        if get:
            params.append(("query", text))
        else:
            headers["Content-Type"] = formats.SPARQL_QUERY
        return await self._send("GET" if get else "POST", self.repo_url(repo, "/sparql"), params=params,
                                headers=headers, data=None if get else text, notify=notify,
                                respond_async=respond_async, wait=wait, client_request_id=client_request_id)

    @overload
    async def update(self, repo: str, text: str, *, notify: None = ..., respond_async: Literal[False] = ...,
                     client_request_id: str | None = ...) -> Response: ...
    @overload
    async def update(self, repo: str, text: str, *, notify: Notify, respond_async: bool = ...,
                     wait: float | None = ..., client_request_id: str | None = ...) -> AsyncOperation: ...
    @overload
    async def update(self, repo: str, text: str, *, notify: Notify | None = ..., respond_async: Literal[True],
                     wait: float | None = ..., client_request_id: str | None = ...) -> AsyncOperation: ...

    async def update(self, repo: str, text: str, *, notify: Notify | None = None, respond_async: bool = False,
                     wait: float | None = None, client_request_id: str | None = None) -> Response | AsyncOperation:
        """A SPARQL update, POSTed as application/sparql-update."""
        return await self._send("POST", self.repo_url(repo, "/sparql"), data=text,
                                headers={"Content-Type": formats.SPARQL_UPDATE}, notify=notify,
                                respond_async=respond_async, wait=wait, client_request_id=client_request_id)

    @overload
    async def get_graph(self, repo: str, graph: Graph = ..., *, accept: str = ..., notify: None = ...,
                        respond_async: Literal[False] = ..., client_request_id: str | None = ...) -> Response: ...
    @overload
    async def get_graph(self, repo: str, graph: Graph = ..., *, accept: str = ..., notify: Notify,
                        respond_async: bool = ..., wait: float | None = ...,
                        client_request_id: str | None = ...) -> AsyncOperation: ...
    @overload
    async def get_graph(self, repo: str, graph: Graph = ..., *, accept: str = ..., notify: Notify | None = ...,
                        respond_async: Literal[True], wait: float | None = ...,
                        client_request_id: str | None = ...) -> AsyncOperation: ...

    async def get_graph(self, repo: str, graph: Graph = None, *, accept: str = "text/turtle",
                        notify: Notify | None = None, respond_async: bool = False, wait: float | None = None,
                        client_request_id: str | None = None) -> Response | AsyncOperation:
        """A graph (None: the default graph; DATASET: every graph, in a dataset format). In notify mode the
        result goes to the notification; its type is Notify.content_type."""
        return await self._send("GET", self.repo_url(repo, "/service"), params=graph_params(graph),
                                headers={"Accept": accept}, notify=notify, respond_async=respond_async, wait=wait,
                                client_request_id=client_request_id)

    @overload
    async def put_graph(self, repo: str, data: Data, graph: Graph = ..., *, content_type: str | None = ...,
                        gzip: bool = ..., notify: None = ..., respond_async: Literal[False] = ...,
                        client_request_id: str | None = ...) -> Response: ...
    @overload
    async def put_graph(self, repo: str, data: Data, graph: Graph = ..., *, content_type: str | None = ...,
                        gzip: bool = ..., notify: Notify, respond_async: bool = ..., wait: float | None = ...,
                        client_request_id: str | None = ...) -> AsyncOperation: ...
    @overload
    async def put_graph(self, repo: str, data: Data, graph: Graph = ..., *, content_type: str | None = ...,
                        gzip: bool = ..., notify: Notify | None = ..., respond_async: Literal[True],
                        wait: float | None = ..., client_request_id: str | None = ...) -> AsyncOperation: ...

    async def put_graph(self, repo: str, data: Data, graph: Graph = None, *, content_type: str | None = None,
                        gzip: bool = False, notify: Notify | None = None, respond_async: bool = False,
                        wait: float | None = None, client_request_id: str | None = None) -> Response | AsyncOperation:
        """Replace a graph (DATASET: the whole dataset) with `data`: bytes, text, or a file (streamed from disk;
        its type from its extension unless `content_type` says). `gzip` compresses the body on the way."""
        return await self._send("PUT", self.repo_url(repo, "/service"), params=graph_params(graph),
                                headers={"Content-Type": content_type_for(data, content_type)}, data=data,
                                gzip=gzip, notify=notify, respond_async=respond_async, wait=wait,
                                client_request_id=client_request_id)

    @overload
    async def post_graph(self, repo: str, data: Data, graph: Graph = ..., *, content_type: str | None = ...,
                         gzip: bool = ..., notify: None = ..., respond_async: Literal[False] = ...,
                         client_request_id: str | None = ...) -> Response: ...
    @overload
    async def post_graph(self, repo: str, data: Data, graph: Graph = ..., *, content_type: str | None = ...,
                         gzip: bool = ..., notify: Notify, respond_async: bool = ..., wait: float | None = ...,
                         client_request_id: str | None = ...) -> AsyncOperation: ...
    @overload
    async def post_graph(self, repo: str, data: Data, graph: Graph = ..., *, content_type: str | None = ...,
                         gzip: bool = ..., notify: Notify | None = ..., respond_async: Literal[True],
                         wait: float | None = ..., client_request_id: str | None = ...) -> AsyncOperation: ...

    async def post_graph(self, repo: str, data: Data, graph: Graph = None, *, content_type: str | None = None,
                         gzip: bool = False, notify: Notify | None = None, respond_async: bool = False,
                         wait: float | None = None, client_request_id: str | None = None) -> Response | AsyncOperation:
        """Merge `data` into a graph; with DATASET, make a new graph (201, its IRI in Location). As put_graph."""
        return await self._send("POST", self.repo_url(repo, "/service"), params=graph_params(graph),
                                headers={"Content-Type": content_type_for(data, content_type)}, data=data,
                                gzip=gzip, notify=notify, respond_async=respond_async, wait=wait,
                                client_request_id=client_request_id)

    @overload
    async def delete_graph(self, repo: str, graph: str | None = ..., *, notify: None = ...,
                           respond_async: Literal[False] = ..., client_request_id: str | None = ...) -> Response: ...
    @overload
    async def delete_graph(self, repo: str, graph: str | None = ..., *, notify: Notify, respond_async: bool = ...,
                           wait: float | None = ..., client_request_id: str | None = ...) -> AsyncOperation: ...
    @overload
    async def delete_graph(self, repo: str, graph: str | None = ..., *, notify: Notify | None = ...,
                           respond_async: Literal[True], wait: float | None = ...,
                           client_request_id: str | None = ...) -> AsyncOperation: ...

    async def delete_graph(self, repo: str, graph: str | None = None, *, notify: Notify | None = None,
                           respond_async: bool = False, wait: float | None = None,
                           client_request_id: str | None = None) -> Response | AsyncOperation:
        """Delete a graph (None: empty the default graph)."""
        return await self._send("DELETE", self.repo_url(repo, "/service"), params=graph_params(graph),
                                notify=notify, respond_async=respond_async, wait=wait,
                                client_request_id=client_request_id)

    async def view(self, repo: str, name: str, *, accept: str | None = None, notify: Notify | None = None,
                   respond_async: bool = False, wait: float | None = None, client_request_id: str | None = None,
                   limit: int | None = None, offset: int | None = None, **bindings: str,
                   ) -> Response | AsyncOperation:
        """Run a named view: GET /{repo}/{name}?$variable=value for each binding (a value is written as the
        server reads it: "<iri>", "5", '"text"@en', plain text). Synchronous, or a task with notify= and/or
        respond_async=True."""
        params = [(f"${variable}", str(value)) for variable, value in bindings.items()]
        params += [(key, str(value)) for key, value in (("limit", limit), ("offset", offset)) if value is not None]
        headers = {"Accept": accept} if accept else {}
        return await self._send("GET", self.repo_url(repo, f"/{name}"), params=params, headers=headers,
                                notify=notify, respond_async=respond_async, wait=wait,
                                client_request_id=client_request_id)
