"""The verification plan for an evidence bundle on the air-gapped host.

One reference time (``--at`` or now) is used for every check. The plan, in order:

1. Stream the bundle file with limits (member count, member and total size, compression
   ratio), refusing absolute paths, ``..``, links, devices and members out of order
   (``bundle/reader.py``).
2. The manifest signature, by a pinned exporter key; before anything else is extracted.
3. Every member listed in the manifest, present once, its size and sha256 as listed,
   while streaming.
4. Freshness and history: the bundle has not expired; its sequence is not lower than the
   last one imported from the same exporter (rollback), unless ``--allow-rollback``,
   which is recorded; every checkpoint is signed by its log, and consistent with the
   checkpoint of that log seen before (the bundle's consistency proofs are verified).
5. Per image: the stored index and platform manifests match their digests and the
   manifest's list of platforms.
6. Per attestation: the verification core (``verify/attestation.py``): a pinned
   publisher key valid at signing time, the statement's subject equal to that
   platform's digest (no mix-and-match between images or platforms), the predicate
   type, the transparency-log proof or its recorded absence.
7. Policy, per image and platform, over the attestations that verified.
8. The result: a :class:`~dhi_offline.verify.result.VerificationReport`.

Steps 1-4 refuse the whole bundle (an exception naming the step); steps 5-7 record each
failure in the report, so one bad attestation is reported next to the good ones, and
any failure makes the verdict FAIL. Every step name is a :class:`~dhi_offline.steps.Step`,
and a step of this plan has one name, numbered, whether it passes or refuses:
``1 bundle format``, ``1 bundle limits``, ``2 bundle signature``, ``3 bundle members``,
``4 expiry``, ``4 rollback``, ``4 checkpoint``, ``4 consistency``, ``5 image``,
``6 attestation``. The other refusals are ``TUF`` (step 4's TUF chain, which
``host/tufroot.py`` checks before this module runs) and ``evidence format`` (a malformed
evidence index); every name is in ``docs/verification.md``, "Step names".
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dhi_offline import __version__
from dhi_offline.bundle import layout
from dhi_offline.bundle.manifest import BundleManifest
from dhi_offline.bundle.reader import Limits, OpenedBundle, open_bundle
from dhi_offline.encoding import format_rfc3339, loads_json, require_dict
from dhi_offline.errors import (
    CheckpointError,
    ConsistencyProofError,
    DhiError,
    ExpiredBundleError,
    MalformedEvidenceError,
    RollbackError,
    TrustMaterialError,
    VerificationError,
)
from dhi_offline.evidence.intoto import Prepared, Statement
from dhi_offline.evidence.predicates import (
    SCOUT_VULNS_PREDICATE,
    TESTS_PREDICATE,
    VULNS_PREDICATE,
    is_vex,
    read_ctrf,
    sbom_package_count,
)
from dhi_offline.evidence.records import (
    AttestationRecord,
    DirectoryBlobStore,
    EvidenceIndex,
)
from dhi_offline.steps import Step
from dhi_offline.tlog.checkpoint import MAX_CHECKPOINT_LENGTH, parse_checkpoint, verify_checkpoint
from dhi_offline.tlog.consistency import ConsistencyRecord, verify_consistency_record
from dhi_offline.trust.changes import keyring_notes
from dhi_offline.trust.keyring import Keyring, KeyringEntry, keyring_from_json
from dhi_offline.trust.keys import PublicKey
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.attestation import AttestationResult, PublisherTrust, verify_attestation
from dhi_offline.verify.parallel import run_tasks
from dhi_offline.verify.policy import (
    Evidence,
    Policy,
    Violation,
    check_required_platforms,
    evaluate_platform,
)
from dhi_offline.verify.prefetch import StatementPrefetch, usable_cpus
from dhi_offline.verify.result import (
    AttestationView,
    Check,
    ImageView,
    PlatformView,
    Progress,
    TrustSummary,
    VerificationReport,
)

_LOG_ID = re.compile(r"[0-9a-f]{64}")
MEMORY_BUDGET = 64 * 1024 * 1024
"""Bytes of small members (<= :data:`SMALL_MEMBER` each) kept in memory instead of
written to the work directory: most members are small, and each file costs a creation
and a read. Small members past the budget are packed into one file (``open_bundle``'s
``pack``); larger ones are files of their own, which the prefetch workers read."""
SMALL_MEMBER = 1024 * 1024
"""The largest member kept in memory or packed."""
PARALLEL_MIN_ATTESTATIONS = 64
"""Fewer attestations are verified in this process: forking workers costs more."""

PLATFORM_WORKERS_ENV = "DHI_OFFLINE_PLATFORM_WORKERS"
"""Set to ``1`` to verify many small attestations in forked workers as well. Off by
default: on the 2-core reference machine it showed no wall-clock gain
(``docs/performance.md``, section 2), and a fork is not free of risk."""
BATCH_ATTESTATIONS = 40
"""Attestations per task handed to a worker: enough to amortise a task's pickling."""

