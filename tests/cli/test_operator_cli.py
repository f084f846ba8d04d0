"""The CLI as operators script it: output to files and pipes, global options anywhere,
signals, closed pipes, help at 80 columns, idempotent trust provisioning."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.cli.catalog import COMMANDS
from dhi_offline.cli.main import build_app, main, split_globals
from dhi_offline.errors import UsageError
from tests.support.sample import export_argv, make_sample_site, trust_argv
from tests.support.sample import run_cli as run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run(export_argv(d, "good.dhi.tar.zst"))
    assert code == 0, err
    return d


def cli(
    argv: list[str], *, stdout: Any = subprocess.PIPE, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dhi_offline", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


# -- 1. output for pipes and files -------------------------------------------------------


def test_report_to_a_file_keeps_digests_and_uris_whole(site: Path) -> None:
    out = site / "audit.txt"
    with out.open("wb") as f:
        proc = cli(["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site)], stdout=f)
        assert proc.wait(timeout=120) == 0
    text = out.read_text()
    lines = text.splitlines()
    assert not [ln for ln in lines if ln != ln.rstrip()], "a line ends in spaces"
    assert "\x1b[" not in text
    digest = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dhi_offline",
                "inspect",
                str(site / "good.dhi.tar.zst"),
                "--format",
                "json",
            ],
            capture_output=True,
            cwd=REPO,
            check=True,
        ).stdout
    )["exporterKeyId"]
    assert any(digest in ln for ln in lines)
    for uri in ("https://cyclonedx.org/bom/v1.6", "https://scout.docker.com/tests/v0.1"):
        assert any(uri in ln for ln in lines), uri
    assert max(len(ln) for ln in lines) < 400


def test_ctrf_departures_of_docker_format_are_notes_once(site: Path) -> None:
    code, out, _ = run(["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site)])
    assert code == 0
    assert "warning CTRF" not in out
    assert out.count("CTRF: no specVersion") == 1
    code, out, _ = run(
        ["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site), "--format", "json"]
    )
    doc = json.loads(out)
    assert "CTRF: no specVersion" in doc["notes"]
    assert not [w for w in doc["warnings"] if "CTRF" in w]


# -- 3. global options anywhere ------------------------------------------------------------


def test_global_options_are_taken_from_anywhere() -> None:
    found, rest = split_globals(["verify", "b", "--verbose", "--config=/c", "--color", "never"])
    assert found == {"verbose": True, "config": "/c", "color": "never"}
    assert rest == ["verify", "b"]
    found, rest = split_globals(["verify", "--", "--verbose"])
    assert found == {} and rest == ["verify", "--", "--verbose"]
    with pytest.raises(UsageError):
        split_globals(["verify", "--color", "sometimes"])


def test_verbose_after_the_subcommand(tmp_path: Path) -> None:
    code, _, err = run(["verify", str(tmp_path / "missing.dhi.tar.zst"), "--verbose"])
    assert code == 2 and "No such option" not in err
    code, _, err = run(
        ["verify", str(tmp_path / "missing.dhi.tar.zst"), "--trust-exporter", "x", "-v"]
    )
    assert "Traceback" in err


def test_config_is_honoured_by_verify_import_and_attest(site: Path) -> None:
    config = site / "elsewhere"
    pub = str(site / "exporter.pub")
    assert run(["trust", "add", pub, "--role", "exporter", "--config", str(config)])[0] == 0
    publisher = str(site / "publisher.pub")
    assert run(["trust", "add", publisher, "--role", "publisher", "--config", str(config)])[0] == 0
    bundle = str(site / "good.dhi.tar.zst")
    # Without --config nothing is pinned: refused with the hint to pin a key.
    code, _, err = run(["verify", bundle])
    assert code == 2 and "no exporter key is trusted" in err
    assert run(["verify", bundle, "--config", str(config)])[0] == 0
    assert run(["--config", str(config), "import", bundle, "--archive", str(site / "a")])[0] == 0
    image = json.loads(run(["inspect", bundle, "--format", "json"])[1])["images"][0]["digest"]
    code, _, err = run(["attest", "list", bundle, image, "--format", "json"])
    assert code == 2 and "no exporter key is trusted" in err
    code, out, err = run(
        ["attest", "list", bundle, image, "--config", str(config), "--format", "json"]
    )
    assert code == 0 and len(json.loads(out)) == 10, err
    code, out, err = run(["doctor", "--config", str(config), "--format", "json"])
    assert code == 0, err
    assert json.loads(out)["trustStore"] == {"path": str(config), "why": "--config"}


# -- 4. signals and pipes -------------------------------------------------------------------


def _reach_entry_seconds() -> float:
    """How long an interpreter takes, on this machine now, to load dhi_offline/_entry.py."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import dhi_offline._entry"], check=True)
    return time.monotonic() - started


