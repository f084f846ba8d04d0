"""in-toto attestation Statements, v0.1 and v1, and subject matching by digest."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from dhi_offline.errors import MalformedEvidenceError, SubjectMismatchError
from dhi_offline.evidence.encoding import loads_json, require_dict, require_str

STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"}
)
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Subject:
    """One subject: a name (informative only) and its digests by algorithm."""

    name: str
    digest: dict[str, str]


@dataclass(frozen=True)
class Statement:
    """A parsed in-toto Statement; ``raw`` is the exact payload it was read from."""

    type: str
    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: Any
    raw: bytes

    def subject_digests(self, algorithm: str = "sha256") -> list[str]:
        """All lowercase hex digests of ``algorithm`` among the subjects."""
        return [s.digest[algorithm] for s in self.subjects if algorithm in s.digest]

    def require_subject(self, digest: str) -> Subject:
        """The subject whose digest equals ``digest`` (``sha256:<hex>`` or bare hex).

        Subjects are matched by digest only; names are not trusted (images are renamed
        when mirrored).

        Raises:
            SubjectMismatchError: no subject has that digest.
        """
        algorithm, _, hexpart = digest.partition(":")
        if not hexpart:
            algorithm, hexpart = "sha256", digest
        want = hexpart.lower()
        for s in self.subjects:
            got = s.digest.get(algorithm)
            if got is not None and hmac.compare_digest(got, want):
                return s
        have = (
            ", ".join(f"{algorithm}:{d[:16]}…" for d in self.subject_digests(algorithm)) or "none"
        )
        raise SubjectMismatchError(
            f"statement ({self.predicate_type}) is not about {algorithm}:{want[:16]}…; "
            f"its subjects are {have}"
        )


def parse_statement(payload: bytes, *, what: str = "in-toto statement") -> Statement:
    """Parse an in-toto Statement v0.1 or v1.

    Raises:
        MalformedEvidenceError: not JSON, unknown ``_type``, no subject, or a digest
            that is not lowercase hex of the right length.
    """
    doc = require_dict(loads_json(payload, what=what), what=what)
    stype = require_str(doc.get("_type"), what=f"{what}._type")
    if stype not in STATEMENT_TYPES:
        raise MalformedEvidenceError(f"{what}: unknown statement type {stype!r}")
    ptype = require_str(doc.get("predicateType"), what=f"{what}.predicateType")
    subj_obj = doc.get("subject")
    if not isinstance(subj_obj, list) or not subj_obj:
        raise MalformedEvidenceError(f"{what}: no subject")
    subjects: list[Subject] = []
    for i, s in enumerate(subj_obj):
        sd = require_dict(s, what=f"{what}.subject[{i}]")
        name = sd.get("name", "")
        if not isinstance(name, str):
            raise MalformedEvidenceError(f"{what}.subject[{i}].name: expected a string")
        dg = require_dict(sd.get("digest"), what=f"{what}.subject[{i}].digest")
        digests: dict[str, str] = {}
        for alg, value in dg.items():
            v = require_str(value, what=f"{what}.subject[{i}].digest.{alg}").lower()
            if alg == "sha256" and (len(v) != 64 or not set(v) <= _HEX):
                raise MalformedEvidenceError(f"{what}.subject[{i}]: sha256 must be 64 hex digits")
            digests[alg] = v
        subjects.append(Subject(name=name, digest=digests))
    return Statement(
        type=stype,
        subjects=tuple(subjects),
        predicate_type=ptype,
        predicate=doc.get("predicate"),
        raw=payload,
    )
