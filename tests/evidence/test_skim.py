"""The skim (evidence/skim.py) never accepts what the strict parser refuses.

Exceptions, documented in docs/verification.md: duplicate keys and nesting between the
strict parser's 64 levels and the skim's limit, which only matter to a predicate someone
reads (and then the strict parser runs).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dhi_offline.encoding import loads_json
from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence.predicates import sbom_package_count
from dhi_offline.evidence.skim import SkimError, skim_object

CDX = "https://cyclonedx.org/bom/v1.6"
SPDX = "https://spdx.dev/Document/v2.3"
OTHER = "https://slsa.dev/provenance/v1"

REFUSED = {
    "invalid UTF-8": b'{"a":"\xff\xfe"}',
    "overlong UTF-8": b'{"a":"\xc0\xaf"}',
    "UTF-8 surrogate": b'{"a":"\xed\xa0\x80"}',
    "truncated UTF-8": b'{"a":"\xe2\x82"}',
    "invalid escape": b'{"a":"\\x"}',
    "invalid unicode escape": b'{"a":"\\u12G4"}',
    "control character": b'{"a":"\x01"}',
    "leading zero": b'{"a":01}',
    "trailing dot": b'{"a":1.}',
    "lone minus": b'{"a":-}',
    "empty exponent": b'{"a":1e}',
    "plus sign": b'{"a":+1}',
    "NaN": b'{"a":NaN}',
    "Infinity": b'{"a":-Infinity}',
    "trailing comma in array": b'{"a":[1,]}',
    "trailing comma in object": b'{"a":{"b":1,}}',
    "trailing data": b'{"a":1} x',
    "two objects": b'{"a":1}{"b":2}',
    "misspelt literal": b'{"a":tru}',
    "single quotes": b"{'a':1}",
    "unquoted key": b'{"a":{b:1}}',
    "missing colon": b'{"a":{"b" 1}}',
    "byte order mark": b'\xef\xbb\xbf{"a":1}',
    "trailing NUL": b'{"a":1}\x00',
    "array, not object": b"[1]",
    "string, not object": b'"x"',
    "truncated": b'{"a":[1,2',
    "empty": b"",
    "far too deep": b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
}


@pytest.mark.parametrize("ptype", [CDX, SPDX, OTHER])
@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_malformed_text_is_refused(text: bytes, ptype: str) -> None:
    with pytest.raises(SkimError):
        skim_object(text, ptype)


def test_an_outlined_field_of_another_shape_goes_to_the_strict_parser() -> None:
    with pytest.raises(SkimError):
        skim_object(b'{"components":[1]}', CDX)
    with pytest.raises(SkimError):
        skim_object(b'{"packages":{}}', SPDX)


def test_non_ascii_text_is_accepted() -> None:
    text = json.dumps({"components": [{"name": "café \u2603 \U0001f600"}]}, ensure_ascii=False)
    assert skim_object(text.encode(), CDX) == {"packages": 1}


def _component(depth: int, width: int) -> dict[str, Any]:
    children = [_component(depth - 1, width) for _ in range(width)] if depth else []
    return {"name": "p", "licenses": [{"license": {"id": "MIT"}}], "components": children}


@pytest.mark.parametrize(("depth", "width"), [(0, 0), (1, 3), (3, 2), (6, 1)])
def test_nested_components_are_counted_as_the_strict_reader_counts(depth: int, width: int) -> None:
    doc = {"bomFormat": "CycloneDX", "components": [_component(depth, width) for _ in range(2)]}
    expected = sbom_package_count(CDX, doc)
    assert skim_object(json.dumps(doc).encode(), CDX) == {"packages": expected}


def test_spdx_packages_are_counted() -> None:
    doc = {"spdxVersion": "SPDX-2.3", "packages": [{"name": str(i)} for i in range(7)]}
    assert skim_object(json.dumps(doc).encode(), SPDX) == {"packages": 7}
    assert skim_object(b'{"x":1}', OTHER) == {}


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(doc=st.dictionaries(st.text(max_size=4), JSONISH, max_size=4), cut=st.integers(0, 200))
def test_whatever_the_skim_accepts_the_strict_parser_accepts(doc: dict[str, Any], cut: int) -> None:
    # Valid documents, and every truncation or one-byte change of them.
    text = json.dumps(doc, ensure_ascii=False).encode()
    variants = [text, text[: cut % (len(text) + 1)]]
    if text:
        i = cut % len(text)
        variants += [text[:i] + b"\x00" + text[i + 1 :], text[:i] + b"}" + text[i:]]
    for variant in variants:
        try:
            skim_object(variant, OTHER)
        except SkimError:
            continue
        try:
            loads_json(variant, what="predicate")
        except MalformedEvidenceError as e:
            # Only a duplicate key may pass the skim (docs/verification.md).
            assert "duplicate key" in str(e), variant
