"""Verify, import and re-verify bundles against the evidence archive.

Every attempt produces an :data:`~dhi_offline.verify.result.Outcome`: a full report, or a
:class:`~dhi_offline.verify.result.Refusal` when steps 1-4 refused the bundle as a whole.
``import`` records both (a refusal as a FAIL line with the bundle kept in quarantine),
under the archive's exclusive lock held from reading the rollback state to appending the
log line, so parallel imports cannot both pass the rollback check against the same state.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dhi_offline import __version__
from dhi_offline.archive.store import Archive, History, LogLine
from dhi_offline.encoding import format_rfc3339, parse_rfc3339
from dhi_offline.errors import DhiError, InputError, UsageError, VerificationError
from dhi_offline.host.tufroot import pin_from_bundle, trust_through_bundle
from dhi_offline.steps import Step
from dhi_offline.trust.tuf_state import TufResult
from dhi_offline.verify.attestation import AttestationResult
from dhi_offline.verify.bundle import (
    BundleTrust,
    VerifiedEvidenceBundle,
    VerifyOptions,
    file_sha256,
    receipt_for,
    unsafe_before_reading,
    verify_bundle_file,
)
from dhi_offline.verify.policy import Policy
from dhi_offline.verify.result import Outcome, Progress, Refusal, VerificationReport


@dataclass(frozen=True)
class ReferenceTime:
    """The one clock of a run: ``at``, and the wall clock when ``at`` was given."""

    at: datetime
    given: bool = False
    now: datetime = dataclasses.field(
        default_factory=lambda: datetime.now(UTC).replace(microsecond=0)
    )

    @classmethod
    def parse(cls, value: str | None) -> ReferenceTime:
        """``--at`` (RFC 3339), or now.

        Raises:
            UsageError: ``value`` is not an RFC 3339 time.
        """
        now = datetime.now(UTC).replace(microsecond=0)
        if value is None:
            return cls(at=now, given=False, now=now)
        try:
            return cls(at=parse_rfc3339(value, what="--at"), given=True, now=now)
        except InputError as e:
            raise UsageError(e.message) from e


@dataclass(frozen=True)
class HostRun:
    """What one verification on this host uses: trust, policy, time, switches."""

    trust: BundleTrust
    policy: Policy | None
    time: ReferenceTime
    allow_rollback: bool = False
    keep_statements: bool | Callable[[str, AttestationResult], bool] = False
    tuf_config_dir: Path | None = None
    """Where this host's TUF pins live: ``verify`` and ``import`` run the TUF chain of a
    bundle carrying ``tuf/`` from them. None: the bundle's TUF metadata is not used
    (``--trusted-root`` was given)."""


@dataclass(frozen=True)
class Attempt:
    """One verification attempt: the verified bundle, or the refusal at steps 1-4."""

    result: VerifiedEvidenceBundle | Refusal
    tuf: TufResult | None = None
    """The bundle's TUF chain, verified, when its trusted root was used."""

    @property
    def outcome(self) -> Outcome:
        """The report every renderer takes."""
        return (
            self.result.report if isinstance(self.result, VerifiedEvidenceBundle) else self.result
        )

    @property
    def verified(self) -> VerifiedEvidenceBundle | None:
        """The verified bundle (statements, checkpoints), None for a refusal."""
        return self.result if isinstance(self.result, VerifiedEvidenceBundle) else None


@dataclass(frozen=True)
class ImportResult:
    """What ``import`` did: recorded a new attempt, or found the bundle already there."""

    attempt: Attempt | None
    already: LogLine | None = None
    already_receipt: dict[str, Any] | None = None


def _hash(bundle: Path) -> tuple[str, int]:
    if not bundle.exists():
        raise InputError(f"cannot read bundle {bundle}: no such file")
    if bundle.is_dir():
        raise InputError(f"cannot read bundle {bundle}: is a directory")
    try:
        return file_sha256(bundle), bundle.stat().st_size
    except OSError as e:
        raise InputError(f"cannot read bundle {bundle}: {e.strerror or e}") from e


