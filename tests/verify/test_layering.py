"""verify/ imports nothing that opens a socket (the design rule, checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VERIFY = Path(__file__).resolve().parents[2] / "dhi_offline" / "verify"
NETWORK_MODULES = (
    "httpx",
    "httpcore",
    "requests",
    "urllib3",
    "dhi_offline.net",
    "dhi_offline.oci.client",
    "dhi_offline.oci.transport",
    "dhi_offline.oci.token",
    "dhi_offline.oci.status",
    "dhi_offline.oci.download",
    "dhi_offline.oci.referrers",
    "dhi_offline.oci.upload",
    "dhi_offline.tlog.rekor_client",
    "dhi_offline.trust.tuf",
    "dhi_offline.export",
    "sigstore._internal.tuf",
)


def test_verify_package_pulls_in_no_network_client() -> None:
    modules = sorted(
        f"dhi_offline.verify.{p.stem}" for p in VERIFY.glob("*.py") if p.stem != "__init__"
    )
    assert "dhi_offline.verify.bundle" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"net = {NETWORK_MODULES!r}\n"
        "pre = ('httpx.', 'dhi_offline.export.', 'dhi_offline.net.')\n"
        "bad = [m for m in sys.modules if m in net or m.startswith(pre)]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"verify/ imports network code: {out.stdout.strip()}"