# From the first module of ours (dhi_offline/_entry.py) on; a SIGINT before the
# interpreter has loaded it is Python's own start-up, not the tool's. That takes ~30 ms
# on an idle machine but several times more on a loaded one, so the delay is never
# shorter than the time measured to reach it (twice, for margin).
@pytest.mark.parametrize("delay", [0.1, 0.2, 0.3, 0.45, 0.6])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(
    site: Path, tmp_path: Path, delay: float
) -> None:
    """SIGINT during imports, or the verification itself."""
    delay = max(delay, 2 * _reach_entry_seconds())
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = cli(
        [
            "import",
            str(site / "good.dhi.tar.zst"),
            *trust_argv(site),
            *("--archive", str(site / "a"), "--html", str(site / "r.html")),
        ],
        env={"TMPDIR": str(tmp)},
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert code in (0, 130), err
    if code == 130:
        assert err.strip() == "dhi-offline: interrupted", err
    assert list(tmp.iterdir()) == []  # no work directory left behind
    assert not list(site.glob(".r.html.*"))  # no half-written report
    if (site / "a" / "log.jsonl").exists():
        assert run(["archive", "verify", "--archive", str(site / "a")])[0] == 0


def test_closed_pipe_is_quiet_exit_141(site: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write fails with EPIPE
    try:
        proc = cli(["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site)], stdout=writer)
    finally:
        os.close(writer)
    assert proc.wait(timeout=120) == 141
    assert proc.stderr is not None and proc.stderr.read() == b""


def test_unwritable_html_names_the_path(site: Path) -> None:
    code, _, err = run(
        ["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site), "--html", "/proc/x.html"]
    )
    assert code == 2 and "/proc/x.html" in err and err.count("\n") == 1


# -- 6. trust provisioning -------------------------------------------------------------------


def test_trust_add_is_idempotent_and_remove_takes_a_name(site: Path) -> None:
    pub = str(site / "exporter.pub")
    code, out, _ = run(["trust", "add", pub, "--role", "exporter", "--name", "lab"])
    assert code == 0 and out.startswith("pinned exporter key lab")
    code, out, _ = run(["trust", "add", pub, "--role", "exporter", "--name", "lab"])
    assert code == 0 and out.startswith("already pinned: exporter key lab")
    code, _, err = run(["trust", "add", pub, "--role", "publisher"])
    assert code == 2 and "a key has one role" in err
    code, out, _ = run(["trust", "list", "--format", "json"])
    assert [k["name"] for k in json.loads(out)["pinned"]] == ["lab"]
    code, out, _ = run(["trust", "list", "--json"])  # the old switch, hidden
    assert code == 0 and json.loads(out)["pinned"]
    assert run(["trust", "remove", "lab"])[0] == 0
    assert json.loads(run(["trust", "list", "--format", "json"])[1])["pinned"] == []


def test_private_key_where_a_public_one_is_expected(site: Path) -> None:
    pem = site / "exporter.pem"
    code, _, err = run(["verify", str(site / "good.dhi.tar.zst"), "--trust-exporter", str(pem)])
    assert code == 2 and f"{pem} is a PRIVATE key" in err and "exporter.pub" in err
    code, _, err = run(["trust", "add", str(pem), "--role", "exporter"])
    assert code == 2 and "PRIVATE key" in err


# -- 8. help ------------------------------------------------------------------------------------


def _help_pages() -> dict[str, str]:
    import typer.main

    group: Any = typer.main.get_command(build_app())
    pages: dict[str, str] = {}
    for name in COMMANDS:
        command = group.commands[name]
        paths = [[name]]
        if hasattr(command, "commands"):
            paths += [[name, sub] for sub in command.commands]
        for path in paths:
            with redirect_stdout(io.StringIO()) as out:
                assert main([*path, "--help"]) == 0, path
            pages[" ".join(path)] = out.getvalue()
    return pages


def test_help_at_80_columns_has_no_python_types_or_broken_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    pages = _help_pages()
    assert len(pages) > 20
    for path, text in pages.items():
        for bad in ("<bool>", "list[", "<str>", "<path>", "Path]", "{"):
            assert bad not in text, (path, bad)
        for line in text.splitlines():
            assert len(line) <= 80 or " " not in line.strip(), (path, line)
            # A wrap never ends a line inside a hyphenated word.
            assert not line.rstrip().endswith("-") or line.strip().startswith("-"), (path, line)


# -- 2. one format switch, JSON on failure too ---------------------------------------------------


def test_archive_json_on_success_and_failure(site: Path) -> None:
    archive = str(site / "a")
    bundle = str(site / "good.dhi.tar.zst")
    assert run(["import", bundle, *trust_argv(site), "--archive", archive])[0] == 0
    code, out, _ = run(["archive", "list", "--archive", archive, "--format", "json"])
    assert code == 0 and json.loads(out)[0]["verdict"] == "PASS"
    code, out, _ = run(["archive", "verify", "--archive", archive, "--format", "json"])
    doc = json.loads(out)
    assert code == 0 and doc["intact"] is True and doc["attempts"] == 1
    (site / "a" / "log.jsonl").write_text(
        (site / "a" / "log.jsonl").read_text().replace("PASS", "FAIL")
    )
    code, out, err = run(["archive", "verify", "--archive", archive, "--format", "json"])
    assert code == 1 and json.loads(out)["intact"] is False and err.count("\n") == 1


def test_verify_bundle_json_on_failure(tmp_path: Path) -> None:
    from tests.conftest import CONFORMANCE
    from tests.verify.test_conformance import conformance_argv

    argv = conformance_argv(CONFORMANCE / "signature-mismatch_fail")
    code, out, err = run([*argv[:-1], "--format", "json", argv[-1]])
    doc = json.loads(out)
    assert code == 1 and doc["verified"] is False and doc["step"] == "signature"
    assert err.startswith("dhi-offline: verification failed: signature: ")


# -- 6. cosign's identity regular expressions (full match) ----------------------------------


def test_certificate_identity_regexp_is_a_full_match() -> None:
    import re

    from tests.conftest import CONFORMANCE, DEFAULT_IDENTITY, DEFAULT_ISSUER
    from tests.verify.test_conformance import CASES, conformance_argv

    name = next(
        c
        for c in CASES
        if not c.endswith("_fail")
        and not (CONFORMANCE / c / "key.pub").exists()
        and not (CONFORMANCE / c / "identity").exists()
    )
    argv = conformance_argv(CONFORMANCE / name)
    i = argv.index("--certificate-identity")
    j = argv.index("--certificate-oidc-issuer")
    base = [a for k, a in enumerate(argv) if k not in (i, i + 1, j, j + 1)]

    def verify(identity: str, issuer: str) -> tuple[int, str, str]:
        opts = ["--certificate-identity-regexp", identity]
        opts += ["--certificate-oidc-issuer-regexp", issuer]
        return run([*base[:-1], *opts, base[-1]])

    assert verify(re.escape(DEFAULT_IDENTITY), re.escape(DEFAULT_ISSUER))[0] == 0, name
    assert verify(".*" + re.escape(DEFAULT_IDENTITY[-12:]), "https://.*")[0] == 0
    code, _, err = verify(re.escape(DEFAULT_IDENTITY[:12]), re.escape(DEFAULT_ISSUER))
    assert code == 1 and "identity: certificate identity does not match" in err
    code, _, err = verify(re.escape(DEFAULT_IDENTITY), re.escape(DEFAULT_ISSUER[:10]))
    assert code == 1 and "does not match" in err
    code, _, err = verify("(", "x")
    assert code == 2 and "not a regular expression" in err


# -- 5. diagnostics that lead to the fix -------------------------------------------------------


def _image_digest(bundle: Path) -> str:
    doc = json.loads(run(["inspect", str(bundle), "--format", "json"])[1])
    return str(doc["images"][0]["digest"])


def test_attest_list_with_the_publisher_unpinned_says_why_and_exits_1(site: Path) -> None:
    bundle = site / "good.dhi.tar.zst"
    image = _image_digest(bundle)
    only_exporter = ["--trust-exporter", str(site / "exporter.pub")]
    code, out, _ = run(["attest", "list", str(bundle), image, *only_exporter])
    lines = out.splitlines()
    assert code == 1 and len(lines) == 10
    assert all("FAILED: " in ln and "pinned publisher key" in ln for ln in lines)
    code, out, _ = run(["attest", "list", str(bundle), image, *only_exporter, "--format", "json"])
    rows = json.loads(out)
    assert code == 1 and {r["verified"] for r in rows} == {False} and rows[0]["problem"]
    code, out, _ = run(["attest", "list", str(bundle), image, *trust_argv(site)])
    assert code == 0 and all(ln.endswith("verified") for ln in out.splitlines())


def test_attest_get_lists_platforms_accepts_aliases_and_suggests(site: Path) -> None:
    bundle = str(site / "good.dhi.tar.zst")
    image = _image_digest(site / "good.dhi.tar.zst")
    base = ["attest", "get", bundle, image, *trust_argv(site)]
    code, _, err = run([*base, "--predicate-type", "tests"])
    assert code == 2 and "several platforms (linux/amd64, linux/arm64)" in err
    code, out, _ = run([*base, "--predicate-type", "tests", "--platform", "linux/amd64"])
    assert code == 0 and json.loads(out)["predicateType"] == "https://scout.docker.com/tests/v0.1"
    code, _, err = run([*base, "--predicate-type", "tests", "--platform", "amd64"])
    assert code == 2 and "did you mean linux/amd64?" in err


def test_policy_show_round_trips_and_typos_list_the_builtins(site: Path) -> None:
    code, out, _ = run(["policy", "show", "dhi-default"])
    assert code == 0 and "[attestations]" in out
    (site / "copy.toml").write_text(out)
    bundle = str(site / "good.dhi.tar.zst")
    code, out, _ = run(
        [
            "verify",
            bundle,
            *trust_argv(site),
            "--policy",
            str(site / "copy.toml"),
            "--format",
            "json",
        ]
    )
    assert code == 0 and json.loads(out)["policy"]["rules"]
    code, _, err = run(["verify", bundle, *trust_argv(site), "--policy", "dhi-defualt"])
    assert code == 2 and "built-in: dhi-default" in err
    code, out, _ = run(["policy", "list"])
    assert code == 0 and out.startswith("dhi-default: ")


def test_skopeo_style_oci_source_with_its_real_name(site: Path) -> None:
    argv = export_argv(site, "named.dhi.tar.zst")
    i = next(k for k, a in enumerate(argv) if a.startswith("oci-layout:"))
    argv[i] = "oci:" + argv[i].removeprefix("oci-layout:")
    code, _, err = run([*argv, "--name", "registry.site/dhi/python:3.13"])
    assert code == 0, err
    doc = json.loads(run(["inspect", str(site / "named.dhi.tar.zst"), "--format", "json"])[1])
    assert doc["images"][0]["reference"] == "registry.site/dhi/python:3.13"
    code, _, err = run([*argv, "--name", "oci:/x"])
    assert code == 2 and "--name" in err


def test_oci_with_a_port_is_still_a_registry() -> None:
    from dhi_offline.oci.reference import LayoutReference, Reference, parse_reference

    assert isinstance(parse_reference("oci:5000/ns/app:1"), Reference)
    assert isinstance(parse_reference("oci:/srv/layout:1"), LayoutReference)
    assert isinstance(parse_reference("oci:layout"), LayoutReference)


def test_distrusting_a_shipped_key_is_recorded_in_every_report(site: Path) -> None:
    code, out, _ = run(["trust", "distrust", "dhi-1"])
    assert code == 0 and out.startswith("distrusted shipped publisher key dhi-1 ")
    assert run(["trust", "distrust", "dhi-1"])[1].startswith("already distrusted:")
    code, out, _ = run(["trust", "list"])
    assert "dhi-1  (shipped, DISTRUSTED on this host)" in out
    code, out, _ = run(
        ["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site), "--format", "json"]
    )
    doc = json.loads(out)
    assert code == 0
    assert "dhi-1" not in {k["name"] for k in doc["trust"]["publisherKeys"]}
    assert any("dhi-1" in w and "distrusted on this host" in w for w in doc["warnings"])
    code, _, err = run(["trust", "distrust", "nope"])
    assert code == 2 and "shipped: dhi-2" in err


def test_oci_archive_source_as_skopeo_writes_it(site: Path) -> None:
    import tarfile

    archive = site / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for child in sorted((site / "layout").iterdir()):
            tar.add(child, arcname=child.name)
    argv = export_argv(site, "from-archive.dhi.tar.zst")
    i = next(k for k, a in enumerate(argv) if a.startswith("oci-layout:"))
    argv[i] = f"oci-archive:{archive}:3.13"
    code, _, err = run(argv)
    assert code == 0, err
    doc = json.loads(
        run(["inspect", str(site / "from-archive.dhi.tar.zst"), "--format", "json"])[1]
    )
    assert doc["images"][0]["reference"] == f"oci-archive:{archive}:3.13"
    code, _, _ = run(["verify", str(site / "from-archive.dhi.tar.zst"), *trust_argv(site)])
    assert code == 0
    evil = site / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        link = tarfile.TarInfo("index.json")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    argv[i] = f"oci-archive:{evil}"
    code, _, err = run(argv)
    assert code == 2 and "cannot unpack" in err
