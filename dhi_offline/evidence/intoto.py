"""in-toto attestation Statements, v0.1 and v1, and subject matching by digest.

The statement's top level (``_type``, ``subject``, ``predicateType``, and that no key
appears twice) is always parsed strictly. The predicate is built lazily, wherever it
sits among the members: its text is only checked for well-formed JSON
(:mod:`dhi_offline.evidence.skim`) while the statement is parsed, and the strict parser
builds it the first time :attr:`Statement.predicate` is read. A multi-megabyte SBOM that
nothing reads is then never built. When the predicate is not the last member (sorted
keys, canonical JSON), the members after it are found from the end of the text and
parsed strictly; the predicate's text must then be exactly one JSON object.
"""

from __future__ import annotations

import codecs
import hmac
import json.decoder
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from dhi_offline.encoding import (
    MAX_JSON_DEPTH,
    loads_json,
    require_dict,
    require_str,
    strict_decoder,
    within_depth,
)
from dhi_offline.errors import MalformedEvidenceError, SubjectMismatchError

STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"}
)
_HEX = frozenset("0123456789abcdef")
_WS = re.compile(r"[ \t\n\r]*")
_UNPARSED: Final[Any] = object()
# The C string scanner the json module uses; typeshed does not declare it.
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_LAZY_MIN = 64 * 1024
"""Statements smaller than this are parsed whole: the fast path would not pay off."""


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
    raw: bytes
    _predicate: Any = field(default=_UNPARSED, repr=False, compare=False)
    summary: dict[str, int] | None = field(default=None, repr=False, compare=False)
    """What :mod:`~dhi_offline.evidence.skim` counted of a predicate it only checked
    (``{"packages": N}`` for an SBOM), else None."""

    @property
    def predicate(self) -> Any:
        """The predicate, parsed strictly from ``raw`` on first use.

        Raises:
            MalformedEvidenceError: ``raw`` fails the strict parser (a duplicate key or
                too deep nesting inside a predicate that was only skimmed).
        """
        if self._predicate is _UNPARSED:
            doc = require_dict(loads_json(self.raw, what="in-toto statement"), what="statement")
            object.__setattr__(self, "_predicate", doc.get("predicate"))
        return self._predicate

    def document(self) -> dict[str, Any]:
        """The whole statement, parsed strictly from ``raw`` (what ``attest get`` prints).

        The same rule as :attr:`predicate`: whoever reads the content gets the strict
        parser, so a duplicate key inside a predicate nothing read is refused here too.

        Raises:
            MalformedEvidenceError: ``raw`` fails the strict parser.
        """
        doc = require_dict(loads_json(self.raw, what="in-toto statement"), what="statement")
        if self._predicate is _UNPARSED:
            object.__setattr__(self, "_predicate", doc.get("predicate"))
        return doc

    @property
    def predicate_built(self) -> bool:
        """Whether the predicate has been built (else only ``summary`` is known)."""
        return self._predicate is not _UNPARSED

    def without_content(self) -> Statement:
        """A copy without the raw bytes and predicate (for results kept after use)."""
        return Statement(self.type, self.subjects, self.predicate_type, b"", None)

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


TopLevel = tuple[dict[str, Any], dict[str, int]]
"""What the fast path keeps of a statement: its top-level members except the predicate,
and the skim's summary of the predicate."""

Prepared = Callable[[bytes, str | None], TopLevel | None]
"""A lookup of statements whose top level was parsed ahead (in another process), keyed
by their exact bytes; the second argument is their SHA-256 (hex) when the caller has
already checked it. See :func:`parse_top_level`."""


def parse_top_level(payload: bytes) -> TopLevel | None:
    """The fast path of :func:`parse_statement` alone (None: it does not apply).

    Pure and picklable in and out, so it can run in a worker process; its result stands
    for ``parse_statement``'s own fast path on the same bytes.
    """
    if len(payload) < _LAZY_MIN:
        return None
    # Imported for a large statement only: pydantic-core is a tenth of a small
    # verification's start-up.
    from dhi_offline.evidence.skim import SkimError  # noqa: PLC0415

    try:
        return _parse_top_level(payload)
    except (_NotFast, SkimError):
        return None


