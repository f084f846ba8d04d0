"""Reference parsing: Docker normalisation, digests, oci-layout references."""

from __future__ import annotations

from pathlib import Path

import pytest

from dhi_offline.errors import UsageError
from dhi_offline.oci.reference import (
    LayoutReference,
    Reference,
    is_loopback,
    parse_reference,
    split_host_port,
)

D256 = "sha256:" + "ab" * 32
D512 = "sha512:" + "cd" * 64

PARSED = [
    ("python:3.13", Reference("docker.io", "library/python", "3.13", None)),
    ("python", Reference("docker.io", "library/python", "latest", None)),
    ("docker.io/python", Reference("docker.io", "library/python", "latest", None)),
    ("index.docker.io/library/python:3", Reference("docker.io", "library/python", "3", None)),
    ("docker/dhi-python:3.13", Reference("docker.io", "docker/dhi-python", "3.13", None)),
    ("dhi.io/python:3.13", Reference("dhi.io", "python", "3.13", None)),
    (
        "registry.scout.docker.com/docker/dhi-python@" + D256,
        Reference("registry.scout.docker.com", "docker/dhi-python", None, D256),
    ),
    ("host:5000/ns/name@" + D256, Reference("host:5000", "ns/name", None, D256)),
    ("host:5000/ns/name:v1@" + D256, Reference("host:5000", "ns/name", "v1", D256)),
    ("host:5000/ns/name@" + D512, Reference("host:5000", "ns/name", None, D512)),
    ("localhost/x", Reference("localhost", "x", "latest", None)),
    ("localhost:5000/a/b/c:t", Reference("localhost:5000", "a/b/c", "t", None)),
    ("127.0.0.1:5000/app", Reference("127.0.0.1:5000", "app", "latest", None)),
    ("[::1]:5000/app:v2", Reference("[::1]:5000", "app", "v2", None)),
    ("Upper/app", Reference("Upper", "app", "latest", None)),  # upper-case => a host
    ("a/b__c/d-e.f--g:T_1.x-y", Reference("docker.io", "a/b__c/d-e.f--g", "T_1.x-y", None)),
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[p[0][:40] for p in PARSED])
def test_parse_reference(text: str, expected: Reference) -> None:
    parsed = parse_reference(text)
    assert parsed == expected
    assert isinstance(parsed, Reference)
    # str() is a fully qualified reference that parses back to the same thing.
    assert parse_reference(str(parsed)) == parsed


def test_name_and_str() -> None:
    ref = parse_reference("python:3.13@" + D256)
    assert isinstance(ref, Reference)
    assert ref.name == "docker.io/library/python"
    assert str(ref) == f"docker.io/library/python:3.13@{D256}"
    assert ref.tag_or_digest == D256
    assert ref.with_digest(D512).digest == D512


BAD = [
    ("", "empty"),
    (" python", "spaces"),
    ("python:", "not a valid tag"),
    ("python:bad/tag", "not a valid registry host"),
    ("Python", "lowercase"),
    ("host:5000/UPPER:1", "lowercase"),
    ("a@b@" + D256, "more than one"),
    ("python@sha256:abc", "64 lower-case hex"),
    ("python@sha256:" + "AB" * 32, "64 lower-case hex"),
    ("python@md5:" + "ab" * 16, "sha256 or sha512"),
    ("python@sha512:" + "ab" * 32, "128 lower-case hex"),
    ("host:5000/ns//x", "not a valid repository"),
    ("host:5000/-x", "not a valid repository"),
    ("a" * 64, "image ID"),
    ("ho_st:5000/x", "not a valid registry host"),
    ("x:" + "t" * 129, "not a valid tag"),
    ("oci-layout:", "needs a directory"),
    ("oci-layout:dir@sha256:xyz", "64 lower-case hex"),
    ("oci-layout:dir:bad!tag", "not a valid tag"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[b[1] + ":" + b[0][:20] for b in BAD])
def test_bad_references_name_the_reference(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_reference(text)
    assert message in info.value.message
    assert repr(text) in info.value.message or text.strip() == ""
    assert "\n" not in info.value.one_line()
    assert info.value.exit_code == 2


LAYOUTS = [
    ("oci-layout:/tmp/img", LayoutReference(Path("/tmp/img"), None, None)),
    ("oci-layout:/tmp/img:v1", LayoutReference(Path("/tmp/img"), "v1", None)),
    ("oci-layout:rel/dir@" + D256, LayoutReference(Path("rel/dir"), None, D256)),
    ("oci-layout:./a:b/c", LayoutReference(Path("./a:b/c"), None, None)),  # ":" in the path
]


@pytest.mark.parametrize(("text", "expected"), LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_layout_references(text: str, expected: LayoutReference) -> None:
    parsed = parse_reference(text)
    assert parsed == expected
    assert parse_reference(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("LOCALHOST:1", True),
        ("127.0.0.1", True),
        ("127.1.2.3:5000", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("128.0.0.1:5000", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("docker.io", False),
        ("[::2]:5000", False),
    ],
)
def test_is_loopback(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback


def test_split_host_port() -> None:
    assert split_host_port("h:5000") == ("h", 5000)
    assert split_host_port("h") == ("h", None)
    assert split_host_port("[::1]:80") == ("::1", 80)
    assert split_host_port("[::1]") == ("::1", None)
