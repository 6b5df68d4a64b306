"""Request bodies to spool files: streamed, gzip decoded with a bound on expansion, size limited.

A body is never held whole in memory: chunks go to a file as they arrive. aiohttp's own decompression is
turned off (see app.py) so that a gzip bomb is refused here after a bounded amount of output, and a truncated
gzip stream is reported instead of silently accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web

from graphstore_async import formats
from graphstore_async.errors import BadEncoding, BadRequest, PayloadTooLarge, UnsupportedMediaType
from graphstore_async.formats import Format

CHUNK_BYTES = 256 * 1024
GZIP_FREE_BYTES = 1024 * 1024  # output allowed before the expansion ratio is enforced
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_gzip_ratio: float


@dataclass(frozen=True)
class SpooledBody:
    path: Path
    format: Format
    digest: str  # SHA-256 of the decoded body (what makes two requests the same)


class _Decoder:
    """identity or gzip, every gzip member of the body in turn (RFC 1952: a gzip file may be several members,
    and `gzip -dc` gives them all); anything after a member that is not another member is an error."""

    def __init__(self, encoding: str, limits: Limits) -> None:
        self._gzip = _member() if encoding == "gzip" else None
        self._limits = limits
        self.bytes_in = 0
        self.bytes_out = 0

    def feed(self, chunk: bytes) -> bytes:
        self.bytes_in += len(chunk)
        out = chunk if self._gzip is None else self._inflate(chunk)
        self.bytes_out += len(out)
        if self.bytes_out > self._limits.max_bytes:
            raise PayloadTooLarge(f"the body is larger than {self._limits.max_bytes} bytes",
                                  max_bytes=self._limits.max_bytes)
        return out

    def _inflate(self, chunk: bytes) -> bytes:
        assert self._gzip is not None
        parts: list[bytes] = []
        produced = 0
        while chunk:
            if self._gzip.eof:  # the member ended: what follows must be another member
                if not _GZIP_MAGIC.startswith(chunk[:2]):
                    raise BadEncoding("the gzip body has data after its last member that is not another member")
                self._gzip = _member()
            allowed = self._allowed_out() - self.bytes_out - produced
            try:
                out = self._gzip.decompress(chunk, max(allowed, 0) + 1)
            except zlib.error as exc:
                raise BadEncoding(f"the gzip body is corrupt: {exc}") from exc
            if self._gzip.unconsumed_tail:
                raise PayloadTooLarge(
                    f"the gzip body expands more than {self._limits.max_gzip_ratio:g} times; refused as a gzip bomb",
                    max_gzip_ratio=self._limits.max_gzip_ratio,
                )
            parts.append(out)
            produced += len(out)
            chunk = self._gzip.unused_data if self._gzip.eof else b""
        return b"".join(parts)

    def _allowed_out(self) -> int:
        ratio_bound = int(self.bytes_in * self._limits.max_gzip_ratio) + GZIP_FREE_BYTES
        return min(ratio_bound, self._limits.max_bytes + 1)

    def finish(self) -> None:
        if self._gzip is not None and not self._gzip.eof:
            raise BadEncoding("the gzip body is truncated: the stream ended before the gzip trailer")


def _member() -> Any:
    return zlib.decompressobj(16 + zlib.MAX_WBITS)


def content_encoding(request: web.Request) -> str:
    return encoding_of(request.headers.get("Content-Encoding"))


def encoding_of(header: str | None) -> str:
    """gzip or identity, from a request's or a multipart part's Content-Encoding; 415 for anything else."""
    encoding = (header or "identity").strip().lower()
    if encoding in ("", "identity"):
        return "identity"
    if encoding in ("gzip", "x-gzip"):
        return "gzip"
    raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; send gzip or identity",
                               encoding=encoding)


async def _write(chunks: AsyncIterator[bytes], decoder: _Decoder, directory: Path, durable: bool
                 ) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, suffix=".body")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                decoded = decoder.feed(chunk)
                digest.update(decoded)
                out.write(decoded)
            decoder.finish()
            if durable:  # settings.spool_fsync: a queued task's body survives a crash of the machine
                out.flush()
                await asyncio.to_thread(os.fsync, out.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), digest.hexdigest()


async def spool_request(request: web.Request, directory: Path, limits: Limits, fmt: Format,
                        durable: bool = False) -> SpooledBody:
    """The whole request body, decoded, in a new file under `directory` (the caller removes it)."""
    if request.content_length is not None and request.content_length > limits.max_bytes:
        raise PayloadTooLarge(f"the body ({request.content_length} bytes) is larger than {limits.max_bytes}",
                              max_bytes=limits.max_bytes)
    decoder = _Decoder(content_encoding(request), limits)
    path, digest = await _write(request.content.iter_chunked(CHUNK_BYTES), decoder, directory, durable)
    return SpooledBody(path, fmt, digest)


async def read_small(request: web.Request, limits: Limits, max_bytes: int) -> bytes:
    """A body that is small by nature (a query, an update, a form) in memory, decoded, at most `max_bytes`."""
    bounded = Limits(min(max_bytes, limits.max_bytes), limits.max_gzip_ratio)
    if request.content_length is not None and request.content_length > bounded.max_bytes:
        raise PayloadTooLarge(f"the body ({request.content_length} bytes) is larger than {bounded.max_bytes}",
                              max_bytes=bounded.max_bytes)
    decoder = _Decoder(content_encoding(request), bounded)
    parts = [decoder.feed(chunk) async for chunk in request.content.iter_chunked(CHUNK_BYTES)]
    decoder.finish()
    return b"".join(parts)


async def read_utf8(request: web.Request, limits: Limits, max_bytes: int) -> str:
    """A small body (`read_small`) that must be UTF-8 text: 415 for another declared charset, 400 for bytes that
    are not UTF-8."""
    charset = formats.charset_of(request.headers.get("Content-Type"))
    if charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaType(f"the body must be UTF-8, not {charset}", charset=charset)
    raw = await read_small(request, limits, max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8: {exc}") from exc


async def spool_multipart(request: web.Request, directory: Path, limits: Limits,
                          durable: bool = False) -> list[SpooledBody]:
    """Each part of a multipart/form-data body in a file of its own, with the part's RDF format."""
    content_encoding(request)
    bodies: list[SpooledBody] = []
    total = 0
    try:
        try:
            reader = await request.multipart()
        except ValueError as exc:
            raise BadRequest(f"the multipart body is malformed: {exc}") from exc
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not supported")
            fmt = formats.rdf_format_for(part.headers.get("Content-Type") or _by_filename(part.filename))
            remaining = Limits(limits.max_bytes - total, limits.max_gzip_ratio)
            decoder = _Decoder(encoding_of(part.headers.get("Content-Encoding")), remaining)
            path, digest = await _write(_part_chunks(part), decoder, directory, durable)
            bodies.append(SpooledBody(path, fmt, digest))
            total += decoder.bytes_out
    except BaseException:
        for body in bodies:
            body.path.unlink(missing_ok=True)
        raise
    if not bodies:
        raise BadRequest("the multipart body has no parts")
    return bodies


async def _next_part(reader: MultipartReader) -> Any:
    try:
        return await reader.next()
    except ValueError as exc:  # aiohttp's word for a missing or wrong boundary, or a body cut short
        raise BadRequest(f"the multipart body is malformed: {exc}") from exc


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        try:
            chunk = await part.read_chunk(CHUNK_BYTES)
        except ValueError as exc:
            raise BadRequest(f"the multipart body is malformed: {exc}") from exc
        if not chunk:
            return
        yield chunk


def _by_filename(filename: str | None) -> str | None:
    extension = (filename or "").rpartition(".")[2].lower()
    fmt = formats.by_extension(extension, formats.RDF_FORMATS)
    return fmt.media_type if fmt else None