_PlatformJob = tuple[str, str, str, list[AttestationRecord]]
"""Image reference, platform, platform digest, its attestation records."""


@dataclass
class _PlatformRun:
    """Steps 6-7 for one platform: its view and what it adds to the report."""

    view: PlatformView = field(init=False)
    checks: list[Check] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verified: dict[str, AttestationResult] = field(default_factory=dict)


def _batches(jobs: list[_PlatformJob]) -> list[list[_PlatformJob]]:
    """Consecutive platforms, about BATCH_ATTESTATIONS attestations a batch."""
    out: list[list[_PlatformJob]] = []
    current: list[_PlatformJob] = []
    count = 0
    for job in jobs:
        current.append(job)
        count += len(job[3])
        if count >= BATCH_ATTESTATIONS:
            out.append(current)
            current, count = [], 0
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class BundleTrust:
    """What the host trusts, pinned locally."""

    exporters: Mapping[str, tuple[str, PublicKey]]
    """Exporter key id -> (name, key)."""
    publishers: Keyring
    trusted_root: TrustedRoot
    trusted_root_source: str
    trust_bundle_keys: bool = False
    """UNSAFE: also trust the publisher keys and trusted root the bundle carries."""
    distrusted: tuple[str, ...] = ()
    """Shipped publisher keys this host distrusts (``trust distrust``), as "name id";
    every report says so."""


@dataclass(frozen=True)
class VerifyOptions:
    """Options of one verification run."""

    at: datetime
    policy: Policy | None = None
    allow_rollback: bool = False
    last_sequences: Mapping[str, int] = field(default_factory=dict)
    """Exporter key id -> highest sequence already imported (the archive's state)."""
    seen_checkpoints: Mapping[str, str] = field(default_factory=dict)
    limits: Limits | None = None
    keep_statements: bool | Callable[[str, AttestationResult], bool] = False
    """Keep verified statements whole in the result: all of them (True), or those the
    function accepts, given the image reference and the result (``attest get`` keeps
    the ones it may print). Otherwise only predicates policy reads are kept, so memory
    follows the largest statement, not the bundle."""
    workers: int | None = None
    """Processes that parse large statements ahead (:mod:`dhi_offline.verify.prefetch`)
    or, for many small attestations, that verify platforms beside this process (one
    fewer: :mod:`dhi_offline.verify.parallel`); None: one per usable CPU when there are
    at least two, 0: none."""
    now: datetime | None = None
    """The wall clock, when ``at`` was chosen by the user (``--at``): a reference time
    before the bundle was created or after now is an unsafe switch, reported as one."""
    rollback_note: str | None = None
    """Set when the rollback comparison does not apply (re-verifying a bundle that is
    itself in the archive): the step is recorded as skipped with this note."""
    progress: Progress | None = None
    """Filled in as the plan establishes facts, so a refusal can report them."""
    bundle_sha256: str | None = None
    """The file's SHA-256 when the caller already computed it (``import`` does, to find
    a bundle already archived): the file is not read a second time for it."""


