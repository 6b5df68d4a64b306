"""Request bodies: what data may be, its RDF format (a value, or from a file's name), and what aiohttp sends."""

from __future__ import annotations

import asyncio
import io
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

from graphstore_async import formats
from graphstore_async.formats import Format

Data = bytes | str | Path  # a Path is streamed from disk
CHUNK = 256 * 1024


def rdf_format_of(name: str | Path) -> Format | None:
    """The RDF format a file's name says (books.ttl: Turtle, all.trig: TriG, …); None for an extension we do not
    know."""
    extension = Path(name).name.rpartition(".")[2].lower()
    return formats.by_extension(extension, formats.RDF_FORMATS)


def content_type_of(data: Data, *, format: Format | None = None, content_type: str | None = None) -> str:
    """The Content-Type of an RDF body: the format given as a value (formats.TURTLE, …), or a media type as it is
    (sent unchecked: the server answers 415 for one it cannot read), or for a file the format its name says."""
    if format is not None and content_type is not None:
        raise ValueError("give the body's format or its content_type, not both")
    if format is not None:
        if format not in formats.RDF_FORMATS:
            raise ValueError(f"{format} is not an RDF format; give one of "
                             + ", ".join(f.name for f in formats.RDF_FORMATS))
        return format.media_type
    if content_type is not None:
        return content_type
    if isinstance(data, Path):
        found = rdf_format_of(data)
        if found is not None:
            return found.media_type
        raise ValueError(f"cannot tell the RDF format of {data} from its extension; give format= (one of "
                         + ", ".join(f".{f.extension}" for f in formats.RDF_FORMATS) + ")")
    raise ValueError("give the format of the data: format=formats.TURTLE (or N_TRIPLES, …), or content_type=")


async def _gzip_file(fh: IO[bytes]) -> AsyncIterator[bytes]:
    """The file gzip-compressed, chunk by chunk (read off the event loop)."""
    compressor = zlib.compressobj(wbits=31)  # 31: the gzip container
    while chunk := await asyncio.to_thread(fh.read, CHUNK):
        if packed := compressor.compress(chunk):
            yield packed
    yield compressor.flush()


@asynccontextmanager
async def payload(data: Data | None, gzip: bool) -> AsyncIterator[Any]:
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
