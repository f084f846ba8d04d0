"""Strict decoding helpers every layer shares: JSON, base64, RFC 3339 times.

A base module (``oci/``, ``bundle/``, ``evidence/`` and ``trust/`` import it; it imports
only ``errors``). The JSON and base64 helpers raise :class:`MalformedEvidenceError`
naming the field, so a bad byte in signed evidence is reported as "what" is malformed
rather than as a Python exception; the time helpers raise :class:`TrustMaterialError`.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import re
from datetime import UTC, datetime
from typing import Any

from dhi_offline.errors import MalformedEvidenceError, TrustMaterialError

# JSON we parse comes from untrusted bundles: cap nesting so a crafted document cannot
# exhaust the stack, and refuse the non-standard constants Python's json accepts.
MAX_JSON_DEPTH = 64
_INT_RE = re.compile(r"-?[0-9]{1,20}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _depth(obj: object, limit: int) -> int:
    """Nesting depth of ``obj``, counted up to ``limit + 1``.

    Level by level over containers only (scalars are never visited), iterative so the
    check itself cannot overflow the stack: a 16 MB SBOM is walked in a fraction of the
    time a node-by-node walk takes.
    """
    if type(obj) is not dict and type(obj) is not list:
        return 1
    level: list[object] = [obj]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return depth
        below: list[object] = []
        for item in level:
            values: Any = item.values() if isinstance(item, dict) else item
            below += [v for v in values if type(v) is dict or type(v) is list]
        level = below
    return depth


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        # Two parsers could pick different values for a duplicated key: refuse, naming it.
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return out


def within_depth(obj: object, limit: int) -> bool:
    """Whether ``obj`` nests at most ``limit`` levels (a scalar is one level)."""
    return _depth(obj, limit) <= limit


def strict_decoder() -> json.JSONDecoder:
    """A decoder with the strict rules of :func:`loads_json` except the depth limit,
    for callers that parse a document piece by piece (``raw_decode``)."""
    return json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


_STRICT = strict_decoder()  # stateless between calls; building one costs ~2 µs a document


def loads_json(data: bytes | str, *, what: str) -> Any:
    """Parse JSON strictly: UTF-8, no duplicate keys, no NaN/Infinity, bounded depth."""
    # Parsed JSON holds no reference cycles; pausing the cyclic collector stops it from
    # rescanning every new container of a large document (measured: ~40% of the parse).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        obj = _STRICT.decode(text)
    except RecursionError as e:
        raise MalformedEvidenceError(f"{what}: JSON nested too deeply") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedEvidenceError(f"{what}: not valid JSON ({e})") from e
    finally:
        if gc_was_enabled:
            gc.enable()
    # Every container opens with a bracket, so fewer brackets than the limit (strings
    # only add to the count) bound the depth without walking the tree: most documents.
    if (
        len(text) >= MAX_JSON_DEPTH
        and text.count("{") + text.count("[") >= MAX_JSON_DEPTH
        and _depth(obj, MAX_JSON_DEPTH) > MAX_JSON_DEPTH
    ):
        raise MalformedEvidenceError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH}")
    return obj


def b64decode(value: object, *, what: str, urlsafe_ok: bool = False) -> bytes:
    """Decode standard base64 (and URL-safe base64 when ``urlsafe_ok``), strictly."""
    if not isinstance(value, str):
        raise MalformedEvidenceError(f"{what}: expected a base64 string")
    # Line breaks are tolerated (``base64`` wraps at 76 columns; Go's decoder skips them).
    text = "".join(value.split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        if not urlsafe_ok:
            raise MalformedEvidenceError(f"{what}: invalid base64") from None
    padded = text + "=" * (-len(text) % 4)
    if any(c in padded for c in "+/"):
        raise MalformedEvidenceError(f"{what}: invalid base64")
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedEvidenceError(f"{what}: invalid base64") from e


def require_dict(value: object, *, what: str) -> dict[str, Any]:
    """``value`` as a JSON object, or a MalformedEvidenceError naming ``what``."""
    if not isinstance(value, dict):
        raise MalformedEvidenceError(f"{what}: expected a JSON object")
    return value


def require_str(value: object, *, what: str) -> str:
    """``value`` as a string, or a MalformedEvidenceError naming ``what``."""
    if not isinstance(value, str):
        raise MalformedEvidenceError(f"{what}: expected a string")
    return value


def require_int(value: object, *, what: str, minimum: int | None = 0) -> int:
    """An integer given as a JSON number or a decimal string (protobuf int64 JSON)."""
    if isinstance(value, bool):
        raise MalformedEvidenceError(f"{what}: expected an integer")
    if isinstance(value, int):
        out = value
    elif isinstance(value, str) and _INT_RE.fullmatch(value):
        out = int(value)
    else:
        raise MalformedEvidenceError(f"{what}: expected an integer")
    if minimum is not None and out < minimum:
        raise MalformedEvidenceError(f"{what}: must be >= {minimum}, got {out}")
    if out >= 2**63:
        raise MalformedEvidenceError(f"{what}: out of int64 range")
    return out


def parse_rfc3339(value: object, *, what: str) -> datetime:
    """Parse an RFC 3339 timestamp to an aware UTC datetime.

    Raises:
        TrustMaterialError: not a string, or not RFC 3339 with a time zone.
    """
    if not isinstance(value, str):
        raise TrustMaterialError(f"{what}: expected an RFC 3339 string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:
        raise TrustMaterialError(f"{what}: {value!r} is not an RFC 3339 time") from e
    if parsed.tzinfo is None:
        raise TrustMaterialError(f"{what}: {value!r} has no time zone")
    return parsed.astimezone(UTC)


def format_rfc3339(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
