"""What a verified TUF chain leaves behind (dhi_offline/trust/tuf_state.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from dhi_offline.trust.tuf_state import TufAccepted, TufResult


def _result(trusted_root: bytes) -> TufResult:
    return TufResult(
        root=b"{}",
        pinned_version=1,
        root_version=2,
        timestamp=b"t",
        snapshot=b"s",
        targets=b"g",
        timestamp_version=1,
        snapshot_version=1,
        targets_version=1,
        trusted_root=trusted_root,
        signing_config=None,
        signing_config_name=None,
        expires=datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_trusted_root_sha256_hashes_the_target_bytes() -> None:
    a, b = _result(b'{"a": 1}'), _result(b'{"a": 2}')
    assert a.trusted_root_sha256 == hashlib.sha256(b'{"a": 1}').hexdigest()
    assert a.trusted_root_sha256 != b.trusted_root_sha256


def test_the_state_is_immutable_and_nothing_is_accepted_by_default() -> None:
    assert TufAccepted() == TufAccepted(None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        _result(b"x").root = b"other"  # type: ignore[misc]


def test_the_module_does_not_import_python_tuf() -> None:
    # Its reason to exist apart from tuf_chain: the pins are read on every verification.
    code = (
        "import sys\n"
        "import dhi_offline.trust.tuf_state\n"
        "print(sorted(m for m in sys.modules if m == 'tuf' or m.startswith('tuf.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
