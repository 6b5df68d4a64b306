"""The load generator, run in its own process: `python -m bench.load [SPEC_JSON] < SPEC_JSON`; prints JSON results.

An HTTP/1.1 keep-alive client written on asyncio protocols (callbacks, no coroutine per request), so that one
process can drive far more requests per second than the servers under test answer on this machine. SPEC (the
argument, or stdin when there is none):

    {"port": 8080, "method": "POST", "targets": ["/a/r/service?graph=…", …], "headers": {"Content-Type": …},
     "body": "<s{i}> <p> \\"{i}\\" .", "concurrency": 32, "count": 5000, "duration": null, "expect": [202]}

Request i goes to targets[i % len(targets)] with "{i}" in the body replaced by i. It stops after `count`
requests or `duration` seconds. Output: count (answered with an expected status), errors, statuses, duration
(first request sent to last answer), rate, p50/p99 latency in ms, and started/ended (time.monotonic()).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from typing import Any


class Generator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.port = int(spec["port"])
        self.targets = [str(t) for t in spec["targets"]]
        self.method = str(spec.get("method", "GET"))
        self.body = spec.get("body")
        self.count = spec.get("count")
        self.duration = spec.get("duration")
        self.concurrency = int(spec.get("concurrency", 8))
        self.expect = set(spec.get("expect", [200]))
        headers = {"Host": f"127.0.0.1:{self.port}", **spec.get("headers", {})}
        self.header_block = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.issued = 0
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.error_sample = ""
        self.started = 0.0
        self.ended = 0.0
        self.deadline = float("inf")
        self.open = 0
        self.done: asyncio.Future[None] | None = None
        self.connecting: set[asyncio.Task[None]] = set()

    def more(self) -> bool:
        return (self.count is None or self.issued < self.count) and time.monotonic() < self.deadline

    def next_request(self) -> bytes | None:
        if not self.more():
            return None
        i = self.issued
        self.issued += 1
        target = self.targets[i % len(self.targets)]
        head = f"{self.method} {target} HTTP/1.1\r\n{self.header_block}"
        if self.body is None:
            return (head + "\r\n").encode()
        body = str(self.body).replace("{i}", str(i)).encode()
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def answered(self, status: int, latency: float, body: bytes) -> None:
        self.ended = time.monotonic()
        self.statuses[status] += 1
        if status in self.expect:
            self.latencies.append(latency)
        else:
            self.errors += 1
            self.error_sample = self.error_sample or f"{status}: {body[:300].decode('utf-8', 'replace')}"

    def failed(self, reason: str) -> None:
        self.errors += 1
        self.error_sample = self.error_sample or reason

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)

    async def run(self) -> dict[str, Any]:
        self.done = asyncio.get_running_loop().create_future()
        self.started = self.ended = time.monotonic()
        if self.duration is not None:
            self.deadline = self.started + float(self.duration)
        self.open = self.concurrency
        for _ in range(self.concurrency):
            self.reconnect()
        await self.done
        return self.results()

    def reconnect(self) -> None:
        task = asyncio.get_running_loop().create_task(self.connect())
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: Connection(self), "127.0.0.1", self.port)
        except OSError as exc:
            self.failed(f"connect: {exc}")
            self.closed()

    def results(self) -> dict[str, Any]:
        duration = max(self.ended - self.started, 1e-9)
        ms = sorted(latency * 1000 for latency in self.latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else None
        return {"count": len(ms), "errors": self.errors, "statuses": {str(k): v for k, v in self.statuses.items()},
                "error_sample": self.error_sample, "duration": duration, "rate": len(ms) / duration,
                "p50_ms": statistics.median(ms) if ms else None, "p99_ms": p99,
                "started": self.started, "ended": self.ended}


class Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, read its answer (Content-Length or chunked), send the next."""

    def __init__(self, generator: Generator) -> None:
        self.gen = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.in_flight = False
        self.status = 0
        self.remaining = -1  # body bytes still to come; -1: reading the head; -2: chunked
        self.body = bytearray()
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        request = self.gen.next_request()
        if request is None:
            self.transport.close()
            return
        self.in_flight = True
        self.sent_at = time.monotonic()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.in_flight and self._parse():
            self.in_flight = False
            self.gen.answered(self.status, time.monotonic() - self.sent_at, bytes(self.body))
            if self.close_after:
                assert self.transport is not None
                self.transport.close()
                return
            self.send()

    def _parse(self) -> bool:
        """True when a whole answer is in."""
        if self.remaining == -1:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            self.status = int(head[0].split(" ", 2)[1])
            self.body = bytearray()
            fields = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip().lower()
            self.close_after = fields.get("connection") == "close"
            if "chunked" in fields.get("transfer-encoding", ""):
                self.remaining = -2
            else:
                self.remaining = int(fields.get("content-length", "0"))
        if self.remaining == -2:
            return self._chunks()
        if len(self.buffer) < self.remaining:
            return False
        self.body += self.buffer[: self.remaining]
        del self.buffer[: self.remaining]
        self.remaining = -1
        return True

    def _chunks(self) -> bool:
        while True:
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(self.buffer[:line_end]).split(b";")[0], 16)
            if size == 0:  # last chunk: no trailers expected, just the final CRLF
                if len(self.buffer) < line_end + 4:
                    return False
                del self.buffer[: line_end + 4]
                self.remaining = -1
                return True
            if len(self.buffer) < line_end + 2 + size + 2:
                return False
            if len(self.body) < 300:
                self.body += self.buffer[line_end + 2: line_end + 2 + size]
            del self.buffer[: line_end + 2 + size + 2]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight:
            self.gen.failed(f"connection lost: {exc}")
        if self.gen.more():  # closed by the server (Connection: close, or an error): go on with a new one
            self.gen.reconnect()
            return
        self.gen.closed()


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0] if argv else sys.stdin.read())
    results = asyncio.run(Generator(spec).run())
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
