"""One step vocabulary: ``dhi_offline/steps.py`` and the plans in the docs name the same steps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dhi_offline import errors
from dhi_offline.steps import Step

ROOT = Path(__file__).resolve().parents[1]
VERIFICATION_MD = ROOT / "docs" / "verification.md"
TRUST_MD = ROOT / "docs" / "trust.md"


def _section(path: Path, heading: str) -> str:
    """The text of the ``##`` section whose heading starts with ``heading``."""
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^#{{1,2}} {re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        pytest.fail(f"{path.name} has no section {heading!r}")
    return match.group(1)


def _table(section: str) -> list[list[str]]:
    """The body rows of the first Markdown table of ``section``, cells stripped."""
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]


def _step_names() -> list[tuple[str, set[str]]]:
    """``docs/verification.md`` "Step names": (step, plans) per row, in order."""
    out: list[tuple[str, set[str]]] = []
    for cells in _table(_section(VERIFICATION_MD, "Step names")):
        name = re.fullmatch(r"`([^`]+)`", cells[0])
        assert name is not None, f"first cell is not one `step`: {cells[0]!r}"
        out.append((name.group(1), {p.strip() for p in cells[1].split(",")}))
    return out


def test_docs_list_exactly_the_enum_in_order() -> None:
    assert [name for name, _ in _step_names()] == [s.value for s in Step]


def test_bundle_plan_in_trust_md_names_the_bundle_steps() -> None:
    plan = _section(TRUST_MD, "The verification plan")
    annotated = re.findall(r"\(step names:\s+([^)]*)\)", plan)
    assert annotated, "docs/trust.md's plan has no (step names: ...)"
    named = [s for a in annotated for s in re.findall(r"`([^`]+)`", a)]
    assert len(named) == len(set(named)), "a step is named twice in docs/trust.md's plan"
    assert set(named) == {name for name, plans in _step_names() if "bundle" in plans}


def test_sigstore_plan_table_names_the_sigstore_steps() -> None:
    table = _table(_section(VERIFICATION_MD, "The verification plan"))
    assert [row[0] for row in table] == [str(n) for n in range(len(table))]
    printed = {
        token
        for row in table
        for token in re.findall(r"`([^`]+)`", row[-1])
        if not token.endswith("Error")
    } - {"keyid"}
    assert printed == {name for name, plans in _step_names() if "sigstore" in plans}


def _subclasses(cls: type[errors.VerificationError]) -> list[type[errors.VerificationError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


def test_every_verification_error_names_a_step() -> None:
    classes = _subclasses(errors.VerificationError)
    assert len(classes) > 20
    for cls in classes:
        assert isinstance(cls.step, Step), cls.__name__
        assert cls("x").one_line() == f"{cls.step.value}: x"


def test_a_bundle_plan_step_has_one_name_passing_or_refusing() -> None:
    numbered = {s for s in Step if s.value[0].isdigit()}
    refusals = (
        errors.BundleFormatError,
        errors.BundleLimitError,
        errors.ManifestSignatureError,
        errors.MemberIntegrityError,
        errors.ExpiredBundleError,
        errors.RollbackError,
    )
    assert all(cls.step in numbered for cls in refusals)
    # No unnumbered twin of a numbered step, but a log entry's checkpoint (step 3 of the
    # single-bundle plan, inside step 6) is another step than the bundle's (step 4).
    twins = {s.value.split(" ", 1)[1] for s in numbered} & {s.value for s in Step}
    assert twins == {"checkpoint"}


def test_steps_print_as_their_value() -> None:
    # A StrEnum member equals its value, which mypy does not know.
    rollback: str = Step.ROLLBACK
    assert f"{Step.ROLLBACK}" == str(Step.ROLLBACK) == "4 rollback" == rollback
    assert errors.SignatureError("m", step=Step.DSSE).one_line() == "DSSE: m"


def test_no_step_is_spelled_as_a_string_in_the_code() -> None:
    literal = re.compile(r"""step\s*[=:][^=\n]*?["'][^"']+["']|Check\(\s*["']""")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "dhi_offline").rglob("*.py"))
        if path.name != "steps.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == [], "use dhi_offline.steps.Step"
