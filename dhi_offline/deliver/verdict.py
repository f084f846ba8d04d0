"""From a verification report to the site's verdict per image digest, and where each
image lives in the internal registry.

Pure: the report, the evidence index and the name mapping in; verdicts out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dhi_offline.deliver.site import InputAttestation, Verdict
from dhi_offline.errors import DhiError, UsageError
from dhi_offline.evidence.records import EvidenceIndex
from dhi_offline.oci.reference import (
    Reference,
    parse_reference,
    validate_registry,
    validate_repository,
)
from dhi_offline.verify.result import ImageView, VerificationReport


@dataclass(frozen=True)
class Destination:
    """``--to REGISTRY[/PREFIX]`` and the ``--map SRC=DST`` rules."""

    to: str
    maps: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, to: str, maps: Sequence[str]) -> Destination:
        """From the option values.

        Raises:
            UsageError: a map without ``=``, or a ``--to`` that is not ``REGISTRY[/PREFIX]``.
        """
        to = to.strip().rstrip("/")
        registry, _, prefix = to.partition("/")
        try:
            validate_registry(registry)
            if prefix:
                validate_repository(prefix)
        except DhiError as e:
            raise UsageError(f"--to {to!r} must be REGISTRY[/PREFIX]: {e.message}") from e
        rules: list[tuple[str, str]] = []
        for text in maps:
            src, eq, dst = text.partition("=")
            if not eq or not src or not dst:
                raise UsageError(f"--map {text!r} must be SRC=DST (name prefixes)")
            rules.append((src, dst))
        return cls(to, tuple(rules))

    @property
    def registry(self) -> str:
        """The registry host[:port] of ``--to``."""
        return self.to.split("/", 1)[0]

    def name_for(self, reference: str) -> Reference:
        """Where the exported image ``reference`` lives in the internal registry.

        The longest ``--map`` source that prefixes the name wins; otherwise the
        repository path (without the source registry) goes under ``--to``.

        Raises:
            UsageError: the reference has no registry name and no map applies.
        """
        parsed = parse_reference(reference)
        if not isinstance(parsed, Reference):
            raise UsageError(
                f"image {reference!r} has no registry name: export it with --name, "
                "or push with --map"
            )
        name = parsed.name
        best = max(
            (rule for rule in self.maps if name == rule[0].rstrip("/") or name.startswith(rule[0])),
            key=lambda rule: len(rule[0]),
            default=None,
        )
        if best is not None:
            src, dst = best
            mapped = dst.rstrip("/") if name == src.rstrip("/") else dst + name[len(src) :]
        else:
            mapped = f"{self.to}/{parsed.repository}"
        suffix = f":{parsed.tag}" if parsed.tag else ""
        target = parse_reference(mapped + suffix)
        if not isinstance(target, Reference):
            raise UsageError(f"--map gives {mapped!r} for {reference}, not a registry name")
        return target


@dataclass(frozen=True)
class ImageTarget:
    """One exported image and its name in the internal registry."""

    view: ImageView
    target: Reference

    @property
    def repository(self) -> str:
        """``REGISTRY/REPO`` in the internal registry."""
        return f"{self.target.registry}/{self.target.repository}"


def verdicts(
    report: VerificationReport, index: EvidenceIndex, targets: Sequence[ImageTarget]
) -> list[Verdict]:
    """The verdict for every platform digest and every index digest of the report.

    A platform passes when no check failed for it (or for its image, or the whole
    bundle) and the policy has no violation for it. An index passes when all its
    platforms pass. Inputs are the verified attestations of the platform.
    """
    records = {r.id: r for r in index.attestations}
    unsafe = tuple(report.unsafe) + tuple(report.bundle_flags)
    out: list[Verdict] = []
    for t in targets:
        img = t.view
        image_reasons = [
            f"{c.step}: {c.message or c.name}"
            for c in report.checks
            if c.status == "failed"
            and (c.image is None or c.image == img.reference)
            and c.platform is None
        ]
        image_reasons += [
            v.one_line()
            for v in report.violations
            if v.image == img.reference and v.platform not in {p.platform for p in img.platforms}
        ]
        platform_verdicts: list[Verdict] = []
        for plat in img.platforms:
            reasons = list(image_reasons)
            reasons += [
                f"{c.step}: {c.message or c.name}"
                for c in report.checks
                if c.status == "failed" and c.image == img.reference and c.platform == plat.platform
            ]
            reasons += [v.one_line() for v in plat.violations]
            inputs = tuple(
                InputAttestation(
                    predicate_type=a.predicate_type,
                    uri=f"oci://{t.repository}@{records[a.id].manifest}",
                    manifest_digest=records[a.id].manifest,
                )
                for a in plat.attestations
                if a.verified and a.id in records
            )
            verdict = Verdict(
                image=img.reference,
                repository=t.repository,
                digest=plat.digest,
                platform=plat.platform or None,
                passed=not reasons,
                reasons=tuple(dict.fromkeys(reasons)),
                inputs=inputs,
                unsafe=unsafe,
            )
            platform_verdicts.append(verdict)
        out.extend(platform_verdicts)
        if img.digest not in {p.digest for p in img.platforms}:
            failed = [v for v in platform_verdicts if not v.passed]
            reasons = list(image_reasons) + [
                f"platform {v.platform} failed" for v in failed if v.platform
            ]
            out.append(
                Verdict(
                    image=img.reference,
                    repository=t.repository,
                    digest=img.digest,
                    platform=None,
                    passed=not reasons and bool(platform_verdicts),
                    reasons=tuple(dict.fromkeys(reasons))
                    or (() if platform_verdicts else ("no platform verified",)),
                    inputs=tuple(i for v in platform_verdicts for i in v.inputs),
                    unsafe=unsafe,
                )
            )
    return out
