"""The Prefer header (RFC 7240) as monitor mode reads it (graphstore_async/web/preferences.py): respond-async,
wait=N, callback; url=U — every Prefer header of a request merged. The numbers a wait may take are in
tests/web/test_bad_inputs.py; what a bad Prefer does to a request is in tests/tasks/test_bad_prefer.py."""

from __future__ import annotations

import pytest

from graphstore_async.errors import BadRequest
from graphstore_async.web.preferences import Preferences, parse_prefer

DONE = "https://example.org/done"


@pytest.mark.parametrize("headers", [[], [""], ["  "], [","], ["return=minimal"], ["handling=strict, foo"]])
def test_prefer_without_known_preferences_asks_nothing(headers: list[str]) -> None:
    preferences = parse_prefer(headers)
    assert preferences == Preferences(respond_async=False, wait_s=None, callback_url=None)
    assert not preferences.asynchronous


@pytest.mark.parametrize("header", ["respond-async", "RESPOND-ASYNC", " respond-async ", "respond-async;x=y",
                                    "return=minimal, respond-async", "respond-async=1"])
def test_prefer_respond_async_asks_for_a_task(header: str) -> None:
    preferences = parse_prefer([header])
    assert preferences.respond_async and preferences.asynchronous
    assert (preferences.wait_s, preferences.callback_url) == (None, None)


@pytest.mark.parametrize(("headers", "expected"), [
    (["respond-async, wait=10"], Preferences(True, 10.0, None)),
    (["respond-async", "wait=10"], Preferences(True, 10.0, None)),  # several headers, one set of preferences
    (["wait=10", "respond-async"], Preferences(True, 10.0, None)),
    (["WAIT = 2.5 ,respond-async"], Preferences(True, 2.5, None)),
    (["respond-async,,wait=1,"], Preferences(True, 1.0, None)),
    ([f"respond-async, wait=3, callback; url={DONE}"], Preferences(True, 3.0, DONE)),
    (["respond-async", f'callback; url="{DONE}"', "wait=0"], Preferences(True, 0.0, DONE)),
])
def test_prefer_merges_every_header(headers: list[str], expected: Preferences) -> None:
    assert parse_prefer(headers) == expected


def test_prefer_wait_alone_does_not_make_a_request_asynchronous() -> None:
    preferences = parse_prefer(["wait=10"])
    assert preferences.wait_s == 10.0
    assert not preferences.asynchronous


def test_prefer_wait_as_a_parameter_of_respond_async_is_not_a_wait() -> None:
    """`respond-async; wait=5` gives respond-async a parameter; the wait preference is a preference of its own."""
    assert parse_prefer(["respond-async; wait=5"]) == Preferences(True, None, None)


@pytest.mark.parametrize("header", [
    f"callback; url={DONE}",
    f'callback; url="{DONE}"',
    f"callback;url={DONE}",
    f" Callback ; URL = {DONE} ",
    f'callback; foo=bar; url="{DONE}"',
    f"odata.callback; url={DONE}",
])
def test_prefer_callback_asks_for_a_task_with_a_callback(header: str) -> None:
    preferences = parse_prefer([header])
    assert preferences.callback_url == DONE
    assert preferences.asynchronous  # a callback is asynchronous without respond-async
    assert not preferences.respond_async


def test_prefer_callback_url_may_quote_commas_and_semicolons() -> None:
    url = "https://example.org/done;v=1?a=1,2&b=x;y"
    preferences = parse_prefer([f'callback; url="{url}", respond-async, wait=4'])
    assert preferences == Preferences(True, 4.0, url)


@pytest.mark.parametrize("header", ["callback", "respond-async, callback", "callback; url=", "callback; url=  ",
                                    f"callback; uri={DONE}", f"callback, url={DONE}"])
def test_prefer_callback_without_a_url_is_400_naming_the_header(header: str) -> None:
    with pytest.raises(BadRequest, match="url") as refused:
        parse_prefer([header])
    problem = refused.value.problem()
    assert (problem["status"], problem["header"]) == (400, "Prefer")


@pytest.mark.parametrize(("wait", "says"), [("-1", "negative"), ("-0.5", "negative"), ("soon", "not a number"),
                                            ("1e2", "not a number"), ("0x10", "not a number")])
def test_prefer_bad_wait_is_400_naming_the_header(wait: str, says: str) -> None:
    with pytest.raises(BadRequest, match=says) as refused:
        parse_prefer(["respond-async", f"wait={wait}"])
    problem = refused.value.problem()
    assert (problem["status"], problem["header"]) == (400, "Prefer")


def test_prefer_a_bad_wait_in_any_header_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_prefer(["respond-async", "handling=lenient, wait=x"])


def test_prefer_given_twice_takes_the_first() -> None:
    """RFC 7240 §2: "If any preference is specified more than once, only the first instance is to be
    considered." """
    assert parse_prefer(["wait=5, wait=7"]).wait_s == 5.0
    assert parse_prefer(["wait=5", "wait=7"]).wait_s == 5.0
    other = "https://example.org/other"
    assert parse_prefer([f"callback; url={DONE}", f"callback; url={other}"]).callback_url == DONE


@pytest.mark.parametrize(("headers", "expected"), [
    (["wait=5, wait=soon"], Preferences(False, 5.0, None)),  # a repeat is not read: its bad value does not count
    (["wait=5", "wait=-1"], Preferences(False, 5.0, None)),
    ([f"callback; url={DONE}", "callback"], Preferences(False, None, DONE)),
    ([f"odata.callback; url={DONE}, callback; url=https://example.org/other"], Preferences(False, None, DONE)),
    (["respond-async, RESPOND-ASYNC;x=y, wait=1, WAIT=2"], Preferences(True, 1.0, None)),
])
def test_prefer_given_twice_ignores_the_repeat_whatever_it_says(headers: list[str], expected: Preferences) -> None:
    assert parse_prefer(headers) == expected


@pytest.mark.parametrize("headers", [["wait=soon, wait=5"], ["wait=-1", "wait=5"],
                                     [f"callback, callback; url={DONE}"]])
def test_prefer_given_twice_with_a_bad_first_is_400(headers: list[str]) -> None:
    """The first instance is the one considered: a good repeat does not mend it."""
    with pytest.raises(BadRequest) as refused:
        parse_prefer(headers)
    assert refused.value.problem()["header"] == "Prefer"
