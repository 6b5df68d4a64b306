"""Processes the benchmark starts: redis-server, graphstore-async, Oxigraph server, the receiver, the bare
reference handlers (bench/refserver.py, bench/queryref.py) and the bare arq worker (bench/arqref.py). Every one
on 127.0.0.1 (a free port, or none: the arq worker only talks to the bench's Redis), logging to a file, and
stopped by `Processes.stop_all` (SIGTERM, then SIGKILL) — which the runner calls in a `finally`.

Also the RSS sampler (/proc/PID/status, no dependency) used by the memory scenarios, and `serving_pid`: the
process under `graphstore-async serve`'s supervisor that serves.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
BIN = Path(sys.executable).parent
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy for 127.0.0.1


class StartFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with _opener.open(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (OSError, urllib.error.URLError):
        return False


def tcp_open(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def clean_environment(**variables: str) -> dict[str, str]:
    """The caller's environment without GSA_* or proxy variables, plus `variables`."""
    drop = ("http_proxy", "https_proxy", "all_proxy")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSA_") and k.lower() not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variables)
    return env


def find_binary(name: str) -> str | None:
    beside = BIN / name
    return str(beside) if beside.is_file() else shutil.which(name)


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Processes:
    """Every process the benchmark started, so that all of them are stopped, whatever happens."""

    workdir: Path
    started: list[Service] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], *, port: int, ready: Callable[[], bool],
              env: dict[str, str] | None = None, timeout_s: float = START_TIMEOUT_S) -> Service:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(list(argv), env=env if env is not None else clean_environment(),
                                       stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                       cwd=self.workdir)
        service = Service(name, process, port, log)
        self.started.append(service)
        deadline = time.monotonic() + timeout_s
        while not ready():
            if process.poll() is not None:
                raise StartFailed(f"{name} exited with {process.returncode}:\n{service.log_tail()}")
            if time.monotonic() > deadline:
                self.stop(service)
                raise StartFailed(f"{name} did not answer within {timeout_s} s:\n{service.log_tail()}")
            time.sleep(0.05)
        return service

    def stop(self, service: Service) -> None:
        process = service.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        if service in self.started:
            self.started.remove(service)

    def stop_all(self) -> None:
        for service in reversed(list(self.started)):
            try:
                self.stop(service)
            except Exception as exc:  # keep stopping the others
                print(f"bench: could not stop {service.name} (pid {service.pid}): {exc}", file=sys.stderr)

    # -- the processes -------------------------------------------------------------------------------------------

    def redis(self) -> Service:
        binary = find_binary("redis-server")
        if binary is None:
            raise StartFailed("redis-server is not installed (Debian package redis-server)")
        port = free_port()
        directory = self.workdir / "redis"
        directory.mkdir(exist_ok=True)
        argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                "--dir", str(directory)]
        return self.start("redis", argv, port=port, ready=lambda: tcp_open(port))

    def graphstore(self, redis_url: str, notify_allow: Sequence[str], redis_prefix: str, **settings: str) -> Service:
        """`graphstore-async serve` with its worker; `settings` are more GSA_* variables (data_dir="…")."""
        port = free_port()
        env = clean_environment(
            GSA_HOST=HOST, GSA_PORT=str(port), GSA_DATA_DIR=str(self.workdir / "gsa-data"), GSA_REDIS_URL=redis_url,
            GSA_REDIS_PREFIX=redis_prefix, GSA_NOTIFY_ALLOW=",".join(notify_allow),
            GSA_BASE_URL=f"http://{HOST}:{port}", **{f"GSA_{k.upper()}": v for k, v in settings.items()},
        )
        argv = [str(BIN / "graphstore-async"), "serve"]
        return self.start("graphstore-async", argv, port=port, env=env,
                          ready=lambda: http_ok(f"http://{HOST}:{port}/ready"))

    def oxigraph(self, location: Path) -> Service:
        binary = find_binary("oxigraph")
        if binary is None:
            raise StartFailed("the oxigraph server binary is not installed (pip package oxigraph)")
        port = free_port()
        argv = [binary, "serve", "--location", str(location), "--bind", f"{HOST}:{port}"]
        return self.start(f"oxigraph-{location.name}", argv, port=port, ready=lambda: tcp_open(port))

    def python_module(self, name: str, module: str, *args: str) -> Service:
        """`python -m MODULE --port P ARGS` for one of our own small servers (it answers GET /health)."""
        port = free_port()
        argv = [sys.executable, "-m", module, "--port", str(port), *args]
        return self.start(name, argv, port=port, env=_our_modules(),
                          ready=lambda: http_ok(f"http://{HOST}:{port}/health"))

    def arq_worker(self, redis_port: int, queue: str, *args: str) -> Service:
        """`python -m bench.arqref --redis-url … --queue Q ARGS`: ready once arq has recorded its health check."""
        argv = [sys.executable, "-m", "bench.arqref", "--redis-url", f"redis://{HOST}:{redis_port}/0",
                "--queue", queue, *args]
        client = Redis(host=HOST, port=redis_port)
        try:
            return self.start("arq-reference", argv, port=0, env=_our_modules(),
                              ready=lambda: bool(client.exists(f"{queue}:health-check")))
        finally:
            client.close()


def _our_modules() -> dict[str, str]:
    return clean_environment(PYTHONPATH=str(Path(__file__).resolve().parent.parent))


def serving_pid(pid: int) -> int:
    """The process that serves under `graphstore-async serve` (pid): its supervisor's child, the server with its
    worker (graphstore_async/supervisor.py); `pid` itself when it has no child (`serve --no-supervise`)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pid
    return int(children[0]) if children else pid


def rss_kib(pid: int) -> int:
    """A process's resident set size now (VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise OSError(f"no VmRSS for process {pid}")


class RssSampler:
    """Samples a process's VmRSS every `interval_s` from a thread; `peak_kib` is the highest seen."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
                self.samples += 1
            except OSError:
                return
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
