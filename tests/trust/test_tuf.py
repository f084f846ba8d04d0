"""The production trusted root through TUF (dhi_offline/trust/tuf.py), or the shipped copy
with a note why. No network: sigstore-python's updater is replaced here."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sigstore._internal.tuf as sigstore_tuf

from dhi_offline.trust import tuf
from dhi_offline.trust.shipped import shipped_trusted_root
from dhi_offline.trust.trusted_root import TrustedRoot

DATA = Path(tuf.__file__).parents[1] / "data" / "trusted_root"
STAGING = (DATA / "staging.json").read_bytes()  # told apart from the shipped production root


def test_the_root_fetched_through_tuf_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuf, "_fetch", lambda: STAGING)
    root, note = tuf.production_trusted_root()
    assert note is None
    assert root == TrustedRoot.from_bytes(STAGING)
    assert root != shipped_trusted_root("production")


def test_an_unreachable_repository_falls_back_to_the_shipped_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail() -> bytes:
        raise ConnectionError("no route to host")

    monkeypatch.setattr(tuf, "_fetch", fail)
    root, note = tuf.production_trusted_root()
    assert root == shipped_trusted_root("production")
    assert note == (
        "Sigstore TUF repository unreachable (ConnectionError); using the trusted root "
        "shipped with dhi-offline, which may be out of date"
    )


def test_an_unusable_fetched_root_falls_back_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuf, "_fetch", lambda: b"{}")
    root, note = tuf.production_trusted_root()
    assert root == shipped_trusted_root("production")
    assert note is not None and "unreachable (TrustMaterialError)" in note


def test_a_slow_repository_times_out_without_waiting_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def hang() -> bytes:
        release.wait(30)
        return STAGING

    monkeypatch.setattr(tuf, "_fetch", hang)
    monkeypatch.setattr(tuf, "TUF_TIMEOUT_SECONDS", 0.2)
    start = time.monotonic()
    try:
        root, note = tuf.production_trusted_root()
        elapsed = time.monotonic() - start
    finally:
        release.set()  # let the abandoned fetch thread end
    assert elapsed < 5
    assert root == shipped_trusted_root("production")
    assert note is not None and note.startswith("Sigstore TUF repository unreachable (timed out)")


def test_fetch_reads_what_sigstores_updater_verified(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, bool]] = []
    (tmp_path / "trusted_root.json").write_bytes(STAGING)

    class Updater:
        def __init__(self, url: str, offline: bool) -> None:
            calls.append((url, offline))

        def get_trusted_root_path(self) -> str:
            return str(tmp_path / "trusted_root.json")

    monkeypatch.setattr(sigstore_tuf, "TrustUpdater", Updater)
    assert tuf._fetch() == STAGING
    assert calls == [(sigstore_tuf.DEFAULT_TUF_URL, False)]  # online, Sigstore's repository
