"""Check that a JSON object is well formed without building it (for predicates nobody reads).

An SBOM predicate can be tens of megabytes. The verifier needs its statement's
``_type``, ``subject`` and ``predicateType`` and, for the report, the number of
packages; policy never reads an SBOM's content. Building every SBOM into Python objects
cost ~20 ms per MB, far more than decompressing and hashing it. :func:`skim_object`
runs msgspec's JSON decoder (C, about 1.4 GB/s here) against an outline that keeps
only the nested ``components`` lists of a CycloneDX document, the ``packages`` list of
an SPDX one, nothing of anything else: every other member is skipped, which still
checks its syntax but builds nothing. It returns only the count.

What it checks: JSON syntax (strings, escapes, numbers, literals, no trailing data, no
``NaN``/``Infinity``), nesting up to msgspec's limit, and UTF-8 (checked here with
Python's strict decoder, since msgspec does not check the bytes of a string it skips).
What it does not: duplicate keys and the 64-level nesting limit of
:func:`dhi_offline.encoding.loads_json`. Anything it refuses, including valid JSON it
does not expect (a lone surrogate escape, an outlined field of another shape), goes to
the strict parser, which decides; the strict parser also runs whenever the predicate
is read.
"""

from __future__ import annotations

import msgspec

from dhi_offline.evidence.predicates import CYCLONEDX_PREFIX, SPDX_PREFIX


class SkimError(ValueError):
    """The text is not exactly one well-formed JSON object (of the expected outline)."""


class _Nothing(msgspec.Struct):
    """An object of which nothing is kept (every member skipped)."""


class _Component(msgspec.Struct):
    """A CycloneDX component: only its own nested components are kept."""

    components: list[_Component] = []


class _CycloneDX(msgspec.Struct):
    components: list[_Component] = []


class _SPDX(msgspec.Struct):
    packages: list[_Nothing] = []


_CYCLONEDX = msgspec.json.Decoder(_CycloneDX)
_SPDX_DOC = msgspec.json.Decoder(_SPDX)
_OTHER = msgspec.json.Decoder(_Nothing)


def _count(components: list[_Component]) -> int:
    # A list at a time, not recursion: components nest as deep as the decoder allows.
    count, lists = 0, [components]
    while lists:
        comps = lists.pop()
        count += len(comps)
        lists += [c.components for c in comps if c.components]
    return count


def skim_object(text: bytes, predicate_type: str) -> dict[str, int]:
    """Validate ``text`` as one JSON object and return what it counted for ``predicate_type``.

    The summary is ``{"packages": N}`` for a CycloneDX or SPDX document (components,
    nested included, or packages: what :func:`~dhi_offline.evidence.predicates.
    sbom_package_count` counts), ``{}`` for anything else. Small, so it crosses a process
    boundary cheaply.

    Raises:
        SkimError: not one well-formed JSON object in UTF-8, or an outlined field has
            another shape (the strict parser then decides).
    """
    if not text.isascii():
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SkimError(f"not UTF-8 at byte {e.start}") from e
    try:
        if predicate_type.startswith(CYCLONEDX_PREFIX):
            return {"packages": _count(_CYCLONEDX.decode(text).components)}
        if predicate_type.startswith(SPDX_PREFIX):
            return {"packages": len(_SPDX_DOC.decode(text).packages)}
        _OTHER.decode(text)
    except (msgspec.DecodeError, RecursionError) as e:
        raise SkimError(str(e).splitlines()[0].strip()) from e
    return {}
