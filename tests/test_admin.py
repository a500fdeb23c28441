"""Who may send files to the app in password mode: only clients that signed in, for a while."""

from __future__ import annotations

from quellenchat_app.admin import SignedIn
from tests.fakes import FakeClock


def test_a_client_may_upload_only_after_signing_in_and_only_for_a_while() -> None:
    clock = FakeClock()
    signed_in = SignedIn(clock=clock, lifetime=60.0)
    assert "10.0.0.1" not in signed_in
    signed_in.add("10.0.0.1")
    assert "10.0.0.1" in signed_in
    assert "10.0.0.2" not in signed_in  # another address is not let in with it
    clock.now += 59.0
    assert "10.0.0.1" in signed_in
    clock.now += 2.0
    assert "10.0.0.1" not in signed_in  # expired: sign in again
    signed_in.add("10.0.0.2")
    assert signed_in._until.keys() == {"10.0.0.2"}  # expired entries do not pile up
