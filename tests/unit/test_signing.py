"""Standard Webhooks signatures on notifications (graphstore_async/tasks/delivery.py), checked against the
specification's own example, for a body in memory and one streamed from the spool. (That a receiver can verify a
real notification is in tests/tasks/test_delivery.py.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import pytest

from graphstore_async.tasks.delivery import _signature, _signing_key

# The example of the Standard Webhooks specification (standard-webhooks/standard-webhooks, spec/standard-webhooks.md)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: TIMESTAMP + 0.75)


def test_signature_is_the_specifications_example() -> None:
    key = _signing_key(SECRET)
    assert key is not None
    assert _signature(key, MESSAGE_ID, BODY) == {
        "webhook-id": MESSAGE_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}


def test_signing_key_takes_the_secret_with_or_without_its_prefix() -> None:
    assert _signing_key(SECRET) == _signing_key(SECRET.removeprefix("whsec_")) == base64.b64decode(
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert _signing_key(None) is None
    assert _signing_key("") is None


def test_a_spooled_body_is_signed_as_the_same_bytes_would_be(tmp_path: Path) -> None:
    key = _signing_key(SECRET)
    assert key is not None
    small = tmp_path / "small"
    small.write_bytes(BODY)
    assert _signature(key, MESSAGE_ID, small)["webhook-signature"] == SIGNATURE
    large = bytes(range(256)) * (3 * 4096 + 7)  # more than one 1 MiB chunk, and not a whole number of them
    spooled = tmp_path / "large"
    spooled.write_bytes(large)
    assert _signature(key, MESSAGE_ID, spooled) == _signature(key, MESSAGE_ID, large)


def test_an_empty_notification_is_signed_over_its_id_and_timestamp() -> None:
    key = b"k" * 32
    mac = hmac.new(key, f"{MESSAGE_ID}.{TIMESTAMP}.".encode(), hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    assert _signature(key, MESSAGE_ID, None)["webhook-signature"] == expected
    assert _signature(key, MESSAGE_ID, b"")["webhook-signature"] == expected
