"""SPARQL LOAD, fetched by us: the engine's own HTTP client never sees the URL.

With `allow_load` on, `LOAD [SILENT] <source> [INTO GRAPH <g>]` is carried out as a fetch through the one egress
policy (outbound.Client: the URL checked as the client reads it, every address checked where the connection is
made, redirects not followed), streamed to a spool file under a size limit, its format taken from the answer's
Content-Type (or the URL's extension when that says nothing), and then loaded like a Graph Store POST — parsed
and checked (bounds.py) before anything is written. A source that cannot be fetched is a 502 problem; SILENT
makes every failure of the fetch or the parse a success that loaded nothing, as SPARQL 1.1 Update §3.1.4 says.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import aiohttp

from graphstore_async import formats
from graphstore_async.errors import BadGateway, EgressRefused, FetchRefused, PayloadTooLarge, UnsupportedMediaType
from graphstore_async.outbound import Client
from graphstore_async.settings import Settings
from graphstore_async.store import Source

CHUNK_BYTES = 256 * 1024
_GENERIC_TYPES = frozenset({"", "text/plain", "application/octet-stream"})


class Fetcher:
    """Fetches LOAD sources into files under `directory`; one per process, sharing its Client."""

    def __init__(self, client: Client, directory: Path, *, max_bytes: int) -> None:
        self._client = client
        self._directory = directory
        self._max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Fetcher:
        client = Client.from_settings(settings, timeout_s=settings.load_timeout_s)
        return cls(client, settings.spool_dir / "load", max_bytes=settings.max_body_bytes)

    async def close(self) -> None:
        await self._client.close()

    @contextlib.asynccontextmanager
    async def fetched(self, url: str, *, own_origin: str | None) -> AsyncIterator[Source]:
        """The source's body in a spool file (removed on the way out), with its RDF format."""
        self._directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._directory, suffix=".load")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                fmt = await self._download(url, own_origin, out)
            yield Source(path, fmt, url)
        finally:
            path.unlink(missing_ok=True)

    async def _download(self, url: str, own_origin: str | None, out: BinaryIO) -> formats.Format:
        try:
            async with self._client.request("GET", url, own_origin=own_origin, headers={
                    "Accept": ", ".join(f.media_type for f in formats.RDF_FORMATS), "Accept-Encoding": "identity",
            }) as response:
                if response.status != 200:
                    where = f" to {response.headers.get('Location')}" if 300 <= response.status < 400 else ""
                    raise BadGateway(f"LOAD <{url}>: the source answered {response.status}{where}", source=url)
                encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise BadGateway(f"LOAD <{url}>: the source sent Content-Encoding {encoding}", source=url)
                fmt = _format_of(url, response.headers.get("Content-Type"))
                size = 0
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise PayloadTooLarge(f"LOAD <{url}>: the source is larger than {self._max_bytes} bytes",
                                              max_bytes=self._max_bytes)
                    out.write(chunk)
                return fmt
        except EgressRefused as exc:
            raise FetchRefused(f"LOAD <{url}> is refused: {exc.detail}", source=url) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise BadGateway(f"LOAD <{url}>: the source could not be fetched: {type(exc).__name__}: {exc}",
                             source=url) from exc


def _format_of(url: str, content_type: str | None) -> formats.Format:
    media = formats.media_type_of(content_type)
    if media not in _GENERIC_TYPES:
        try:
            return formats.rdf_format_for(media)
        except UnsupportedMediaType as exc:
            raise BadGateway(f"LOAD <{url}>: the source is {media}, not an RDF format", source=url) from exc
    by_name = formats.by_extension(url.rpartition("/")[2].rpartition(".")[2].lower(), formats.RDF_FORMATS)
    if by_name is None:
        raise BadGateway(f"LOAD <{url}>: the source says neither by its type nor by its name which RDF format "
                         "it is", source=url)
    return by_name
