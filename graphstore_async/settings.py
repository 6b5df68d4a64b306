"""Settings: one frozen dataclass, read once at start-up from the environment and an optional TOML file."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ENV_PREFIX = "GSA_"
SECRET_FIELDS = frozenset({"redis_url"})
HIDDEN_FIELDS = frozenset({"notify_signing_key", "sealing_key"})


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./var/data")
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Public base URL (scheme://host:port) used in Location headers and IRIs, and the server's own origin for the
    # egress policy; when unset, the address the request came in on (the listening socket), never its Host header.
    base_url: str | None = None
    # Peers (CIDRs) whose Forwarded / X-Forwarded-Proto / X-Forwarded-Host say the base of IRIs when base_url is
    # unset; from anyone else those headers are ignored, and they never make an origin exempt from the egress policy.
    trusted_proxies: tuple[str, ...] = ()
    # Origins ("https://app.example[:port]") whose pages may read the answers in a browser (CORS: web/cors.py); "*"
    # lets any origin read, without credentials. Empty: no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    # TOML file with [server] settings, [accounts.*], [[tokens]] and [repositories."a/r"].
    config_file: Path | None = None
    # Log lines: "text", or "json" (one object per line); one line per request and per task state change.
    log_format: str = "text"
    max_body_bytes: int = 16 * 1024**3
    # A gzip body may expand at most this many times (after the first MiB): a bomb is refused, not unpacked.
    max_gzip_ratio: float = 100.0
    # Bodies up to this size load in one transaction; larger ones are validated, then bulk loaded.
    transactional_load_bytes: int = 8 * 1024**2
    # Store threads (store/limits.py): queries, exports and sizes read on `store_threads`; updates and loads write
    # on `write_threads`; acceptance-time syntax checks parse on `check_threads`. No pool waits for another.
    store_threads: int = 16
    write_threads: int = 4
    check_threads: int = 2
    # A query's time limit, waiting for a slot included (0: none): synchronous requests, and tasks. A request's
    # `timeout` parameter may ask for less. Past it the answer is 503 query-timeout (a task fails with it).
    query_timeout_s: float = 30.0
    task_query_timeout_s: float = 3600.0
    # At most this many queries of one account hold a store thread at once; a query past its limit keeps its slot
    # until the engine returns. A synchronous request waits up to query_slot_wait_s for a slot (then 503 with
    # Retry-After); a task waits within its time limit.
    max_queries_per_account: int = 4
    query_slot_wait_s: float = 2.0
    # SPARQL SERVICE makes the engine fetch URLs with its own HTTP client, which our egress policy cannot see
    # at connect time: off unless an operator turns it on, and then only to the endpoints listed (URL prefixes).
    allow_service: bool = False
    service_endpoints: tuple[str, ...] = ()
    # SPARQL LOAD makes the server fetch a URL: refused unless turned on; then fetched by our own client, through
    # the egress policy, size-limited, spooled, and loaded like a POST.
    allow_load: bool = False
    load_timeout_s: float = 600.0  # one LOAD's fetch, whole
    # What the engine is trusted with: it recurses on nesting and on long operator chains, and a stack overflow
    # kills the process. Past these a query or update is refused (400) before the engine sees it.
    max_query_bytes: int = 10 * 1024**2  # 413 past it
    max_query_depth: int = 64  # nested { ( [
    max_query_terms: int = 8_000  # tokens outside DATA { } and VALUES { } blocks
    max_body_depth: int = 100  # JSON-LD bodies: nested objects and arrays
    # A task whose worker died while running it this many times fails instead of running again.
    task_max_crashes: int = 3
    # `serve` runs the server in a child process and starts it again when it crashes (supervisor.py has the rule),
    # after a pause that doubles from restart_backoff_s to restart_backoff_max_s, and is reset by a server that
    # ran restart_healthy_s. False (`serve --no-supervise`): the server runs in the `serve` process itself.
    supervise: bool = True
    restart_backoff_s: float = 0.5
    restart_backoff_max_s: float = 30.0
    restart_healthy_s: float = 60.0

    # Asynchronous tasks. Keys in Redis start with redis_prefix, so servers can share one Redis.
    redis_prefix: str = "gsa"
    queue_limit: int = 10_000  # tasks waiting; past it, 503 with Retry-After
    worker: bool = True  # `serve` runs a worker in the server process (the embedded store admits one writer)
    worker_jobs: int = 8  # tasks one worker runs at once
    # Notification and callback attempts are jobs of their own on a deliveries queue: at most this many in flight
    # per worker, and at most delivery_per_origin to one destination origin (the rest wait their turn).
    delivery_jobs: int = 32
    delivery_per_origin: int = 4
    poll_delay_s: float = 0.02
    job_timeout_s: float = 6 * 3600.0
    heartbeat_s: float = 2.0  # a running task's heartbeat; missed for 5 beats, the task is taken up again
    shutdown_grace_s: float = 20.0  # on SIGTERM running tasks get this long, then are requeued
    task_retention_s: float = 24 * 3600.0
    # fsync a task's spooled body before it is queued. A closed file survives the server's crash either way; only
    # a crash of the machine needs the fsync — and then the task record is only as durable as Redis's own
    # persistence (RDB snapshots by default), so turn this on together with Redis's appendfsync.
    spool_fsync: bool = False
    monitor_reads: int = 1  # how often a finished task's result can be read from its monitor (0: no limit)
    max_wait_s: float = 60.0  # the longest a `Prefer: wait=N` holds a request open, whatever N asks

    # Notifications (Asynchronous-Location) and callbacks.
    notify_timeout_s: float = 30.0  # one attempt
    notify_attempts: int = 8
    notify_span_s: float = 900.0  # no attempt starts later than this after the first
    notify_backoff_s: float = 0.5  # first retry delay; doubles, with jitter
    # Addresses that the egress policy lets through although loopback/private: CIDRs, "host:port" or "ip:port".
    notify_allow: tuple[str, ...] = ()
    # Static name -> address map consulted before DNS, like curl --resolve ("name=address").
    notify_hosts: tuple[str, ...] = ()
    # Standard Webhooks signing secret ("whsec_" + base64); notifications are signed when it is set.
    notify_signing_key: str | None = None
    # The caller's own Authorization is forwarded with a notification only to the server's own origin and to
    # these origins ("https://host[:port]"); elsewhere only Asynchronous-Authorization is sent.
    notify_forward_auth_to: tuple[str, ...] = ()
    # Key (Fernet, urlsafe base64 of 32 bytes) that seals the credentials a task keeps until its notification is
    # sent; when unset, one is made and kept in {data_dir}/sealing.key (mode 0600). Servers sharing tasks share it.
    sealing_key: str | None = None
    max_header_bytes: int = 16 * 1024

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def repositories_dir(self) -> Path:
        return self.data_dir / "repositories"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
        """Defaults, then the TOML file's [server] table, then GSA_* variables, then explicit overrides."""
        values: dict[str, Any] = {}
        config_file = overrides.get("config_file")
        if config_file is None:
            config_file = environ.get(_variable("config_file"))
        if isinstance(config_file, str):
            config_file = _path(config_file, optional=True, label=_variable("config_file"))
        if config_file is not None:
            path = Path(config_file)
            values.update(_coerce(_server_table(path), label=lambda name: f"{path} [server] {name}"))
            values["config_file"] = path
        env = {f.name: environ[_variable(f.name)] for f in dataclasses.fields(cls) if _variable(f.name) in environ}
        values.update(_coerce(env, label=_variable))
        values.update(_coerce({k: v for k, v in overrides.items() if v is not None}))
        return cls(**values)

    def masked(self) -> dict[str, str]:
        """The effective values as text, secrets masked (for `graphstore-async config`)."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            text = "" if value is None else str(value)
            if f.name in HIDDEN_FIELDS and text:
                text = "***"
            out[f.name] = mask_url(text) if f.name in SECRET_FIELDS else text
        return out


def mask_url(url: str) -> str:
    """A URL with its credentials (user:password@, ?password=, ?username=) replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = urlencode([(k, "***" if k.lower() in ("password", "username") else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _server_table(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    server = doc.get("server", {})
    if not isinstance(server, dict):
        raise ValueError(f"{path}: [server] must be a table")
    return dict(server)


def _variable(name: str) -> str:
    return ENV_PREFIX + name.upper()


_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})


def _coerce(values: Mapping[str, Any], *, label: Callable[[str], str] = repr) -> dict[str, Any]:
    """Strings (from the environment, or quoted in the file) as each field's type; what cannot be read is a
    ValueError naming where it came from (`label` of the field name: the variable, or the file and key), never
    a default: GSA_SPOOL_FSYNC=ture must not quietly turn fsync off. An empty path is no path (None) where the
    setting may be unset, and an error where it may not: Path("") would be the current directory."""
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in types:
            raise ValueError(f"unknown setting {name!r}")
        kind = str(types[name])
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else value
            out[name] = tuple(str(item).strip() for item in items if str(item).strip())
        elif value is None or not isinstance(value, str):
            out[name] = value
        elif "Path" in kind:
            out[name] = _path(value, optional="None" in kind, label=label(name))
        elif kind.startswith("int"):
            out[name] = _read(int, value, "a whole number", label(name))
        elif kind.startswith("bool"):
            out[name] = _bool(value, label(name))
        elif kind.startswith("float"):
            out[name] = _read(float, value, "a number", label(name))
        else:
            out[name] = value
    return out


def _read(kind: Callable[[str], Any], value: str, what: str, label: str) -> Any:
    try:
        return kind(value)
    except ValueError as exc:
        raise ValueError(f"{label}: {value!r} is not {what}") from exc


def _bool(value: str, label: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"{label}: {value!r} is neither true ({', '.join(sorted(_TRUE))}) "
                     f"nor false ({', '.join(sorted(_FALSE))})")


def _path(value: str, *, optional: bool, label: str) -> Path | None:
    if value.strip():
        return Path(value)
    if optional:
        return None
    raise ValueError(f"{label}: a path is needed, not {value!r}")
