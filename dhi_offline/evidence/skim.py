"""Check that a JSON object is well formed without building it (for predicates nobody reads).

An SBOM predicate can be tens of megabytes. The verifier needs its statement's
``_type``, ``subject`` and ``predicateType`` and, for the report, the number of
packages; policy never reads an SBOM's content. Building every SBOM into Python objects
cost ~20 ms per MB, far more than decompressing and hashing it. :func:`skim_object`
runs a Rust JSON parser (``jiter``, through ``pydantic_core``, which sigstore already
depends on) that validates the syntax of the whole text and keeps only an outline: the
nested ``components`` lists of a CycloneDX document, the ``packages`` list of an SPDX
one, nothing of anything else; and returns only their count.

What it checks: UTF-8, JSON syntax (strings, escapes, numbers, literals, no trailing
data), nesting up to the parser's limit. What it does not: duplicate keys and the
64-level nesting limit of :func:`dhi_offline.encoding.loads_json`, and
``NaN``/``Infinity``, which the parser accepts (callers refuse text that contains them
by falling back to the strict parser). The strict parser runs whenever the predicate
is read.
"""

from __future__ import annotations

from functools import cache

from pydantic_core import CoreConfig, SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from dhi_offline.evidence.predicates import CYCLONEDX_PREFIX, SPDX_PREFIX, sbom_package_count


class SkimError(ValueError):
    """The text is not exactly one well-formed JSON object (of the expected outline)."""


_EMPTY = cs.typed_dict_schema({}, extra_behavior="ignore")


def _keep(field: str, items: cs.CoreSchema) -> cs.CoreSchema:
    """An object keeping only the list ``field`` (of ``items``)."""
    return cs.typed_dict_schema(
        {field: cs.typed_dict_field(cs.list_schema(items), required=False)},
        extra_behavior="ignore",
    )


@cache
def _validator(kind: str) -> SchemaValidator:
    if kind == "cyclonedx-flat":
        schema = _keep("components", _EMPTY)
    elif kind == "cyclonedx":
        # Components nest; each level keeps only its own ``components``.
        component = cs.typed_dict_schema(
            {
                "components": cs.typed_dict_field(
                    cs.list_schema(cs.definition_reference_schema("component")), required=False
                )
            },
            extra_behavior="ignore",
            ref="component",
        )
        schema = cs.definitions_schema(cs.definition_reference_schema("component"), [component])
    elif kind == "spdx":
        schema = _keep("packages", _EMPTY)
    else:
        schema = _EMPTY
    return SchemaValidator(schema, config=CoreConfig(allow_inf_nan=False))


def _kind(predicate_type: str) -> str:
    if predicate_type.startswith(CYCLONEDX_PREFIX):
        return "cyclonedx"
    if predicate_type.startswith(SPDX_PREFIX):
        return "spdx"
    return "other"


def skim_object(text: bytes, predicate_type: str) -> dict[str, int]:
    """Validate ``text`` as one JSON object and return what it counted for ``predicate_type``.

    The summary is ``{"packages": N}`` for a CycloneDX or SPDX document (components,
    nested included, or packages: what :func:`~dhi_offline.evidence.predicates.
    sbom_package_count` counts), ``{}`` for anything else. Small, so it crosses a process
    boundary cheaply.

    Raises:
        SkimError: not one well-formed JSON object, ``NaN``/``Infinity`` appear, or an
            outlined field has the wrong shape (the strict parser then decides).
    """
    if b"NaN" in text or b"Infinity" in text:
        raise SkimError("NaN or Infinity may appear: left to the strict parser")
    kind = _kind(predicate_type)
    if kind == "cyclonedx" and text.count(b'"components"') <= 1:
        # Nested components need the key again; without it the flat outline (15% faster
        # than the recursive one on a real SBOM) counts them all.
        kind = "cyclonedx-flat"
    try:
        outline = _validator(kind).validate_json(text)
    except ValidationError as e:
        raise SkimError(str(e).splitlines()[-1].strip()) from e
    if not isinstance(outline, dict):  # pragma: no cover - the schemas return dicts
        raise SkimError("not a JSON object")
    if kind == "cyclonedx-flat":
        # Every item validated as an object: the count is the list's length.
        return {"packages": len(outline.get("components") or ())}
    count = sbom_package_count(predicate_type, outline)
    return {} if count is None else {"packages": count}