@dataclass(frozen=True)
class VerifiedEvidenceBundle:
    """The report plus what the archive records after an import."""

    report: VerificationReport
    opened: OpenedBundle
    checkpoints: dict[str, str]
    """Log id hex -> newest checkpoint note in the bundle (verified)."""
    results: dict[str, AttestationResult] = field(default_factory=dict)
    """Record id -> the verified attestation (statements for ``attest get``)."""


def file_sha256(path: Path) -> str:
    """Streamed SHA-256 of a file."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_bundle_file(
    path: Path, *, trust: BundleTrust, options: VerifyOptions, workdir: Path
) -> VerifiedEvidenceBundle:
    """Run the plan (module docstring) on ``path``, extracting into ``workdir``.

    Raises:
        VerificationError: steps 1-4 refused the bundle (typed, naming the step).
        InputError: the file is unreadable.
    """
    workers = options.workers
    if workers is None:
        cpus = usable_cpus()
        workers = cpus if cpus > 1 else 0
    with contextlib.closing(StatementPrefetch(workdir, workers=workers)) as prefetch:
        return _verify_bundle_file(
            path,
            trust=trust,
            options=options,
            workdir=workdir,
            prefetch=prefetch,
            workers=workers,
        )


def _verify_bundle_file(
    path: Path,
    *,
    trust: BundleTrust,
    options: VerifyOptions,
    workdir: Path,
    prefetch: StatementPrefetch,
    workers: int,
) -> VerifiedEvidenceBundle:
    checks: list[Check] = []
    warnings: list[str] = []
    unsafe = unsafe_before_reading(trust, options)
    progress = options.progress if options.progress is not None else Progress()
    warnings.extend(
        f"shipped publisher key {d} is distrusted on this host" for d in trust.distrusted
    )

    # (1)-(3): bundle format and limits, manifest signature by a pinned exporter key, members.
    def exporter(key_id: str) -> PublicKey | None:
        found = trust.exporters.get(key_id)
        return found[1] if found else None

    def signed(manifest: BundleManifest, signer: PublicKey) -> None:
        progress.exporter_key_id = signer.key_id
        progress.exporter_key_name = trust.exporters[signer.key_id][0]
        progress.sequence = manifest.sequence
        progress.created = manifest.created
        progress.expires = manifest.expires
        progress.format_version = manifest.format_version

    opened = open_bundle(
        path,
        trusted_exporters=exporter,
        dest=workdir,
        limits=options.limits,
        memory_budget=MEMORY_BUDGET,
        memory_member_max=SMALL_MEMBER,
        pack=True,  # past the budget, small members go to one file, not a file each
        on_extracted=prefetch.member_extracted,
        on_signed=signed,
    )
    manifest = opened.manifest
    exporter_name = trust.exporters[opened.signer.key_id][0]
    checks += [
        Check(
            Step.BUNDLE_FORMAT,
            f"format version {manifest.format_version}: zstd frame, tar headers, manifest",
            "passed",
        ),
        Check(Step.BUNDLE_LIMITS, "sizes, counts and compression ratio within limits", "passed"),
        Check(Step.BUNDLE_SIGNATURE, f"signed by exporter {exporter_name}", "passed"),
        Check(
            Step.BUNDLE_MEMBERS,
            f"{len(manifest.members)} members, each listed once, size and SHA-256 as signed",
            "passed",
        ),
    ]
    unsafe.extend(unsafe_after_signature(manifest, options))

    # (4): expiry, rollback, checkpoint consistency.
    if manifest.expires < options.at:
        raise ExpiredBundleError(
            f"bundle expired at {format_rfc3339(manifest.expires)} "
            f"(reference time {format_rfc3339(options.at)})"
        )
    if manifest.created > options.at + timedelta(minutes=5):
        warnings.append(f"bundle was created in the future ({format_rfc3339(manifest.created)})")
    checks.append(Check(Step.EXPIRY, f"valid until {format_rfc3339(manifest.expires)}", "passed"))
    last = options.last_sequences.get(opened.signer.key_id)
    if options.rollback_note is not None:
        checks.append(Check(Step.ROLLBACK, options.rollback_note, "skipped"))
    elif last is not None and manifest.sequence < last:
        if not options.allow_rollback:
            raise RollbackError(
                f"sequence {manifest.sequence} is older than {last}, "
                f"already imported from exporter {exporter_name}"
            )
        unsafe.append(f"--allow-rollback: sequence {manifest.sequence} accepted after {last}")
        checks.append(
            Check(Step.ROLLBACK, "older bundle accepted with --allow-rollback", "skipped")
        )
    elif last is None:
        checks.append(
            Check(
                Step.ROLLBACK,
                f"sequence {manifest.sequence}: no earlier bundle from this exporter on record",
                "passed",
            )
        )
    else:
        checks.append(
            Check(Step.ROLLBACK, f"sequence {manifest.sequence} (last imported {last})", "passed")
        )
    if options.allow_rollback and not any(u.startswith("--allow-rollback") for u in unsafe):
        unsafe.append("--allow-rollback: in force (no older bundle needed it)")

    publishers = trust.publishers
    trusted_root = trust.trusted_root
    if trust.trust_bundle_keys:
        publishers, trusted_root = _bundle_keys(opened, publishers, trusted_root, warnings)
    checkpoints = _check_checkpoints(opened, trusted_root, options, checks, warnings)

    # (5)-(7): images, attestations, policy.
    blobs = DirectoryBlobStore(
        opened.root / "blobs",
        memory=opened.unfiled(layout.BLOBS_PREFIX),
        checked=True,  # open_bundle checked each against the signed manifest
    )
    if opened.has(layout.EVIDENCE):
        index = EvidenceIndex.from_json_bytes(opened.read_bytes(layout.EVIDENCE))
    else:
        index = EvidenceIndex(attestations=())
        warnings.append("the bundle carries no evidence index")
    completions: dict[tuple[str, int], bytes] = {}
    for c in index.completions:
        if opened.has(c.path):
            completions[(c.log_id, c.log_index)] = opened.read_bytes(c.path)
    ptrust = PublisherTrust(keyring=publishers, trusted_root=trusted_root)
    all_violations: list[Violation] = []
    notes: list[str] = []
    if opened.has(layout.KEYRING):  # keyring changes are noted for the operator, not applied
        notes += keyring_notes(
            opened.read_bytes(layout.KEYRING),
            trust.publishers,
            bundle=str(path),
            ignore=[d.rsplit(" ", 1)[-1] for d in trust.distrusted],
            warnings=warnings,
        )
    results: dict[str, AttestationResult] = {}
    images: list[ImageView] = []
    claimed: set[str] = set()
    by_subject: dict[tuple[str, str], list[AttestationRecord]] = {}
    for r in index.attestations:  # grouped once: a scan per platform is quadratic
        by_subject.setdefault((r.image, r.subject), []).append(r)
    # Step 5 for every image first (cheap), then steps 6-7 per platform, possibly in
    # forked workers (verify/parallel.py); outcomes are assembled in the plan's order.
    image_checks: list[list[Check]] = []
    image_platforms: list[list[tuple[str, str]]] = []
    for entry in manifest.images:
        image_checks.append([])
        image_platforms.append(
            _check_image(
                entry.reference,
                entry.digest,
                platforms=[(p.platform, p.digest) for p in entry.platforms],
                blobs=blobs,
                checks=image_checks[-1],
            )
        )
    jobs = [
        (entry.reference, plat, digest, by_subject.get((entry.digest, digest), []))
        for entry, platforms in zip(manifest.images, image_platforms, strict=True)
        for plat, digest in platforms
    ]

    def run_batch(batch: list[_PlatformJob]) -> Callable[[], list[_PlatformRun]]:
        def run() -> list[_PlatformRun]:
            out: list[_PlatformRun] = []
            for reference, plat, digest, records in batch:
                done = _PlatformRun()
                done.view = _platform(
                    reference,
                    plat,
                    digest,
                    records,
                    blobs=blobs,
                    trust=ptrust,
                    options=options,
                    completions=completions,
                    checks=done.checks,
                    violations=done.violations,
                    notes=done.notes,
                    verified=done.verified,
                    prepared=prefetch.lookup,
                )
                out.append(done)
            return out

        return run

    # Workers only for many small attestations: large statements are already being
    # parsed by the prefetch pool, and whole statements kept would cost their pickling.
    parallel = (
        os.environ.get(PLATFORM_WORKERS_ENV) == "1"
        and workers > 1
        and prefetch.submitted == 0
        and options.keep_statements is False
        and len(index.attestations) >= PARALLEL_MIN_ATTESTATIONS
    )
    runs = [
        r
        for batch in run_tasks(
            [run_batch(b) for b in _batches(jobs)], workers=workers - 1 if parallel else 0
        )
        for r in batch
    ]
    runs.reverse()  # popped in job order below
    for entry, platforms, own_checks in zip(
        manifest.images, image_platforms, image_checks, strict=True
    ):
        checks.extend(own_checks)
        views: list[PlatformView] = []
        for _plat, digest in platforms:
            claimed.update(r.id for r in by_subject.get((entry.digest, digest), []))
            done = runs.pop()
            checks.extend(done.checks)
            all_violations.extend(done.violations)
            notes.extend(done.notes)
            results.update(done.verified)
            views.append(done.view)
        if options.policy is not None:
            missing = check_required_platforms(
                options.policy, image=entry.reference, platforms=[p for p, _ in platforms]
            )
            all_violations.extend(missing)
        images.append(ImageView(entry.reference, entry.digest, entry.media_type, tuple(views)))
    for r in index.attestations:
        if r.id not in claimed:
            checks.append(
                Check(
                    Step.ATTESTATION,
                    f"{r.id}: not about any platform of the bundle's images",
                    "failed",
                    f"subject {r.subject[:19]}… of image {r.image[:19]}…",
                )
            )

    report = VerificationReport(
        bundle_path=str(path),
        bundle_sha256=options.bundle_sha256 or file_sha256(path),
        bundle_size=path.stat().st_size,
        format_version=manifest.format_version,
        exporter_tool_version=manifest.tool_version,
        created=manifest.created,
        expires=manifest.expires,
        sequence=manifest.sequence,
        reference_time=options.at,
        trust=TrustSummary(
            exporter_key_id=opened.signer.key_id,
            exporter_key_name=exporter_name,
            publisher_keys=tuple((e.name, e.key_id) for e in publishers.entries),
            trusted_root=trust.trusted_root_source
            + (" + bundle" if trust.trust_bundle_keys else ""),
            trust_bundle_keys=trust.trust_bundle_keys,
            allow_rollback=options.allow_rollback,
        ),
        images=tuple(images),
        checks=tuple(checks),
        policy_name=options.policy.name if options.policy else None,
        policy_sha256=options.policy.sha256 if options.policy else None,
        policy_rules=tuple(options.policy.rules()) if options.policy else (),
        violations=tuple(all_violations),
        warnings=tuple(dict.fromkeys(warnings)),
        bundle_flags=manifest.flags,
        unsafe=tuple(dict.fromkeys(unsafe)),
        tool_version=__version__,
        notes=tuple(dict.fromkeys(notes)),
    )
    return VerifiedEvidenceBundle(
        report=report, opened=opened, checkpoints=checkpoints, results=results
    )


def unsafe_before_reading(trust: BundleTrust, options: VerifyOptions) -> list[str]:
    """The unsafe switches known before the bundle is read (reported even on refusal)."""
    out: list[str] = []
    if trust.trust_bundle_keys:
        out.append(
            "--trust-bundle-keys: publisher keys and trusted root carried in the bundle "
            "were trusted"
        )
    if options.now is not None and options.at > options.now + timedelta(minutes=5):
        out.append(
            f"--at {format_rfc3339(options.at)} is later than now ({format_rfc3339(options.now)})"
        )
    return out


def unsafe_after_signature(manifest: BundleManifest, options: VerifyOptions) -> list[str]:
    """Unsafe conditions the signed manifest reveals: exporter flags, a backdated ``--at``."""
    out = [f"{flag}: set by the exporter (recorded in the bundle)" for flag in manifest.flags]
    if options.now is not None and options.at < manifest.created:
        out.append(
            f"--at {format_rfc3339(options.at)} is earlier than the bundle's creation "
            f"({format_rfc3339(manifest.created)})"
        )
    return out


def _bundle_keys(
    opened: OpenedBundle, publishers: Keyring, root: TrustedRoot, warnings: list[str]
) -> tuple[Keyring, TrustedRoot]:
    """With --trust-bundle-keys: add the bundle's keyring and use its trusted root."""
    if opened.has(layout.KEYRING):
        carried = keyring_from_json(opened.read_bytes(layout.KEYRING))
        for e in carried.entries:
            if publishers.by_id(e.key_id) is None:
                publishers = publishers.with_entry(
                    KeyringEntry(f"bundle:{e.name}", e.key, e.status, e.not_before, e.not_after)
                )
    if opened.has(layout.TRUSTED_ROOT):
        try:
            root = TrustedRoot.from_bytes(opened.read_bytes(layout.TRUSTED_ROOT))
        except TrustMaterialError as e:
            warnings.append(f"the bundle's trusted root is unusable: {e.message}")
    return publishers, root


