"""The commands of ``dhi-offline`` and their one-line helps, with no imports.

The top-level ``--help`` (and a usage error naming no known command) is rendered from
this table, so it does not import every command module (their HTTP client, TUF and
report code: most of the start-up time). ``tests/cli/test_startup.py`` checks that the
summaries are what the command modules say, and that both help pages are identical.
"""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str, bool]] = {
    "export": ("export", "export", False),
    "verify": ("verify", "verify", False),
    "import": ("verify", "import_", False),
    "inspect": ("verify", "inspect", False),
    "attest": ("attest", "app", True),
    "trust": ("trust", "app", True),
    "archive": ("archive", "app", True),
    "policy": ("policy", "app", True),
    "keys": ("export", "keys_app", True),
    "sigstore": ("sigstore", "app", True),
    "demo": ("demo", "demo", False),
    "doctor": ("doctor", "doctor", False),
    "push": ("deliver", "push", False),
    "pull": ("deliver", "pull", False),
    "admission-config": ("admission", "admission_config", False),
    "dist": ("dist", "app", True),
}
"""name -> (module under dhi_offline.cli, attribute, a command function or a sub-app), in
the order --help lists them."""

SUMMARIES: dict[str, str] = {
    "export": "Collect images, attestations, log proofs and keys into one signed evidence bundle.",
    "verify": "Verify an evidence bundle offline and apply policy; record nothing.",
    "import": (
        "Verify an evidence bundle, then keep it, a receipt and a hash-chained log line in "
        "the evidence archive."
    ),
    "inspect": "Show what an evidence bundle claims to contain, WITHOUT verifying it.",
    "attest": "List and read verified attestations of an evidence bundle.",
    "trust": "Pinned exporter and publisher keys of this host.",
    "archive": "The evidence archive: imported bundles, receipts and the hash-chained log.",
    "policy": "Built-in policies: list them, print one to copy.",
    "keys": "Exporter signing keys.",
    "sigstore": "Verify single sigstore bundles offline (sigstore-conformance protocol).",
    "demo": "Publish a sample image, export it to an evidence bundle, verify it with no network.",
    "doctor": "Show where state lives and what is trusted, and why; checks nothing else.",
    "push": (
        "Verify an evidence bundle, then push its evidence and the site's signed verdict to a "
        "registry."
    ),
    "pull": (
        "Fetch an evidence bundle that ``push`` stored in a registry; verify it offline afterwards."
    ),
    "admission-config": (
        "Write what an admission enforcer needs to admit only images whose site signature "
        "verifies and whose VSA says PASSED with no unsafe switch."
    ),
    "dist": (
        "The offline installer: every wheel dhi-offline needs, signed, for a host with no "
        "package index."
    ),
}
"""name -> the first paragraph of the command's help (all the command list shows)."""
