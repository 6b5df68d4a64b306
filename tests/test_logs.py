"""Log lines: the formatters on their own, and `graphstore-async serve` as a real process — one JSON line per
request and per task state change, with the fields an operator needs and no secret; a client that goes away is
no ERROR."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from processes import environment, fetch, run_cli, serving, stop, wait_healthy

from graphstore_async import logs
from graphstore_async.auth import token_entry

TOKEN = "SECRETTOKEN"  # alice's token: it must never be logged, nor a wrong one
WRONG = "WRONGSECRETTOKEN"
BODY_SECRET = "BODYSECRET"
QUERY_SECRET = "QUERYSECRET"
REQUEST_FIELDS = {"time", "level", "logger", "message", "request_id", "method", "route", "path", "status",
                  "duration_ms"}
TASK_FIELDS = {"time", "level", "logger", "message", "task_id", "status"}


# --- the formatters -----------------------------------------------------------------------------------------

def capture(log_format: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logs.handler(log_format)
    handler.setStream(stream)  # type: ignore[attr-defined]  # a StreamHandler
    logger = logging.getLogger(f"test_logs.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, stream


def test_json_lines_carry_the_values_and_the_request_id() -> None:
    logger, stream = capture("json")

    def handling() -> None:
        logs.REQUEST_ID.set("r-1")
        logger.info("GET %s 200", "/x", extra=logs.fields(route="/x", status=200, user="alice", nothing=None))

    contextvars.copy_context().run(handling)
    logger.warning("outside any request")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "GET /x 200" and first["level"] == "INFO"
    assert {k: first[k] for k in ("request_id", "route", "status", "user")} == {
        "request_id": "r-1", "route": "/x", "status": 200, "user": "alice"}
    assert "nothing" not in first
    assert first["time"].endswith("Z")
    assert second["message"] == "outside any request" and "request_id" not in second


def test_a_traceback_stays_in_its_json_line() -> None:
    logger, stream = capture("json")
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        logger.exception("it failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["level"] == "ERROR" and "ValueError: broken" in line["traceback"]


def test_text_lines_quote_values_so_one_record_is_one_line() -> None:
    logger, stream = capture("text")
    logger.info("task t-1 failed", extra=logs.fields(task_id="t-1", reason="a reason\nwith a newline", n=3))
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(' INFO ' + logger.name + ' task t-1 failed task_id=t-1 reason="a reason\\nwith a newline" n=3')


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log_format must be one of text, json"):
        logs.handler("xml")


def test_log_format_comes_from_the_option_or_the_environment(tmp_path: Path) -> None:
    shown = run_cli("config", cwd=tmp_path, env=environment(GSA_LOG_FORMAT="json"))
    assert shown.returncode == 0, shown.stderr
    assert "log_format = json" in shown.stdout.splitlines()
    refused = run_cli("config", cwd=tmp_path, env=environment(GSA_LOG_FORMAT="xml"))
    assert refused.returncode == 2
    assert "log_format must be one of text, json, not 'xml'" in refused.stderr
    bad_option = run_cli("serve", "--log-format", "xml", cwd=tmp_path)
    assert bad_option.returncode == 2
    assert "invalid choice: 'xml'" in bad_option.stderr


# --- a real server ------------------------------------------------------------------------------------------

@contextmanager
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A notification receiver on 127.0.0.1 (a thread): its host:port, and the paths it was sent to."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def start(tmp_path: Path, redis_url: str, *options: str, config: str | None = None,
          **variables: str) -> tuple[list[str | Path], dict[str, str], str]:
    port = free_port()
    args: list[str | Path] = ["--data-dir", tmp_path / "data", "serve", "--host", "127.0.0.1", "--port", str(port),
                              "--redis-url", redis_url, *options]
    if config is not None:
        (tmp_path / "gsa.toml").write_text(config)
        args[:0] = ["--config", tmp_path / "gsa.toml"]
    env = environment(GSA_REDIS_PREFIX=f"gsa-logs-{uuid.uuid4().hex[:12]}", **variables)
    return args, env, f"http://127.0.0.1:{port}"


def json_lines(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines()
    assert lines
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    return parsed


def test_serve_logs_one_json_line_per_request_and_per_task_state_change(tmp_path: Path, redis_url: str) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with receiver() as (where, received):
        args, env, base = start(tmp_path, redis_url, "--log-format", "json", GSA_NOTIFY_ALLOW=where,
                                config="[accounts.alice]\n" + token_entry("alice", TOKEN))
        log = tmp_path / "server.log"
        made: list[tuple[str, str, int]] = []  # method, path, status of every request but /health

        def call(method: str, path: str, status: int, headers: dict[str, str] | None = None,
                 data: bytes | None = None) -> dict[str, str]:
            got, answer_headers, body = fetch(base + path, method=method, headers=headers, data=data)
            assert got == status, body
            made.append((method, urllib.parse.urlsplit(path).path, status))
            return answer_headers

        with serving(args, cwd=tmp_path, env=env, log=log) as process:
            wait_healthy(process, base, log)
            call("PUT", "/alice/demo", 201, bearer)
            turtle = {**bearer, "Content-Type": "text/turtle"}
            call("PUT", "/alice/demo/service?graph=http://example.org/g", 201, turtle,
                 f'<http://example.org/s> <http://example.org/p> "{BODY_SECRET}" .'.encode())
            query = urllib.parse.urlencode({"query": "ASK {}", "access_token": QUERY_SECRET})
            call("GET", f"/alice/demo/sparql?{query}", 200, bearer)
            call("GET", "/alice/demo/sparql?query=ASK%7B%7D", 401, {"Authorization": f"Bearer {WRONG}"})
            call("GET", "/alice/demo", 401)
            call("GET", "/metrics", 403, bearer)  # alice is no administrator
            accepted = call("PUT", "/alice/demo/service?graph=http://example.org/t", 202,
                            {**bearer, "Content-Type": "text/turtle", "Accept-Asynchronous": "notify",
                             "Asynchronous-Location": f"http://{where}/done"},
                            b"<http://example.org/s> <http://example.org/p> 1 .")
            task_id = accepted["Request-ID"]
            deadline = time.monotonic() + 20
            while True:
                _, _, body = fetch(f"{base}/tasks/{task_id}/status", headers=bearer)
                made.append(("GET", f"/tasks/{task_id}/status", 200))
                if json.loads(body)["notification"]["delivery"]:
                    break
                assert time.monotonic() < deadline, body
                time.sleep(0.1)
            time.sleep(0.3)  # the task's last line is written after its state
            stop(process, log)
    assert received == ["/done"]

    text = log.read_text()
    for secret in (TOKEN, WRONG, BODY_SECRET, QUERY_SECRET):
        assert secret not in text, secret
    lines = json_lines(log)
    requests = [line for line in lines if line["logger"] == "graphstore_async.request" and line["route"] != "/health"]
    assert Counter((r["method"], r["path"], r["status"]) for r in requests) == Counter(made)
    for line in requests:
        assert REQUEST_FIELDS <= line.keys(), line
        assert "{" in line["route"] or line["route"] in ("/metrics", "unmatched"), line
        assert "alice" not in line["route"] and task_id not in line["route"]
        assert isinstance(line["duration_ms"], float | int)
    users = Counter(r.get("user") for r in requests)
    assert users == {"alice": len(made) - 2, "anonymous": 1, None: 1}  # None: credentials refused
    assert len({r["request_id"] for r in requests}) == len(requests)

    events = [line for line in lines if line["logger"] == "graphstore_async.task" and line["task_id"] == task_id]
    for line in events:
        assert TASK_FIELDS <= line.keys(), line
    assert [(e["status"], e.get("delivery")) for e in events] == [
        ("pending", None), ("running", None), ("completed", None), ("delivered", "notification")]
    assert all(e["kind"] == "graph-put" and e["user"] == "alice" for e in events[:3])
    acceptance = next(r for r in requests if r["status"] == 202)
    assert acceptance["task_id"] == task_id
    assert events[0]["request_id"] == acceptance["request_id"]  # the line of the request that accepted it
    assert "duration_ms" in events[2] and "latency_ms" in events[3]


def raw_get(base: str, path: str, *, read_all: bool, reset: bool) -> bytes:
    """GET `path` on a socket of our own: read the whole (chunked) answer or only its start, then close — with
    a reset (SO_LINGER 0) when `reset`, as a client that gives up does."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/n-triples\r\n\r\n".encode())
        got = sock.recv(4096)
        while read_all and not got.endswith(b"\r\n0\r\n\r\n"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return got


def test_a_client_that_goes_away_is_no_error(tmp_path: Path, redis_url: str) -> None:
    args, env, base = start(tmp_path, redis_url)  # text lines, the default
    log = tmp_path / "server.log"
    data = "".join(f'<http://example.org/s{i}> <http://example.org/p> "{"x" * 40} {i}" .\n' for i in range(40_000))
    with serving(args, cwd=tmp_path, env=env, log=log) as process:
        wait_healthy(process, base, log)
        assert fetch(base + "/demo/demo", method="PUT")[0] == 201
        assert fetch(base + "/demo/demo/service?default", method="PUT", data=data.encode(),
                     headers={"Content-Type": "application/n-triples"})[0] == 204  # the default graph is always there
        whole = raw_get(base, "/demo/demo/service?default", read_all=True, reset=True)
        assert whole.startswith(b"HTTP/1.1 200") and whole.endswith(b"\r\n0\r\n\r\n")
        assert raw_get(base, "/demo/demo/service?default", read_all=True, reset=False).endswith(b"\r\n0\r\n\r\n")
        for reset in (False, True):  # given up half-way: the server's next write fails
            assert raw_get(base, "/demo/demo/service?default", read_all=False, reset=reset).startswith(b"HTTP/1.1 200")
        status, headers, _ = fetch(base + "/demo/demo/sparql?query=ASK%7B%7D", headers={"Prefer": "respond-async"})
        assert status == 202
        events = raw_get(base, f"/tasks/{headers['Request-ID']}/events", read_all=False, reset=True)
        assert events.startswith(b"HTTP/1.1 200")
        assert fetch(base + "/health")[0] == 200  # still serving
        time.sleep(0.5)
        stop(process, log)
    text = log.read_text()
    assert " ERROR " not in text and " CRITICAL " not in text and "Traceback" not in text, text
    closed = [line for line in text.splitlines()
              if "graphstore_async.request GET /{account}/{repo}/service 499" in line]
    assert len(closed) == 2, text
    assert all("status=499" in line and "route=/{account}/{repo}/service" in line for line in closed)
