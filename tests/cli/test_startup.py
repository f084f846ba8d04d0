"""Start-up (issue 13): the fast paths say exactly what the full CLI says, and a
verification loads no HTTP client, TUF, rich or pydantic.

The fast paths: ``--version`` answered by the entry module before typer is imported; the
top-level help and usage errors rendered from :mod:`dhi_offline.cli.catalog` instead of
every command module; option values converted by :mod:`dhi_offline.cli.coercion`
instead of typer's pydantic adapters. Timing is measured by
``benchmarks/bench_startup.py``, not here.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
from typer._click import Context

from dhi_offline.cli import coercion
from dhi_offline.cli.catalog import COMMANDS, SUMMARIES
from dhi_offline.cli.main import build_app, main
from tests.conftest import CONFORMANCE
from tests.support.sample import export_argv, make_sample_site, run_cli, trust_argv
from tests.verify.test_conformance import conformance_argv


def _run_app(application: typer.Typer, args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            application(args=args, prog_name="dhi-offline")
            code: Any = 0
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def test_catalog_summaries_are_the_commands_own() -> None:
    group: Any = typer.main.get_command(build_app())
    assert set(group.commands) == set(COMMANDS) == set(SUMMARIES)
    for name, command in group.commands.items():
        first = " ".join((command.help or "").split("\n\n")[0].split())
        assert SUMMARIES[name] == first, name


@pytest.mark.parametrize("columns", ["60", "80", "120"])
@pytest.mark.parametrize(
    "args", [["--help"], ["-h"], [], ["nosuch"], ["expor"], ["--bogus"], ["--verbose"]]
)
def test_summary_app_prints_what_the_full_app_prints(
    args: list[str], columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    full = _run_app(build_app(), args)
    assert _run_app(build_app(summaries=True), args) == full
    assert full[1] or full[2]


def test_top_level_help_through_main_is_the_full_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--help"]) == 0
    assert out.getvalue() == _run_app(build_app(), ["--help"])[1]


def _imports(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m dhi_offline ARGV``: the result, the modules imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dhi_offline", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return done, modules


def _loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def test_version_is_answered_before_typer_is_imported() -> None:
    done, modules = _imports(["--version"])
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--version"]) == 0
    assert done.returncode == 0
    assert done.stdout == out.getvalue() == "dhi-offline 0.1.0\n"
    assert not _loaded(modules, "typer"), sorted(modules)


NEVER_ON_VERIFY = ("httpx", "rich", "tuf", "pydantic", "typer._adapters", "dhi_offline.report")


@pytest.mark.parametrize(
    ("argv", "forbidden"),
    [
        (["--help"], (*NEVER_ON_VERIFY, "dhi_offline.cli.export", "dhi_offline.cli.verify")),
        (conformance_argv(CONFORMANCE / "happy-path-v0.3"), (*NEVER_ON_VERIFY, "pydantic_core")),
        (conformance_argv(CONFORMANCE / "happy-path-intoto-in-dsse-v3"), NEVER_ON_VERIFY),
        (conformance_argv(CONFORMANCE / "rekor2-timestamp-with-embedded-cert"), NEVER_ON_VERIFY),
    ],
    ids=["help", "message-signature", "dsse", "rekor2-timestamp"],
)
def test_what_start_up_does_not_import(argv: list[str], forbidden: tuple[str, ...]) -> None:
    # A subprocess: this test process has imported all of them already.
    done, modules = _imports(argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p for p in forbidden if _loaded(modules, p)] == []


def test_verify_of_a_bundle_loads_only_the_report_it_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `dhi-offline verify BUNDLE --format json`, the large-SBOM benchmark's command:
    # no TUF (nothing to verify), no rich, no text/HTML/CTRF renderer, no pydantic.
    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run_cli(export_argv(d, "b.dhi.tar.zst"))
    assert code == 0, err
    argv = ["verify", str(d / "b.dhi.tar.zst"), *trust_argv(d), "--format", "json"]
    done, modules = _imports(argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["verdict"] == "PASS"
    forbidden = (
        "httpx",
        "rich",
        "tuf",
        "pydantic",
        "typer._adapters",
        "dhi_offline.trust.tuf_chain",
        "dhi_offline.report.text",
        "dhi_offline.report.html",
        "dhi_offline.report.ctrf",
    )
    assert [p for p in forbidden if _loaded(modules, p)] == []
    assert _loaded(modules, "dhi_offline.report.jsonreport")


def test_json_output_still_loads_the_report() -> None:
    argv = conformance_argv(CONFORMANCE / "happy-path-v0.3")
    done, modules = _imports([*argv[:2], "--format", "json", *argv[2:]])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)
    assert _loaded(modules, "dhi_offline.report")


# -- light conversion == typer's conversion -----------------------------------------------


def _parameters() -> list[tuple[str, Any, Any]]:
    """(command path, click command, parameter) of every typer parameter of every command."""
    found: list[tuple[str, Any, Any]] = []

    def walk(command: Any, path: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())
        for param in command.params:
            if isinstance(param, typer.core._TyperParameter):
                found.append((path, command, param))

    walk(typer.main.get_command(build_app()), "")
    return found


def _values(kind: str, annotation: Any, tmp_path: Path) -> list[Any]:
    if kind == "str":
        return ["", "x y", "sha256:ab", "-", 3]
    if kind == "bool":
        return [True, False, "true"]
    if kind == "choice":
        out: list[Any] = ["nope", "", 3]
        for member in annotation:
            out += [member, str(member.value), str(member.value).upper(), member.name]
        return out
    afile = tmp_path / "a-file"
    afile.write_text("x")
    if kind == "paths":
        # A repeatable option: click hands over a tuple of the texts given.
        return [
            (),
            (str(afile),),
            (str(afile), str(tmp_path)),
            (str(tmp_path / "missing"),),
            ("a/./b",),
            ("",),
            (str(afile), "a/./b"),
            [str(afile)],
            None,
            str(afile),
            (3,),
        ]
    return [
        "",
        ".",
        "-",
        "a/./b",
        f"{tmp_path}/",
        f"{afile}/",
        str(afile),
        str(tmp_path),
        str(tmp_path / "missing"),
        afile,
        3,
    ]


def _outcome(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[Any, ...]:
    try:
        result = runtime._coerce_value(value, param=param, ctx=ctx)
    except Exception as e:
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        return ("error", type(e), message)
    return ("value", type(result), result)


def test_light_conversion_is_typers_on_every_parameter(tmp_path: Path) -> None:
    build_app()  # installs the light conversion
    assert typer.core.build_runtime_param is coercion.build_runtime_param  # type: ignore[attr-defined]
    checked: dict[str, int] = {}
    for path, command, param in _parameters():
        descriptor = param.type_descriptor
        kind = coercion._kind(descriptor)
        if kind is None:
            continue
        light = coercion.build_runtime_param(descriptor)
        assert isinstance(light, coercion.LightRuntimeParam)
        typers = coercion._typer_build(descriptor)
        ctx = Context(command, info_name=path)
        for value in _values(kind, descriptor.annotation, tmp_path):
            assert _outcome(light, value, param, ctx) == _outcome(typers, value, param, ctx), (
                path,
                param.name,
                value,
            )
        checked[kind] = checked.get(kind, 0) + 1
    # Every kind is exercised by some command (a renamed type would skip them silently).
    assert set(checked) == {"str", "bool", "path", "paths", "choice"}, checked
