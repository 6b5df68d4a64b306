"""Fault tests of a replacing PUT with real processes: `graphstore-async serve --no-supervise` killed (-9) while a
large synchronous PUT replaces a graph, at each stage of it (the body uploading, being validated, being written,
just committed); restarted, the graph is exactly the old one or exactly the new one, by count and by content, and
no checkpoint or spooled body is left. And readers counting a graph during repeated replacing PUTs, small and
large, see only the old count or the new one.
"""

from __future__ import annotations

import asyncio
import http.client
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from conftest import StartServer, free_port
from processes import count_in_graph, environment, serving, stop, wait_healthy

G = "http://example.org/g"
OTHER = "http://example.org/other"
OLD, NEW = 60_000, 200_000  # statements; NEW is ~20 MB, long enough to validate (~0.3 s) and to write (seconds)
BESIDE = 20_000  # in the other graph: more than OLD / COPY_REST_RATIO, so the old graph is removed batch by batch
TIMEOUT_S = 60.0


def ntriples(count: int, tag: str) -> bytes:
    return "".join(f'<http://example.org/s{i}> <http://example.org/p{i % 7}> "{tag} {i}" .\n'
                   for i in range(count)).encode()


@pytest.fixture(scope="module")
def bodies() -> dict[str, bytes]:
    return {"old": ntriples(OLD, "old"), "new": ntriples(NEW, "new"), "other": ntriples(BESIDE, "other")}


class Server:
    """A `serve --no-supervise` process on its own data directory: started, killed, started again."""

    def __init__(self, tmp_path: Path, data_dir: Path, redis_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cwd, self.data_dir = tmp_path, data_dir
        self.env = environment(GSA_HOST="127.0.0.1", GSA_PORT=str(self.port), GSA_DATA_DIR=str(data_dir),
                               GSA_REDIS_URL=redis_url, GSA_REDIS_PREFIX=f"gsa-replace-{self.port}",
                               GSA_SHUTDOWN_GRACE_S="0")
        self.lives = 0

    @contextmanager
    def running(self) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
        self.lives += 1
        log = self.cwd / f"server-{self.port}-{self.lives}.log"
        with serving(["serve", "--no-supervise"], cwd=self.cwd, env=self.env, log=log) as process:
            wait_healthy(process, self.base, log)
            yield process, log

    def graph_url(self, graph: str) -> str:
        return f"{self.base}/test/repo/service?graph={urllib.parse.quote(graph)}"

    def checkpoints(self) -> list[Path]:
        return sorted(self.data_dir.glob("repositories/*/*/store*.checkpoint-*"))

    def armed(self) -> bool:
        return any(p.name.endswith(".armed") for p in self.checkpoints())

    def spooled(self) -> list[int]:
        """The sizes of the bodies in the synchronous spool."""
        directory = self.data_dir / "spool" / "sync"
        sizes = []
        for path in directory.iterdir() if directory.is_dir() else ():
            try:
                sizes.append(path.stat().st_size)
            except FileNotFoundError:  # its request ended
                pass
        return sizes


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
          data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """processes.fetch with the time a large body takes."""
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with _opener.open(request, timeout=TIMEOUT_S) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def put(url: str, body: bytes) -> None:
    status, _, answer = fetch(url, method="PUT", data=body, headers={"Content-Type": "application/n-triples"})
    assert status in (201, 204), answer


def graph_lines(url: str) -> set[str]:
    status, _, body = fetch(url, headers={"Accept": "application/n-triples"})
    assert status == 200, body
    return set(body.decode().splitlines())


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory, redis_url: str, bodies: dict[str, bytes]) -> dict[str, Path]:
    """Data directories holding the old graph, alone in its repository or beside another graph, made once and
    copied for each test (a server stopped cleanly)."""
    made: dict[str, Path] = {}
    for name in ("alone", "shared"):
        tmp_path = tmp_path_factory.mktemp(f"template-{name}")
        server = Server(tmp_path, tmp_path / "data", redis_url)
        with server.running() as (process, log):
            assert fetch(f"{server.base}/test/repo", method="PUT")[0] == 201
            put(server.graph_url(G), bodies["old"])
            if name == "shared":  # a named graph beside: the old graph's statements are removed batch by batch
                put(server.graph_url(OTHER), bodies["other"])
            stop(process, log)
        made[name] = server.data_dir
    return made


class Upload(threading.Thread):
    """A synchronous PUT of `body` sent in chunks; `half_sent` is set after 40 % of it (and the rest waits for
    `go_on`, if `hold` is set)."""

    def __init__(self, port: int, path: str, body: bytes, *, hold: bool) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.body, self.hold = port, path, body, hold
        self.half_sent, self.go_on = threading.Event(), threading.Event()
        self.status: int | None = None

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        try:
            connection.putrequest("PUT", self.path)
            connection.putheader("Content-Type", "application/n-triples")
            connection.putheader("Content-Length", str(len(self.body)))
            connection.endheaders()
            half, chunk = int(len(self.body) * 0.4), 256 * 1024
            connection.send(self.body[:half])
            self.half_sent.set()
            if self.hold:
                self.go_on.wait(TIMEOUT_S)
            for start in range(half, len(self.body), chunk):
                connection.send(self.body[start:start + chunk])
            self.status = connection.getresponse().status
        except (OSError, http.client.HTTPException):
            pass  # the server was killed under it
        finally:
            connection.close()


def wait_until(predicate: Callable[[], bool], what: str, poll_s: float = 0.002) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {TIMEOUT_S} s")
        time.sleep(poll_s)


