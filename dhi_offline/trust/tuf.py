"""The Sigstore public-good trusted root, fetched through TUF on the connected side.

This module opens network connections (through sigstore-python's TUF client); only
the export side imports it. If TUF cannot be reached in a few seconds, the copy shipped
in the package is used and the caller is told so.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from dhi_offline.trust.shipped import shipped_trusted_root
from dhi_offline.trust.trusted_root import TrustedRoot

TUF_TIMEOUT_SECONDS = 10.0


def _fetch() -> bytes:
    # sigstore-python's updater verifies the TUF metadata chain from its embedded root.
    from sigstore._internal.tuf import DEFAULT_TUF_URL, TrustUpdater  # noqa: PLC0415 (lazy: export only)

    path = TrustUpdater(DEFAULT_TUF_URL, False).get_trusted_root_path()
    return Path(path).read_bytes()


def production_trusted_root() -> tuple[TrustedRoot, str | None]:
    """The production trusted root via TUF, else the shipped copy with a note why."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(_fetch)
    try:
        data = future.result(timeout=TUF_TIMEOUT_SECONDS)
        return TrustedRoot.from_bytes(data), None
    except Exception as e:  # any failure of the online path falls back to the shipped root
        reason = "timed out" if isinstance(e, concurrent.futures.TimeoutError) else type(e).__name__
        return (
            shipped_trusted_root("production"),
            f"Sigstore TUF repository unreachable ({reason}); using the trusted root shipped "
            "with dhi-offline, which may be out of date",
        )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