def attempt(
    bundle: Path,
    run: HostRun,
    history: History | None,
    *,
    sha256: str | None = None,
    size: int | None = None,
    rollback_note: str | None = None,
    workdir: Path | None = None,
    apply_tuf: bool = False,
) -> Attempt:
    """Run the plan on ``bundle`` with the rollback state of ``history``.

    With ``apply_tuf`` (and ``run.tuf_config_dir``), a bundle carrying ``tuf/`` is
    verified with the trusted root its TUF chain vouches for; a chain that does not
    verify refuses the bundle at step ``TUF``.

    A refusal at steps 1-4 is returned as a :class:`Refusal`, not raised. The file is
    hashed once: by the caller (``sha256``), else while the report is built, else for
    the refusal. ``workdir``
    (an empty directory the caller owns and removes) keeps extracted members alive
    after the call, for statements read later; by default a temporary one is used.

    Raises:
        InputError: the bundle cannot be read at all, or the work directory cannot be made.
    """
    if not bundle.exists():
        raise InputError(f"cannot read bundle {bundle}: no such file")
    if bundle.is_dir():
        raise InputError(f"cannot read bundle {bundle}: is a directory")
    progress = Progress()
    options = VerifyOptions(
        at=run.time.at,
        now=run.time.now if run.time.given else None,
        policy=run.policy,
        allow_rollback=run.allow_rollback,
        keep_statements=run.keep_statements,
        last_sequences=dict(history.sequences) if history else {},
        seen_checkpoints=dict(history.checkpoints) if history else {},
        rollback_note=rollback_note,
        progress=progress,
        bundle_sha256=sha256,
    )
    owned = workdir is None
    work = make_workdir() if workdir is None else workdir
    try:
        trust, tuf = run.trust, None
        if apply_tuf and run.tuf_config_dir is not None:
            through = trust_through_bundle(
                bundle, trust, config_dir=run.tuf_config_dir, at=run.time.at, progress=progress
            )
            if through is not None:
                trust, tuf = through
        verified = verify_bundle_file(bundle, trust=trust, options=options, workdir=work)
        return Attempt(verified, tuf=tuf)
    except VerificationError as e:
        if sha256 is None or size is None:
            sha256, size = _hash(bundle)
        unsafe = unsafe_before_reading(run.trust, options)
        if options.allow_rollback:
            unsafe.append("--allow-rollback: in force")
        if options.now is not None and progress.created and options.at < progress.created:
            unsafe.append(
                f"--at {format_rfc3339(options.at)} is earlier than the bundle's creation "
                f"({format_rfc3339(progress.created)})"
            )
        refusal = Refusal(
            bundle_path=str(bundle),
            bundle_sha256=sha256,
            bundle_size=size,
            reference_time=run.time.at,
            step=e.step,
            reason=" ".join(e.message.split()),
            progress=progress,
            unsafe=tuple(dict.fromkeys(unsafe)),
            tool_version=__version__,
        )
        return Attempt(refusal)
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)


def make_workdir() -> Path:
    """A private temporary directory for extracted members.

    Raises:
        InputError: the temporary directory cannot be written (read-only, full).
    """
    try:
        return Path(tempfile.mkdtemp(prefix="dhi-offline-"))
    except OSError as e:
        raise InputError(
            f"cannot create a work directory in {tempfile.gettempdir()}: {e.strerror or e} "
            "(set TMPDIR to a writable directory)"
        ) from e


def require_verified(result: Attempt) -> VerifiedEvidenceBundle:
    """The verified bundle, or the refusal raised as the error that caused it.

    Raises:
        VerificationError: the bundle was refused at steps 1-4 (naming the step).
    """
    if isinstance(result.result, Refusal):
        raise VerificationError(result.result.reason, step=result.result.step)
    return result.result


def verify(
    bundle: Path,
    run: HostRun,
    archive: Archive,
    *,
    explicit: bool,
    workdir: Path | None = None,
) -> Attempt:
    """``verify``: the plan against the archive's rollback state; records nothing.

    Args:
        explicit: the archive was named by the user (``--archive``): it must exist and
            hold a log. The default archive may be absent (a new host): the rollback
            check then says so, and a warning is added.

    Raises:
        InputError: the bundle is unreadable; an explicit archive is missing or empty.
        ArchiveIntegrityError: the archive's log was tampered with.
    """
    if explicit:
        archive.require()
    history: History | None = None
    if archive.root.is_dir():
        with archive.lock(exclusive=False):
            found = archive.history()  # refuses a deleted or rewritten log
        history = found if found.lines else None
    result = attempt(bundle, run, history, workdir=workdir, apply_tuf=True)
    verified = result.verified
    warnings: list[str] = []
    if history is None and verified is not None:
        warnings.append(
            f"no evidence archive at {archive.root}: rollback was checked against no history"
        )
    if result.tuf is not None and verified is not None:
        warnings.append(
            f"the trusted root from this bundle's TUF metadata (root v{result.tuf.root_version}, "
            f"targets v{result.tuf.targets_version}) was used for this verification only and "
            "is not pinned: 'import' or 'trust update-root' pins it"
        )
    if warnings and verified is not None:
        report = dataclasses.replace(
            verified.report, warnings=(*verified.report.warnings, *warnings)
        )
        result = Attempt(dataclasses.replace(verified, report=report), tuf=result.tuf)
    return result