@contextlib.contextmanager
def _refusing_as(step: Step) -> Iterator[None]:
    """Refusals raised inside are refusals of ``step`` of this plan.

    The checkpoint and consistency code is shared with the single-bundle plan and the
    export side, so it raises under its own step names (``checkpoint``, ``consistency
    proof``, ``evidence format``); here each is the step that checks and reports it.
    """
    try:
        yield
    except VerificationError as e:
        if e.step == step:
            raise
        raise type(e)(e.message, step=step) from e


def _check_checkpoints(
    opened: OpenedBundle,
    root: TrustedRoot,
    options: VerifyOptions,
    checks: list[Check],
    warnings: list[str],
) -> dict[str, str]:
    """Step 4: checkpoints signed (``4 checkpoint``), and consistent with those seen
    before (``4 consistency``); a refusal names the one of the two that failed."""
    found: dict[str, str] = {}
    links: dict[str, list[ConsistencyRecord]] = {}
    for member in opened.manifest.members:
        parts = member.path.split("/")
        if (
            parts[0] != "tlog"
            or len(parts) < 3
            or parts[2] not in ("checkpoint.txt", "consistency")
        ):
            continue
        log_id_hex = parts[1]
        step = Step.BUNDLE_CHECKPOINT if parts[2] == "checkpoint.txt" else Step.BUNDLE_CONSISTENCY
        if not _LOG_ID.fullmatch(log_id_hex):
            raise CheckpointError(
                f"{member.path}: {log_id_hex!r} is not a log id (64 hex digits)", step=step
            )
        # Size is checked from the signed manifest before anything is read.
        limit = MAX_CHECKPOINT_LENGTH if parts[2] == "checkpoint.txt" else 4 * MAX_CHECKPOINT_LENGTH
        if member.size > limit:
            raise CheckpointError(
                f"{member.path} is {member.size} bytes, more than {limit}", step=step
            )
        data = opened.read_bytes(member.path)
        if parts[2] == "checkpoint.txt":
            try:
                found[log_id_hex] = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CheckpointError(f"{member.path} is not valid UTF-8", step=step) from e
        else:
            with _refusing_as(step):
                record = ConsistencyRecord.from_json_bytes(data)
            links.setdefault(log_id_hex, []).append(record)
    verified: dict[str, str] = {}
    for log_id_hex, note in found.items():
        logs = [t for t in root.tlog_by_id(bytes.fromhex(log_id_hex)) if t.key is not None]
        if not logs:
            raise CheckpointError(
                f"checkpoint of log {log_id_hex[:16]}…, which the trusted root does not know",
                step=Step.BUNDLE_CHECKPOINT,
            )
        log = logs[0]
        with _refusing_as(Step.BUNDLE_CHECKPOINT):
            new = parse_checkpoint(note)
            verify_checkpoint(new, log)
        with _refusing_as(Step.BUNDLE_CONSISTENCY):
            for link in links.get(log_id_hex, []):
                verify_consistency_record(link, log)
            seen_note = options.seen_checkpoints.get(log_id_hex)
            seen = parse_checkpoint(seen_note) if seen_note is not None else None
        if seen is not None:
            if seen.tree_size == new.tree_size and seen.root_hash != new.root_hash:
                raise ConsistencyProofError(
                    f"log {log.base_url} shows a different tree of size {new.tree_size} "
                    "than the one imported before: the log forked",
                    step=Step.BUNDLE_CONSISTENCY,
                )
            if seen.tree_size < new.tree_size:
                linked = any(
                    parse_checkpoint(link.old_checkpoint).root_hash == seen.root_hash
                    and parse_checkpoint(link.old_checkpoint).tree_size == seen.tree_size
                    and parse_checkpoint(link.new_checkpoint).root_hash == new.root_hash
                    for link in links.get(log_id_hex, [])
                )
                if linked:
                    checks.append(
                        Check(
                            Step.BUNDLE_CONSISTENCY,
                            f"{log.base_url}: {seen.tree_size} -> {new.tree_size}",
                            "passed",
                        )
                    )
                else:
                    warnings.append(
                        f"{log.base_url}: no proof links the checkpoint seen before (size "
                        f"{seen.tree_size}) to this one ({new.tree_size}); consistency not checked"
                    )
        checks.append(
            Check(Step.BUNDLE_CHECKPOINT, f"{log.base_url} tree size {new.tree_size}", "passed")
        )
        if seen_note is None or parse_checkpoint(seen_note).tree_size <= new.tree_size:
            verified[log_id_hex] = note
    return verified


