"""When a notification or callback is tried again (graphstore_async/tasks/delivery.py): which answers are retried,
the back-off and its jitter, Retry-After, and the notify_attempts and notify_span_s limits. Nothing is sent: the
attempts are made up, as the receiver's answers would make them."""

from __future__ import annotations

import email.utils
import random
import time

import pytest

from graphstore_async.settings import Settings
from graphstore_async.tasks.delivery import Attempt, _backoff, _retry_after, next_delay

SETTINGS = Settings(notify_attempts=8, notify_span_s=900.0, notify_backoff_s=0.5)


def answered(status: int | None, *, number: int = 1, refused: bool = False) -> Attempt:
    error = None if status is not None else ("refused: 10.0.0.1 is private-use" if refused else "TimeoutError: ")
    return Attempt(number, 1_000.0, status, error, 12, refused=refused)


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """random() at its top: every back-off is its ceiling."""
    monkeypatch.setattr(random, "random", lambda: 1.0)


# -- which answers are retried ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_a_success_is_not_retried(status: int) -> None:
    assert answered(status).succeeded
    assert next_delay(answered(status), None, 1, 0.0, 0.0, SETTINGS) is None
    assert next_delay(answered(status), 5.0, 1, 0.0, 0.0, SETTINGS) is None  # whatever Retry-After says


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_time_outs_too_many_requests_and_server_errors_are_retried(status: int) -> None:
    assert not answered(status).succeeded
    assert next_delay(answered(status), 3.0, 1, 0.0, 0.0, SETTINGS) == 3.0


@pytest.mark.parametrize("status", [100, 199, 300, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413,
                                    415, 422, 451, 499])
def test_redirects_and_other_client_errors_are_final(status: int) -> None:
    assert not answered(status).succeeded
    assert next_delay(answered(status), None, 1, 0.0, 0.0, SETTINGS) is None
    assert next_delay(answered(status), 3.0, 1, 0.0, 0.0, SETTINGS) is None


def test_a_connection_error_is_retried_but_an_egress_refusal_is_final(no_jitter: None) -> None:
    assert next_delay(answered(None), None, 1, 0.0, 0.0, SETTINGS) == 0.5
    assert next_delay(answered(None, refused=True), None, 1, 0.0, 0.0, SETTINGS) is None


# -- notify_attempts and notify_span_s ------------------------------------------------------------------------------


def test_notify_attempts_is_the_most_attempts_made(no_jitter: None) -> None:
    settings = Settings(notify_attempts=3, notify_span_s=10_000.0, notify_backoff_s=1.0)
    delays = [next_delay(answered(503, number=n), None, n, 0.0, 0.0, settings) for n in (1, 2, 3, 4)]
    assert delays == [1.0, 2.0, None, None]


def test_notify_attempts_of_one_tries_once() -> None:
    settings = Settings(notify_attempts=1)
    assert next_delay(answered(503), 1.0, 1, 0.0, 0.0, settings) is None


def test_no_attempt_starts_past_notify_span_s_after_the_first() -> None:
    settings = Settings(notify_attempts=100, notify_span_s=900.0)
    first = 50_000.0
    assert next_delay(answered(503), 100.0, 2, first, first + 800.0, settings) == 100.0  # starts at 900 s exactly
    assert next_delay(answered(503), 100.5, 2, first, first + 800.0, settings) is None
    assert next_delay(answered(503), 0.0, 2, first, first + 901.0, settings) is None
    assert next_delay(answered(503), 10.0, 1, first, first, settings) == 10.0


def test_a_back_off_past_notify_span_s_ends_the_retries(no_jitter: None) -> None:
    settings = Settings(notify_attempts=100, notify_span_s=60.0, notify_backoff_s=1.0)
    # ceilings 1, 2, 4, 8, 16, 32, 64: the seventh retry would start 64 s after the first attempt (made now)
    assert next_delay(answered(503, number=6), None, 6, 0.0, 0.0, settings) == 32.0
    assert next_delay(answered(503, number=7), None, 7, 0.0, 0.0, settings) is None


# -- the back-off --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 256.0)])
def test_backoff_doubles_from_notify_backoff_s(monkeypatch: pytest.MonkeyPatch, number: int, ceiling: float) -> None:
    monkeypatch.setattr(random, "random", lambda: 1.0)
    assert _backoff(0.5, number) == ceiling
    monkeypatch.setattr(random, "random", lambda: 0.0)
    assert _backoff(0.5, number) == ceiling / 2
    monkeypatch.setattr(random, "random", lambda: 0.5)
    assert _backoff(0.5, number) == ceiling * 0.75


@pytest.mark.parametrize("number", [1, 2, 5])
def test_backoff_jitter_stays_within_half_and_whole_of_the_ceiling(number: int) -> None:
    ceiling = 2.0 * 2 ** (number - 1)
    delays = [_backoff(2.0, number) for _ in range(2_000)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert max(delays) - min(delays) > ceiling / 4  # it does jitter
    assert len(set(delays)) > 1_000


def test_next_delay_without_retry_after_is_the_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.0)
    assert next_delay(answered(500, number=3), None, 3, 0.0, 0.0, SETTINGS) == 1.0  # 0.5 * 2**2 / 2


def test_next_delay_takes_retry_after_instead_of_the_back_off() -> None:
    assert next_delay(answered(429), 120.0, 1, 0.0, 0.0, SETTINGS) == 120.0
    assert next_delay(answered(503), 0.0, 1, 0.0, 0.0, SETTINGS) == 0.0


# -- Retry-After -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), ("0", 0.0), (" 5 ", 5.0), ("007", 7.0)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert _retry_after(value) == seconds


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    later = email.utils.formatdate(time.time() + 3_600, usegmt=True)  # "Wed, 21 Oct 2015 07:28:00 GMT"
    assert _retry_after(later) == pytest.approx(3_600, abs=5)


def test_retry_after_as_a_date_gone_by_is_now() -> None:
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-5", "1.5", "1e3", "12 s", "Wed, 99 Foo 2015",
                                   "0x10", "²", "¹²", "٣"])
def test_retry_after_that_is_neither_seconds_nor_a_date_is_ignored(value: str | None) -> None:
    """RFC 9110 §10.2.3: an HTTP-date or delay-seconds, which are ASCII digits (and a receiver's header is
    whatever it sends: aiohttp decodes it as UTF-8)."""
    assert _retry_after(value) is None


# -- what an attempt records --------------------------------------------------------------------------------------


def test_an_attempt_as_json() -> None:
    attempt = Attempt(2, 86_400.0 + 61.0, None, "refused: loopback", 3, refused=True)
    assert attempt.to_json() == {"attempt": 2, "at": "1970-01-02T00:01:01Z", "status": None,
                                 "error": "refused: loopback", "duration_ms": 3, "refused": True}
    assert not attempt.succeeded