def refusal_receipt(refusal: Refusal) -> dict[str, Any]:
    """The receipt the archive keeps for a refused bundle."""
    p = refusal.progress
    return {
        "bundleSha256": refusal.bundle_sha256,
        "bundleSize": refusal.bundle_size,
        "verifiedAt": format_rfc3339(refusal.reference_time),
        "toolVersion": refusal.tool_version,
        "verdict": refusal.verdict,
        "refused": {"step": refusal.step, "reason": refusal.reason},
        "signatureVerified": refusal.signature_verified,
        "exporterKeyId": p.exporter_key_id,
        "sequence": p.sequence,
        "unsafe": list(refusal.unsafe),
        "images": [],
        "violations": [],
        "failedChecks": [f"{refusal.step}: bundle refused: {refusal.reason}"],
    }


def import_bundle(
    bundle: Path,
    run: HostRun,
    archive: Archive,
    *,
    again: bool = False,
) -> ImportResult:
    """``import``: verify, then record the attempt (PASS, FAIL or refusal) in the archive.

    The archive's exclusive lock is held from reading the rollback state to appending
    the log line. A bundle already verified into the archive is not imported again
    unless ``again`` (the new line then says so).

    Raises:
        InputError: the bundle is unreadable, or the archive cannot be written.
        ArchiveIntegrityError: the archive's log was tampered with (nothing is recorded).
    """
    sha256, size = _hash(bundle)
    with archive.lock(exclusive=True):
        history = archive.history()
        earlier = history.find(sha256)
        if earlier is not None and not again:
            return ImportResult(
                attempt=None, already=earlier, already_receipt=archive.receipt(earlier)
            )
        tried = attempt(bundle, run, history, sha256=sha256, size=size, apply_tuf=True)
        result = tried.result
        checkpoints: dict[str, str] | None = None
        if isinstance(result, Refusal):
            outcome: Outcome = result
            receipt = refusal_receipt(result)
            key_id, sequence = result.progress.exporter_key_id, result.progress.sequence
        else:
            outcome = result.report
            receipt = receipt_for(result.report)
            key_id = result.report.trust.exporter_key_id
            sequence = result.opened.manifest.sequence
            if result.report.passed:
                checkpoints = result.checkpoints
        if earlier is not None:
            receipt["again"] = {"previousImport": earlier.index}
        stored = archive.record(
            history=history,
            bundle_file=bundle,
            bundle_sha256=sha256,
            bundle_size=size,
            receipt=receipt,
            verdict=outcome.verdict,
            refused=isinstance(result, Refusal),
            exporter_key_id=key_id,
            sequence=sequence,
            checkpoints=checkpoints,
        )
    if isinstance(result, Refusal):
        return ImportResult(attempt=Attempt(result.with_receipt(stored)))
    report = result.report.with_receipt(stored)
    if tried.tuf is not None and run.tuf_config_dir is not None:
        report = _pin_tuf(report, run.tuf_config_dir, tried.tuf, run.time.now)
    return ImportResult(attempt=Attempt(dataclasses.replace(result, report=report), tuf=tried.tuf))


def _pin_tuf(
    report: VerificationReport, config_dir: Path, tuf: TufResult, now: datetime
) -> VerificationReport:
    # Only a bundle that passed and is recorded moves the host's trusted root forward;
    # the import itself stands even when the pin cannot be written.
    if not report.passed:
        note = "the bundle did not pass: its TUF trusted root was not pinned"
        return dataclasses.replace(report, warnings=(*report.warnings, note))
    try:
        pin = pin_from_bundle(config_dir, tuf, now=now)
    except DhiError as e:
        note = f"the bundle's TUF trusted root was not pinned: {e.one_line()}"
        return dataclasses.replace(report, warnings=(*report.warnings, note))
    note = (
        f"trusted root pinned through TUF: root v{pin.root_version}, targets "
        f"v{pin.targets_version} (sha256 {tuf.trusted_root_sha256})"
    )
    return dataclasses.replace(report, notes=(*report.notes, note))


