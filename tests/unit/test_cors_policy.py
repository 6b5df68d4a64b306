"""The CORS policy (graphstore_async/web/cors.py) without a server: origins as configured and as browsers send
them, the headers each kind of request gets, and the cors_origins setting as the environment and the file give it.
What a browser meets over HTTP is in tests/web/test_cors.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphstore_async.settings import Settings
from graphstore_async.web.cors import Cors, serialized_origin, varied

APP = "https://app.example"
ALLOW = "GET, HEAD, OPTIONS, POST"


def header_set(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


@pytest.mark.parametrize(("entry", "origin"), [
    ("https://app.example", APP),
    ("HTTPS://App.Example", APP),
    ("https://app.example/", APP),
    ("https://app.example:443", APP),
    ("http://app.example:80", "http://app.example"),
    ("http://app.example:8080", "http://app.example:8080"),
    ("https://app.example:80", "https://app.example:80"),
    (" http://127.0.0.1:3000 ", "http://127.0.0.1:3000"),
    ("http://[::1]:9000", "http://[::1]:9000"),
])
def test_an_origin_is_written_as_browsers_send_it(entry: str, origin: str) -> None:
    assert serialized_origin(entry) == origin


@pytest.mark.parametrize("entry", ["app.example", "ftp://app.example", "https://app.example/path",
                                   "https://user@app.example", "https://user:pw@app.example", "https://app.example?x",
                                   "https://app.example#top", "null", "", "https://", "https://app.example:99999",
                                   "https://app.example:port"])
def test_what_is_not_an_origin_is_refused_naming_the_setting(entry: str) -> None:
    with pytest.raises(ValueError, match="cors_origins"):
        serialized_origin(entry)


def test_a_bad_entry_fails_when_the_policy_is_made() -> None:
    with pytest.raises(ValueError, match="/path"):
        Cors.from_settings(Settings(cors_origins=(APP, "https://other.example/path")))


def test_cors_origins_come_from_the_environment_and_the_file(tmp_path: Path) -> None:
    from_env = Settings.from_env({"GSA_CORS_ORIGINS": "https://App.example, *,,"})
    assert from_env.cors_origins == ("https://App.example", "*")
    assert Cors.from_settings(from_env) == Cors(frozenset({APP}), any_origin=True)
    config = tmp_path / "graphstore.toml"
    config.write_text('[server]\ncors_origins = ["https://app.example", "http://localhost:3000"]\n')
    from_file = Settings.from_env({"GSA_CONFIG_FILE": str(config)})
    assert Cors.from_settings(from_file) == Cors(frozenset({APP, "http://localhost:3000"}))


def test_no_origins_is_no_policy() -> None:
    assert not Cors.from_settings(Settings())
    assert Cors.from_settings(Settings(cors_origins=("*",)))
    assert Cors.from_settings(Settings(cors_origins=(APP,)))


def test_a_listed_origin_may_read_with_credentials_and_sees_the_headers_clients_read() -> None:
    headers = Cors(frozenset({APP})).headers(method="GET", origin=APP, preflight=False, allow=None)
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Credentials"] == "true"
    exposed = header_set(headers["Access-Control-Expose-Headers"])
    assert {"location", "request-id", "preference-applied", "retry-after", "asyncresult", "allow"} <= exposed
    assert "Access-Control-Allow-Methods" not in headers


def test_another_origin_gets_nothing_and_a_request_without_origin_nothing() -> None:
    policy = Cors(frozenset({APP}))
    assert policy.headers(method="GET", origin="https://evil.example", preflight=False, allow=None) == {}
    assert policy.headers(method="GET", origin="http://app.example", preflight=False, allow=None) == {}
    assert policy.headers(method="GET", origin=None, preflight=False, allow=None) == {}
    assert Cors(any_origin=True).headers(method="GET", origin=None, preflight=False, allow=None) == {}


def test_any_origin_never_with_credentials() -> None:
    policy = Cors(frozenset({APP}), any_origin=True)
    other = policy.headers(method="GET", origin="https://elsewhere.example", preflight=False, allow=None)
    assert other["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in other
    listed = policy.headers(method="GET", origin=APP, preflight=False, allow=None)
    assert listed["Access-Control-Allow-Origin"] == APP and listed["Access-Control-Allow-Credentials"] == "true"
    preflight = policy.headers(method="OPTIONS", origin="https://elsewhere.example", preflight=True, allow=ALLOW)
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in preflight


def test_a_preflight_gets_the_allow_the_request_headers_and_a_max_age() -> None:
    headers = Cors(frozenset({APP})).headers(method="OPTIONS", origin=APP, preflight=True, allow=ALLOW)
    assert headers["Access-Control-Allow-Methods"] == ALLOW
    allowed = header_set(headers["Access-Control-Allow-Headers"])
    assert {"authorization", "content-type", "accept", "prefer", "accept-asynchronous", "asynchronous-location",
            "asynchronous-method", "asynchronous-content-type", "asynchronous-content-encoding",
            "asynchronous-authorization", "request-id", "client-request-id", "content-encoding"} <= allowed
    assert "*" not in allowed  # a wildcard never covers Authorization
    assert int(headers["Access-Control-Max-Age"]) > 0


def test_an_options_that_is_no_preflight_is_an_ordinary_answer() -> None:
    headers = Cors(frozenset({APP})).headers(method="OPTIONS", origin=APP, preflight=False, allow=ALLOW)
    assert "Access-Control-Allow-Methods" not in headers
    assert headers["Access-Control-Allow-Origin"] == APP


@pytest.mark.parametrize(("vary", "expected"), [
    (None, "Origin"), ("", "Origin"), ("Accept", "Accept, Origin"), ("Accept, origin", "Accept, origin"),
    ("Accept, Accept-Encoding", "Accept, Accept-Encoding, Origin"),
])
def test_vary_names_origin_once(vary: str | None, expected: str) -> None:
    assert varied({} if vary is None else {"Vary": vary}, "Origin") == expected