def parse_statement(
    payload: bytes,
    *,
    what: str = "in-toto statement",
    prepared: Prepared | None = None,
    sha256: str | None = None,
) -> Statement:
    """Parse an in-toto Statement v0.1 or v1 (the predicate lazily; see the module).

    Args:
        payload: the statement's bytes.
        what: how errors name it.
        prepared: where the fast path may already have run on these bytes.
        sha256: the hex SHA-256 of ``payload``, if the caller has verified it (saves
            hashing it again for ``prepared``).

    Raises:
        MalformedEvidenceError: not JSON, unknown ``_type``, no subject, or a digest
            that is not lowercase hex of the right length.
    """
    fast = None
    if prepared is not None and len(payload) >= _LAZY_MIN:
        fast = prepared(payload, sha256)
    if fast is None:
        fast = parse_top_level(payload)
    top: dict[str, Any] | None = None
    summary: dict[str, int] | None = None
    if fast is not None:
        top, summary = dict(fast[0]), dict(fast[1])
    predicate: Any = _UNPARSED
    if top is None:
        top = require_dict(loads_json(payload, what=what), what=what)
        predicate = top.get("predicate")
    stype = require_str(top.get("_type"), what=f"{what}._type")
    if stype not in STATEMENT_TYPES:
        raise MalformedEvidenceError(f"{what}: unknown statement type {stype!r}")
    ptype = require_str(top.get("predicateType"), what=f"{what}.predicateType")
    subj_obj = top.get("subject")
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
        raw=payload,
        _predicate=predicate,
        summary=summary,
    )


def _end_without_whitespace(text: str | bytes) -> int:
    """Length of ``text`` without trailing JSON whitespace (rstrip would copy it all)."""
    blanks: str | bytes = " \t\n\r" if isinstance(text, str) else b" \t\n\r"
    end = len(text)
    while end and text[end - 1 : end] in blanks:  # type: ignore[operator]
        end -= 1
    return end


class _NotFast(Exception):
    """The fast path does not apply; the strict parser decides."""


_HEAD = 64 * 1024
"""The top level before the predicate is read from a decoded head of this many bytes
(the whole statement only when it needs more): decoding 16 MB costs ~10 ms."""


def _parse_top_level(payload: bytes) -> TopLevel:
    """The top-level members except a last ``predicate``, parsed strictly; its summary.

    The predicate's text (from after its key to before the final ``}``) must be one
    well-formed JSON object: then nothing can follow it, so no key can hide after it.
    Anything unusual raises _NotFast and the whole statement goes to the strict parser.
    """
    stop = _end_without_whitespace(payload) - 1
    if payload[stop : stop + 1] != b"}":
        raise _NotFast
    head = payload[:_HEAD]
    try:
        # The head may end inside a character: decode incrementally, keep what is whole.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) == len(payload))
        return _scan_top_level(payload, text, stop)
    except (_NotFast, UnicodeDecodeError):
        if len(head) == len(payload):
            raise _NotFast from None
    # The head was not enough (or cut something): the whole text decides.
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _NotFast from e
    return _scan_top_level(payload, text, stop)


_REQUIRED = frozenset({"_type", "subject", "predicateType"})
_TAIL = 256 * 1024
"""Members after the predicate are looked for in this many bytes before the end."""
_CLOSE_THEN_KEY = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\"")