@dataclass(frozen=True)
class Reverification:
    """One archived bundle verified again, and how the result differs from its receipt."""

    line: LogLine
    receipt: dict[str, Any]
    outcome: Outcome | None
    """None when the bundle was not kept (a refused bundle over the quarantine cap)."""
    drift: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form (``archive reverify --format json``)."""
        return {
            "logIndex": self.line.index,
            "bundleSha256": self.line.bundle,
            "recordedVerdict": self.line.verdict,
            "verdict": self.outcome.verdict if self.outcome else None,
            "drift": list(self.drift),
            "report": self.outcome.to_json() if self.outcome else None,
        }


def select(history: History, which: str) -> list[LogLine]:
    """``N`` (a log index), a bundle sha256 prefix (8+ hex), or ``all``.

    Raises:
        UsageError: nothing matches.
    """
    if which == "all":
        return list(history.lines)
    if which.isascii() and which.isdigit():
        lines = [line for line in history.lines if line.index == int(which)]
    elif len(which) >= 8:
        lines = [line for line in history.lines if line.bundle.startswith(which.lower())]
    else:
        lines = []
    if not lines:
        raise UsageError(f"no import matches {which!r} (give a log index, or 8+ hex of a sha256)")
    return lines


def reverify(
    archive: Archive,
    which: str,
    run: HostRun,
    *,
    at_receipt: bool,
) -> list[Reverification]:
    """Re-run the full plan on archived bundles, with the trust pinned now.

    The archive is checked first (chain, receipts, kept bundles). A bundle that is itself
    in the archive is not refused as a rollback. With ``at_receipt`` each bundle is
    judged at the reference time recorded in its receipt, else at ``run.time``.

    Raises:
        InputError: no archive; UsageError: ``which`` matches nothing;
        ArchiveIntegrityError: the archive was tampered with.
    """
    archive.verify()
    with archive.lock(exclusive=False):
        history = archive.history()
    out: list[Reverification] = []
    for line in select(history, which):
        receipt = archive.receipt(line)
        kept = archive.stored_bundle(line)
        if kept is None:
            out.append(
                Reverification(line, receipt, None, ("the bundle was not kept (quarantine cap)",))
            )
            continue
        this = run
        if at_receipt:
            at = parse_rfc3339(str(receipt.get("verifiedAt")), what="receipt verifiedAt")
            this = dataclasses.replace(run, time=ReferenceTime(at=at, given=False))
        result = attempt(
            kept,
            this,
            history,
            sha256=line.bundle,
            size=kept.stat().st_size,
            rollback_note=f"archived as #{line.index}: rollback not applied on re-verification",
        )
        out.append(Reverification(line, receipt, result.outcome, drift(receipt, result.outcome)))
    return out


_EARLIER_REFUSAL_STEPS: dict[str, Step] = {
    "bundle format": Step.BUNDLE_FORMAT,
    "bundle limits": Step.BUNDLE_LIMITS,
    "bundle signature": Step.BUNDLE_SIGNATURE,
    "bundle member": Step.BUNDLE_MEMBERS,
    "checkpoint": Step.BUNDLE_CHECKPOINT,
    "consistency proof": Step.BUNDLE_CONSISTENCY,
}
"""Refusal step recorded by receipts of earlier versions (report schema 1) -> its name
now, so ``archive reverify`` does not call a renamed step drift. Those versions refused a
whole bundle at ``checkpoint`` or ``consistency proof`` only in step 4."""


def drift(receipt: dict[str, Any], outcome: Outcome) -> tuple[str, ...]:
    """How a re-verification differs from what the receipt recorded."""
    out: list[str] = []
    recorded = str(receipt.get("verdict"))
    if recorded != outcome.verdict:
        out.append(f"verdict {recorded} -> {outcome.verdict}")
    if isinstance(outcome, Refusal):
        was = receipt.get("refused")
        was_at = was.get("step") if isinstance(was, dict) else None
        if _EARLIER_REFUSAL_STEPS.get(str(was_at), was_at) != outcome.step:
            out.append(f"refused now at step {outcome.step}: {outcome.reason}")
        return tuple(out)
    before = {str(c) for c in receipt.get("failedChecks") or []}
    for c in outcome.checks:
        if c.status == "failed":
            text = f"{c.step}: {c.name}: {c.message}"
            if text not in before:
                out.append(f"newly failing: {text}")
    was_violations = {str(v) for v in receipt.get("violations") or []}
    for v in outcome.violations:
        if v.one_line() not in was_violations:
            out.append(f"new policy violation: {v.one_line()}")
    now_keys = {k for _, k in outcome.trust.publisher_keys}
    for entry in receipt.get("publisherKeys") or []:
        if isinstance(entry, list) and len(entry) == 2 and entry[1] not in now_keys:
            out.append(f"publisher key {entry[0]} ({str(entry[1])[:16]}…) is no longer pinned")
    policy = receipt.get("policy") if isinstance(receipt.get("policy"), dict) else {}
    if policy and policy.get("sha256") not in (None, outcome.policy_sha256):
        out.append(
            f"policy changed: {policy.get('name')} {str(policy.get('sha256'))[:12]}… -> "
            f"{outcome.policy_name} {str(outcome.policy_sha256)[:12]}…"
        )
    return tuple(out)