@pytest.mark.parametrize(("stage", "layout"), [
    ("uploading", "shared"),
    ("validating", "shared"),
    ("removing-old", "shared"),  # the old graph's statements going, batch by batch
    ("writing-new", "alone"),  # alone, the old graph goes at once: this is well into storing the new one
    ("committed", "alone"),  # killed as soon as the PUT has answered
])
def test_a_server_killed_during_a_replacing_put_keeps_the_old_graph_or_the_new(
    tmp_path: Path, redis_url: str, templates: dict[str, Path], bodies: dict[str, bytes], stage: str, layout: str,
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(templates[layout], data_dir)
    server = Server(tmp_path, data_dir, redis_url)
    with server.running() as (process, log):
        path = f"/test/repo/service?graph={urllib.parse.quote(G)}"
        upload = Upload(server.port, path, bodies["new"], hold=stage == "uploading")
        upload.start()
        if stage == "uploading":
            wait_until(upload.half_sent.is_set, "sending 40 % of the body")
            wait_until(lambda: any(size > 0 for size in server.spooled()), "the body reaching the spool")
        elif stage == "validating":  # all of it spooled, nothing written yet
            wait_until(lambda: len(bodies["new"]) in server.spooled(), "the whole body reaching the spool")
        elif stage == "committed":
            upload.join(TIMEOUT_S)
            assert upload.status == 204, log.read_text()
        else:  # the write has begun: its checkpoint is armed; its first 50 ms change nothing (READERS_SETTLE_S)
            wait_until(server.armed, "the write beginning")
            time.sleep(0.3)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        upload.go_on.set()
        upload.join(TIMEOUT_S)
        if stage in ("uploading", "validating"):
            assert not server.armed(), f"the write had begun: this did not test {stage}"
            assert server.spooled(), "a killed request leaves its body"
        elif stage != "committed":
            assert server.armed(), "the write had ended: this did not test a kill during it"

    with server.running() as (process, log):
        expected = {"old": bodies["old"], "new": bodies["new"]}
        found = graph_lines(server.graph_url(G))
        outcome = next((name for name, body in expected.items() if found == set(body.decode().splitlines())), None)
        assert outcome is not None, f"a mix: {len(found)} statements, neither the old graph nor the new"
        assert outcome == ("new" if stage == "committed" else "old")
        assert count_in_graph(server.base, G) == (NEW if outcome == "new" else OLD)
        if layout == "shared":
            assert graph_lines(server.graph_url(OTHER)) == set(bodies["other"].decode().splitlines())
        assert server.checkpoints() == []  # rolled back or removed when the store opened
        assert server.spooled() == []  # swept at start-up
        put(server.graph_url(G), b"".join(bodies["old"].splitlines(keepends=True)[:10]))  # it takes writes again
        stop(process, log)


@pytest.mark.parametrize(("sizes", "beside"), [((300, 500), 5), ((15_000, 10_000), 5), ((15_000, 10_000), 5_000)],
                         ids=["one-update", "batches-copying-the-rest-back", "batches-removing-the-old"])
async def test_readers_during_replacing_puts_see_the_old_count_or_the_new(
    start_server: StartServer, http: aiohttp.ClientSession, sizes: tuple[int, int], beside: int,
) -> None:
    running = await start_server()
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    url = running.repo_url(f"/service?graph={urllib.parse.quote(G)}")
    bodies = [ntriples(size, f"body {n}") for n, size in enumerate(sizes)]
    headers = {"Content-Type": "application/n-triples"}
    for graph, body in ((OTHER, ntriples(beside, "other")), (G, bodies[0])):
        async with http.put(running.repo_url(f"/service?graph={urllib.parse.quote(graph)}"), data=body,
                            headers=headers) as response:
            assert response.status == 201, await response.text()
    counts: list[int] = []
    graphs: list[frozenset[str]] = []
    dataset_sizes: list[int] = []
    writing = True

    async def count_graph() -> None:
        query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{G}> {{ ?s ?p ?o }} }}"
        while writing:
            async with http.get(running.repo_url("/sparql"), params={"query": query},
                                headers={"Accept": "application/sparql-results+json"}) as response:
                assert response.status == 200, await response.text()
                counts.append(int((await response.json())["results"]["bindings"][0]["n"]["value"]))

    async def list_graphs() -> None:
        query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
        while writing:
            async with http.get(running.repo_url("/sparql"), params={"query": query},
                                headers={"Accept": "application/sparql-results+json"}) as response:
                rows = (await response.json())["results"]["bindings"]
                graphs.append(frozenset(row["g"]["value"] for row in rows))

    async def export() -> None:
        while writing:
            async with http.get(running.repo_url("/service"), headers={"Accept": "application/n-quads"}) as response:
                assert response.status == 200
                dataset_sizes.append((await response.read()).count(b"\n"))

    readers = [asyncio.create_task(count_graph()) for _ in range(3)]
    readers += [asyncio.create_task(list_graphs()), asyncio.create_task(export())]
    try:
        for n in range(1, 9):
            async with http.put(url, data=bodies[n % 2], headers=headers) as response:
                assert response.status == 204, await response.text()
            await asyncio.sleep(0.05)
    finally:
        writing = False
        await asyncio.gather(*readers)
    assert len(counts) > 20
    assert set(counts) <= set(sizes), sorted(set(counts) - set(sizes))
    assert set(graphs) == {frozenset({G, OTHER})}
    assert set(dataset_sizes) <= {size + beside for size in sizes}
