"""sigstore-js (``@sigstore/verify``, pinned in ``js/package-lock.json``) as a checker.

:func:`node_tools` finds node and npm (skipping the test when they are missing or node
is too old for ``@sigstore/verify`` 3.x); :func:`installed_node` also runs ``npm ci``
once into ``js/node_modules``. :func:`verify_dsse_bundle` runs ``js/verify_dsse.mjs``
on a DSSE bundle signed with a plain public key (no tlog, no timestamps).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent / "js"
NODE_MIN = (20, 17)


def node_tools() -> tuple[str, str]:
    """(node, npm), or skip with the reason."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the sigstore-js interop tests")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    parts = version.stdout.strip().lstrip("v").split(".")
    if len(parts) < 2 or tuple(int(p) for p in parts[:2]) < NODE_MIN:
        pytest.skip(f"@sigstore/verify 3.x needs node >= 20.17, found {version.stdout.strip()}")
    return node, npm


def installed_node() -> str:
    """The node binary, with ``js/node_modules`` installed from the lock file (or skip)."""
    node, npm = node_tools()
    if not (JS / "node_modules" / "@sigstore" / "verify").is_dir():
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=JS,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci timed out (no npm registry reachable?)")
        if done.returncode != 0:
            tail = " ".join(done.stderr.split())[-300:]
            pytest.skip(f"npm ci failed in {JS}: {tail}")
    return node


def verify_dsse_bundle(node: str, bundle: Path, public_key_pem: Path) -> tuple[bool, str]:
    """Whether sigstore-js accepts the DSSE ``bundle`` signed by ``public_key_pem``.

    Offline policy: no tlog entry, CT log or timestamp required, an empty trusted root.
    Returns (verified, the script's one-line output). Raises ``RuntimeError`` on a
    usage error or crash (any exit status but 0 and 1), so that a broken script is not
    mistaken for a refusal.
    """
    done = subprocess.run(
        [node, str(JS / "verify_dsse.mjs"), str(bundle), str(public_key_pem)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (done.stdout + done.stderr).strip()
    if done.returncode not in (0, 1):
        raise RuntimeError(f"verify_dsse.mjs exited {done.returncode}: {output}")
    return done.returncode == 0, output
