"""The sigstore-conformance bundle-verify suite, run through the CLI by its upstream rule.

Rule (test/assets/bundle-verify/README.md upstream): a case directory ending in ``_fail``
must fail, every other must pass; ``artifact`` else ``../a.txt``; ``identity``/``issuer``
files else the beacon defaults; ``key.pub`` means key-signed; ``trusted_root.json`` else
the production root (shipped in the package).
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from dhi_offline.cli.main import main
from tests.conftest import CONFORMANCE, DEFAULT_IDENTITY, DEFAULT_ISSUER

CASES = sorted(p.name for p in CONFORMANCE.iterdir() if p.is_dir())
FAIL_STEPS: dict[str, str] = json.loads(
    (Path(__file__).parent / "conformance_fail_steps.json").read_text(encoding="utf-8")
)
"""The plan step that must refuse each ``_fail`` case ("(input error)": exit 2 before the
plan runs). Asserting the step, not only the failure, means a check that is lost is
noticed even when a later check still refuses the case."""


def conformance_argv(case: Path) -> list[str]:
    """The verify-bundle command line the conformance harness would run for ``case``."""
    artifact = case / "artifact"
    argv = ["sigstore", "verify-bundle", "--bundle", str(case / "bundle.sigstore.json")]
    if (case / "trusted_root.json").exists():
        argv += ["--trusted-root", str(case / "trusted_root.json")]
    if (case / "key.pub").exists():
        argv += ["--key", str(case / "key.pub")]
    else:
        identity = (
            (case / "identity").read_text().strip()
            if (case / "identity").exists()
            else DEFAULT_IDENTITY
        )
        issuer = (
            (case / "issuer").read_text().strip() if (case / "issuer").exists() else DEFAULT_ISSUER
        )
        argv += ["--certificate-identity", identity, "--certificate-oidc-issuer", issuer]
    argv.append(str(artifact if artifact.exists() else CONFORMANCE / "a.txt"))
    return argv


def run_case(name: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(conformance_argv(CONFORMANCE / name))
    return code, err.getvalue()


def test_suite_is_complete() -> None:
    # 70 upstream cases at commit a73de49 (INDEX.md): none silently lost in the copy.
    assert len(CASES) == 70
    assert sorted(FAIL_STEPS) == [c for c in CASES if c.endswith("_fail")]


@pytest.mark.parametrize("name", CASES)
def test_conformance_case(name: str) -> None:
    code, err = run_case(name)
    if name.endswith("_fail"):
        assert code in (1, 2), f"{name} verified but must fail"
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
        assert "Traceback" not in err
        assert "internal error" not in err, err
        step = FAIL_STEPS[name]
        if step == "(input error)":
            assert code == 2 and lines[0].startswith("dhi-offline: error: "), lines[0]
        else:
            assert code == 1, lines[0]
            assert lines[0].startswith(f"dhi-offline: verification failed: {step}: "), lines[0]
    else:
        assert code == 0, f"{name} must verify: {err.strip()}"


def test_conformance_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the whole table (case, expected, got) and the matching count."""
    rows = []
    for name in CASES:
        code, err = run_case(name)
        expected = "fail" if name.endswith("_fail") else "pass"
        got = "pass" if code == 0 else "fail"
        rows.append((name, expected, got, err.strip()))
    matching = sum(1 for _, e, g, _ in rows if e == g)
    with capsys.disabled():
        print()
        print(f"{'case':<62} {'expected':<8} {'got':<5} reason")
        for name, e, g, reason in rows:
            print(f"{name:<62} {e:<8} {g:<5} {reason[:110]}")
        print(f"sigstore-conformance bundle-verify: {matching}/{len(rows)} match upstream")
    assert matching == len(rows)