def _check_image(
    reference: str,
    digest: str,
    *,
    platforms: list[tuple[str, str]],
    blobs: DirectoryBlobStore,
    checks: list[Check],
) -> list[tuple[str, str]]:
    """Step 5: the stored index/manifests hash to their digests and list the platforms."""
    try:
        doc = require_dict(loads_json(blobs.get(digest), what="image index"), what="image index")
        if platforms:
            listed: dict[str, str] = {}
            for desc in doc.get("manifests") or []:
                if isinstance(desc, dict) and isinstance(desc.get("platform"), dict):
                    p = desc["platform"]
                    name = "/".join(
                        str(x) for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x
                    )
                    listed[str(desc.get("digest"))] = name
            for plat, pdigest in platforms:
                if listed.get(pdigest) != plat:
                    raise MalformedEvidenceError(
                        f"the index does not list {pdigest[:19]}… as {plat}"
                    )
                blobs.get(pdigest)
        else:
            platforms = [("", digest)]
    except DhiError as e:
        checks.append(
            Check(
                Step.IMAGE, f"{reference} index and manifests", "failed", e.message, image=reference
            )
        )
        return []
    checks.append(
        Check(
            Step.IMAGE,
            f"{reference}: {len(platforms)} platform manifest(s) match the stored index",
            "passed",
            image=reference,
        )
    )
    return platforms


