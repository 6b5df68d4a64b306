"""The console script `graphstore-async` as a user runs it: real processes, real files, a real server on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import free_port
from processes import START_TIMEOUT, environment, fetch, run_cli, serving, stop, wait_healthy

from graphstore_async.auth import hash_token

DEMO_TTL = """\
@prefix ex: <http://example.org/> .
ex:alice ex:knows ex:bob ;
    ex:name "Alice" .
ex:bob ex:name "Bob" .
"""
DEMO_SIZE = 3

def create_demo(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`repo create demo/demo --load` of the demo data into a new data directory: the directory, and the run."""
    data = tmp_path / "data"
    source = tmp_path / "demo.ttl"
    source.write_text(DEMO_TTL)
    created = run_cli("--data-dir", data, "repo", "create", "demo/demo", "--load", source, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    return data, created


@pytest.fixture
def demo_data_dir(tmp_path: Path) -> Path:
    """A data directory holding demo/demo, made and loaded with the CLI."""
    return create_demo(tmp_path)[0]


# --- repositories -----------------------------------------------------------------------------------------------

def test_repo_create_loads_a_file_and_repo_list_lists_it(tmp_path: Path) -> None:
    data, created = create_demo(tmp_path)
    assert created.stdout.splitlines() == [
        "created demo/demo", f"loaded {DEMO_SIZE} statements from {tmp_path / 'demo.ttl'} into demo/demo",
    ]
    assert (data / "repositories" / "demo" / "demo" / "repository.json").is_file()
    assert not (tmp_path / "var").exists(), "the default data directory was used instead of --data-dir"

    again = run_cli("--data-dir", data, "repo", "create", "demo/demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["exists: demo/demo"]
    other = run_cli("--data-dir", data, "repo", "create", "demo/other", cwd=tmp_path)
    assert other.returncode == 0, other.stderr

    listed = run_cli("--data-dir", data, "repo", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["demo/demo", "demo/other"]


def test_repo_create_refuses_a_bad_name_and_an_unknown_format(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = run_cli("--data-dir", data, "repo", "create", "demo/no spaces", cwd=tmp_path)
    assert bad.returncode != 0
    assert "'no spaces' is not a valid repository name" in bad.stderr

    source = tmp_path / "demo.unknown"
    source.write_text(DEMO_TTL)
    unknown = run_cli("--data-dir", data, "repo", "create", "demo/demo", "--load", source, cwd=tmp_path)
    assert unknown.returncode != 0
    assert "cannot tell the RDF format" in unknown.stderr


# --- serve ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["options-after-serve", "global-options-first", "environment"])
def test_serve_answers_until_sigterm(style: str, demo_data_dir: Path, tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    args: list[str | Path]
    if style == "options-after-serve":
        args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", demo_data_dir,
                "--redis-url", redis_url]
        env = environment()
    elif style == "global-options-first":
        args = ["--data-dir", demo_data_dir, "serve", "--host", "127.0.0.1", "--port", str(port),
                "--redis-url", redis_url]
        env = environment()
    else:
        args = ["serve"]
        env = environment(GSA_HOST="127.0.0.1", GSA_PORT=str(port), GSA_DATA_DIR=str(demo_data_dir),
                          GSA_REDIS_URL=redis_url)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with serving(args, cwd=tmp_path, env=env, log=log) as process:
        wait_healthy(process, base, log)
        status, headers, body = fetch(base + "/demo/demo")
        assert status == 200, body
        assert headers["Content-Type"].startswith("application/json")
        meta = json.loads(body)
        assert meta["id"] == "demo/demo"
        assert meta["iri"] == f"{base}/demo/demo"
        assert meta["size"] == DEMO_SIZE
        assert meta["endpoints"]["sparql"] == f"{base}/demo/demo/sparql"

        status, _, body = fetch(base + "/ready")
        assert status == 200, body  # the Redis URL given reached the server

        status, _, body = fetch(base + "/demo/demo/service?default", headers={"Accept": "application/n-triples"})
        assert status == 200
        assert b'<http://example.org/alice> <http://example.org/name> "Alice" .' in body
        stop(process, log)
    assert not (tmp_path / "var").exists(), "the default data directory was used instead of the one given"


@pytest.mark.parametrize("style", ["option", "environment"])
def test_serve_refuses_all_interfaces_without_accounts(style: str, tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    if style == "option":
        args: list[str | Path] = ["--data-dir", tmp_path / "data", "serve", "--host", "0.0.0.0", "--port", str(port),
                                  "--redis-url", redis_url]
        env = environment()
    else:
        args = ["serve"]
        env = environment(GSA_HOST="0.0.0.0", GSA_PORT=str(port), GSA_DATA_DIR=str(tmp_path / "data"),
                          GSA_REDIS_URL=redis_url)
    # a server that did bind would still be running at the timeout: subprocess.run kills it and the test fails
    refused = run_cli(*args, cwd=tmp_path, env=env, timeout=START_TIMEOUT)
    assert refused.returncode != 0
    assert "refusing to serve on 0.0.0.0 with no accounts configured" in refused.stderr
    assert refused.stdout == ""
    with pytest.raises(OSError):
        fetch(f"http://127.0.0.1:{port}/health")


# --- tokens -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("placement", ["config-after-command", "config-first"])
def test_token_create_prints_once_stores_the_hash_and_the_server_accepts_it(
        placement: str, tmp_path: Path, redis_url: str) -> None:
    config = tmp_path / "gsa.toml"
    preamble = '[repositories."alice/public"]\npublic_read = true\n'
    config.write_text(preamble)

    if placement == "config-after-command":
        made = run_cli("token", "create", "alice", "--config", config, cwd=tmp_path)
    else:
        made = run_cli("--config", config, "token", "create", "alice", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert len(lines) == 1, made.stdout
    token = lines[0]
    assert token.startswith("gsa_") and len(token) >= 40
    assert token not in made.stderr
    stored = config.read_text()
    assert stored.startswith(preamble)
    assert hash_token(token) in stored
    assert token not in stored

    second = run_cli("--config", config, "token", "create", "alice", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    other = second.stdout.strip()
    assert other != token
    assert hash_token(token) in config.read_text() and hash_token(other) in config.read_text()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    args: list[str | Path] = ["--config", config, "--data-dir", tmp_path / "data", "serve", "--host", "127.0.0.1",
                              "--port", str(port), "--redis-url", redis_url]
    with serving(args, cwd=tmp_path, env=environment(), log=log) as process:
        wait_healthy(process, base, log)
        status, headers, body = fetch(base + "/alice/demo", method="PUT")
        assert status == 401, body
        assert headers["Content-Type"] == "application/problem+json"
        assert json.loads(body)["detail"] == "admin access to alice/demo needs credentials"
        assert "Bearer" in headers["WWW-Authenticate"]

        status, _, body = fetch(base + "/alice/demo", method="PUT", headers={"Authorization": "Bearer " + token})
        assert status == 201, body
        status, _, body = fetch(base + "/alice/demo", headers={"Authorization": "Bearer " + other})
        assert status == 200, body
        assert json.loads(body)["id"] == "alice/demo"

        status, _, body = fetch(base + "/alice/demo", headers={"Authorization": "Bearer " + token + "x"})
        assert status == 401, body
        assert json.loads(body)["detail"] == "the credentials are not valid"
        assert token not in body.decode()
        stop(process, log)
    server_log = log.read_text()
    assert token not in server_log and other not in server_log


def test_token_create_without_a_config_file_says_so(tmp_path: Path) -> None:
    refused = run_cli("token", "create", "alice", cwd=tmp_path)
    assert refused.returncode != 0
    assert refused.stdout == ""  # no token is shown that could not be stored
    assert "--config FILE or GSA_CONFIG_FILE" in refused.stderr


# --- config and help --------------------------------------------------------------------------------------------

def settings_printed(stdout: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition(" = ")
        assert sep, f"not a `name = value` line: {line!r}"
        values[name] = value
    return values


@pytest.mark.parametrize("url", [
    "redis://:secret@127.0.0.1:6379/0",
    "redis://default:secret@127.0.0.1:6379/0",
    "rediss://:secret@redis.example.org:6380/2",
    "redis://127.0.0.1:6379/0?password=secret",
])
def test_config_prints_effective_values_and_masks_the_redis_password(url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = environment(GSA_REDIS_URL=url, GSA_PORT="9123")
    shown = run_cli("--data-dir", data, "config", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "secret" not in shown.stdout and "secret" not in shown.stderr
    values = settings_printed(shown.stdout)
    assert values["host"] == "127.0.0.1"
    assert values["port"] == "9123"
    assert values["data_dir"] == str(data)
    assert values["redis_url"].startswith(url.partition("://")[0] + "://")
    host = url.rpartition("@")[2].partition("?")[0] if "@" in url else "127.0.0.1:6379/0"
    assert host in values["redis_url"]


def test_config_reads_the_server_table_of_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "gsa.toml"
    config.write_text('[server]\nport = 9234\nredis_url = "redis://:secret@127.0.0.1:6379/3"\n')
    shown = run_cli("--config", config, "config", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    values = settings_printed(shown.stdout)
    assert values["port"] == "9234"
    assert values["config_file"] == str(config)
    assert "secret" not in shown.stdout
    assert values["redis_url"].endswith("127.0.0.1:6379/3")


@pytest.mark.parametrize("command", [
    [], ["serve"], ["repo"], ["repo", "create"], ["repo", "list"], ["token"], ["token", "create"], ["config"],
], ids=lambda command: " ".join(command) or "top")
def test_help_exits_zero(command: list[str], tmp_path: Path) -> None:
    shown = run_cli(*command, "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: graphstore-async " + " ".join(command))
    assert shown.stderr == ""