def _members_after(
    payload: bytes, start: int, stop: int, top: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Where a predicate that is not the last member ends, and the members after it.

    Candidates are the ``}`` followed by ``, "`` in the last :data:`_TAIL` bytes, from
    the end backwards; the first whose remainder parses strictly as members up to the
    final ``}`` is taken. The caller then requires ``payload[start:end]`` to be exactly
    one JSON object, and a JSON object has one end: a wrong candidate can only make
    that check fail (the strict parser then decides), never change the meaning.
    """
    region_start = max(start, stop - _TAIL)
    region = payload[region_start:stop]
    for match in reversed(list(_CLOSE_THEN_KEY.finditer(region))):
        end = region_start + match.start() + 1
        try:
            rest = _parse_members(payload[end : stop + 1].decode("utf-8"))
        except UnicodeDecodeError:
            continue
        if rest is None:
            continue
        if "predicate" in rest or rest.keys() & top.keys():
            raise _NotFast  # a duplicate: the strict parser names it
        return end, rest
    raise _NotFast


def _parse_members(text: str) -> dict[str, Any] | None:
    """``, "k": v, ... }`` parsed strictly to its last character, or None."""
    decoder = strict_decoder()
    members: dict[str, Any] = {}
    idx = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text[idx : idx + 1] != ",":
        return None
    idx += 1
    try:
        while True:
            idx = _WS.match(text, idx).end()  # type: ignore[union-attr]
            if text[idx : idx + 1] != '"':
                return None
            key, idx = _scanstring(text, idx + 1, True)
            idx = _WS.match(text, idx).end()  # type: ignore[union-attr]
            if text[idx : idx + 1] != ":" or key in members:
                return None
            idx = _WS.match(text, idx + 1).end()  # type: ignore[union-attr]
            value, idx = decoder.raw_decode(text, idx)
            if not within_depth(value, MAX_JSON_DEPTH - 1):
                return None
            members[key] = value
            idx = _WS.match(text, idx).end()  # type: ignore[union-attr]
            sep = text[idx : idx + 1]
            if sep == "}":
                return members if idx + 1 == len(text) else None
            if sep != ",":
                return None
            idx += 1
    except (ValueError, RecursionError):
        return None


def _scan_top_level(payload: bytes, text: str, stop: int) -> TopLevel:
    """:func:`_parse_top_level` over ``text``, the decoded ``payload`` or a head of it."""
    decoder = strict_decoder()
    idx = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text[idx : idx + 1] != "{":
        raise _NotFast
    idx += 1
    top: dict[str, Any] = {}
    while True:
        idx = _WS.match(text, idx).end()  # type: ignore[union-attr]
        if text[idx : idx + 1] != '"':
            raise _NotFast
        try:
            key, idx = _scanstring(text, idx + 1, True)
            idx = _WS.match(text, idx).end()  # type: ignore[union-attr]
            if text[idx : idx + 1] != ":":
                raise _NotFast
            idx = _WS.match(text, idx + 1).end()  # type: ignore[union-attr]
            if key in top:
                raise _NotFast  # a duplicate: the strict parser names it
            if key == "predicate":
                from dhi_offline.evidence.skim import skim_object  # noqa: PLC0415 - see above

                before = text[:idx]
                start = idx if before.isascii() else len(before.encode("utf-8"))
                if top.keys() >= _REQUIRED:
                    # Go's order: the predicate last, its bytes up to before the final "}".
                    ptype = top["predicateType"]
                    if not isinstance(ptype, str):
                        raise _NotFast
                    return top, skim_object(payload[start:stop], ptype)
                # Members follow the predicate (sorted keys, predicate first...).
                end, rest = _members_after(payload, start, stop, top)
                top.update(rest)
                ptype = top.get("predicateType")
                if not isinstance(ptype, str):
                    raise _NotFast
                return top, skim_object(payload[start:end], ptype)
            value, idx = decoder.raw_decode(text, idx)
        except (ValueError, RecursionError) as e:
            raise _NotFast from e
        if not within_depth(value, MAX_JSON_DEPTH - 1):
            raise _NotFast
        top[key] = value
        idx = _WS.match(text, idx).end()  # type: ignore[union-attr]
        sep = text[idx : idx + 1]
        if sep != ",":
            # The statement ended without a predicate after the others: nothing to skip.
            raise _NotFast
        idx += 1