def _platform(
    reference: str,
    platform: str,
    digest: str,
    records: list[AttestationRecord],
    *,
    blobs: DirectoryBlobStore,
    trust: PublisherTrust,
    options: VerifyOptions,
    completions: dict[tuple[str, int], bytes],
    checks: list[Check],
    violations: list[Violation],
    verified: dict[str, AttestationResult],
    prepared: Prepared | None = None,
    notes: list[str] | None = None,
) -> PlatformView:
    """Steps 6 and 7 for one platform."""
    views: list[AttestationView] = []
    results: list[AttestationResult] = []
    label = platform or "(single)"
    for record in records:
        try:
            result = verify_attestation(
                record,
                blobs=blobs,
                trust=trust,
                at=options.at,
                completions=completions,
                prepared=prepared,
            )
            if _policy_reads(result.predicate_type):
                # Build the predicate now, strictly: a predicate that fails the strict
                # parser fails its attestation, not the policy run. Others are built only
                # if read (``attest get`` prints one: 20 SBOMs need not all be built).
                _ = result.statement.predicate
        except VerificationError as e:
            views.append(
                AttestationView(
                    record.id,
                    record.layout,
                    record.predicate_type or "unknown",
                    False,
                    e.one_line(),
                )
            )
            checks.append(
                Check(
                    Step.ATTESTATION,
                    f"{record.predicate_type or record.id}",
                    "failed",
                    e.one_line(),
                    reference,
                    label,
                )
            )
            continue
        light = result
        keep = options.keep_statements
        if not (keep(reference, result) if callable(keep) else keep):
            light = dataclasses.replace(result, statement=result.statement.without_content())
        verified[record.id] = light
        results.append(result if _policy_reads(result.predicate_type) else light)
        tests = None
        if result.predicate_type == TESTS_PREDICATE:
            try:
                s = read_ctrf(result.statement.predicate)
                tests = {
                    "tests": s.tests,
                    "passed": s.passed,
                    "failed": s.failed,
                    "skipped": s.skipped,
                }
            except DhiError:
                tests = None
        views.append(
            AttestationView(
                id=record.id,
                layout=record.layout,
                predicate_type=result.predicate_type,
                verified=True,
                signer=result.signer,
                key_id=result.key_id,
                tlog_status=result.tlog_status,
                log_indexes=tuple(e.log_index for e in result.log_entries),
                signing_times=result.signing_times,
                tests=tests,
                package_count=_package_count(result.statement),
            )
        )
        checks.append(
            Check(
                Step.ATTESTATION,
                result.predicate_type,
                "passed",
                f"signed by {result.signer}; log: {result.tlog_status}",
                reference,
                label,
            )
        )
    outcome = None
    if options.policy is not None:
        outcome = evaluate_platform(
            options.policy,
            image=reference,
            platform=label,
            subject=digest,
            evidence=[
                Evidence(r.predicate_type, r.statement.predicate, r.tlog_status, r.signing_times)
                for r in results
            ],
            at=options.at,
        )
        violations.extend(outcome.violations)
        if notes is not None:
            notes.extend(outcome.notes)
    vulns = outcome.vulnerabilities if outcome else None
    return PlatformView(
        platform=label,
        digest=digest,
        attestations=tuple(views),
        tests=outcome.tests if outcome else None,
        vulnerabilities_before_vex=vulns.before if vulns else None,
        vulnerabilities=vulns.after if vulns else None,
        suppressed_by_vex=vulns.suppressed if vulns else (),
        violations=tuple(outcome.violations) if outcome else (),
        warnings=tuple(dict.fromkeys(outcome.warnings)) if outcome else (),
    )


def _package_count(statement: Statement) -> int | None:
    """SBOM packages: counted by the skim when the predicate was not built."""
    if not statement.predicate_built and statement.summary is not None:
        return statement.summary.get("packages")
    return sbom_package_count(statement.predicate_type, statement.predicate)


def _policy_reads(predicate_type: str) -> bool:
    """Predicates whose content policy looks into (others count by type only)."""
    return predicate_type in (TESTS_PREDICATE, VULNS_PREDICATE, SCOUT_VULNS_PREDICATE) or is_vex(
        predicate_type
    )


def receipt_for(report: VerificationReport) -> dict[str, object]:
    """The receipt the archive keeps for an import."""
    return {
        "bundleSha256": report.bundle_sha256,
        "bundleSize": report.bundle_size,
        "verifiedAt": format_rfc3339(report.reference_time),
        "toolVersion": report.tool_version,
        "verdict": report.verdict,
        "exporterKeyId": report.trust.exporter_key_id,
        "sequence": report.sequence,
        "publisherKeys": [list(k) for k in report.trust.publisher_keys],
        "trustedRoot": report.trust.trusted_root,
        "policy": {"name": report.policy_name, "sha256": report.policy_sha256},
        "unsafe": list(report.unsafe),
        "allowRollback": report.trust.allow_rollback,
        "images": [
            {
                "reference": i.reference,
                "digest": i.digest,
                "platforms": [
                    {
                        "platform": p.platform,
                        "digest": p.digest,
                        "attestations": sum(1 for a in p.attestations if a.verified),
                    }
                    for p in i.platforms
                ],
            }
            for i in report.images
        ],
        "violations": [v.one_line() for v in report.violations],
        "failedChecks": [
            f"{c.step}: {c.name}: {c.message}" for c in report.checks if c.status == "failed"
        ],
    }
