"""``admission-config``: each enforcer's config parses, carries the site key exactly, and
demands the site signature and a PASSED, unsafe-free VSA; bad keys and globs are one line."""

from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from dhi_offline.bundle.signing import GeneratedKeyPair, generate_keypair
from dhi_offline.deliver import names
from dhi_offline.deliver.admission import (
    VSA_REGO,
    containers_scopes,
    site_public_key,
    to_yaml,
)
from dhi_offline.errors import TrustMaterialError, UsageError
from tests.deliver.conftest import REPOSITORY, Site
from tests.support.registry import skopeo_binary
from tests.support.sample import run_cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
GLOB = "registry.site/dhi/*"


@pytest.fixture
def keys(tmp_path: Path) -> GeneratedKeyPair:
    return generate_keypair(tmp_path / "site")


def config(keys: GeneratedKeyPair, kind: str, *extra: str) -> str:
    code, out, err = run_cli(
        ["admission-config", "--kind", kind, "--key", str(keys.public_key), *extra]
    )
    assert code == 0, err
    return out


def refused(argv: list[str]) -> str:
    """Exit 2, one line on stderr, no traceback; the line."""
    code, out, err = run_cli(argv)
    assert code == 2, (out, err)
    assert out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- Kyverno -----------------------------------------------------------------------------------


def test_kyverno_verifies_the_signature_and_a_passed_safe_vsa(keys: GeneratedKeyPair) -> None:
    pem = keys.public_key.read_text()
    docs = list(yaml.safe_load_all(config(keys, "kyverno", "--images", GLOB)))
    assert len(docs) == 1
    policy = docs[0]
    assert (policy["apiVersion"], policy["kind"]) == ("kyverno.io/v1", "ClusterPolicy")
    assert policy["metadata"]["annotations"][names.ANN_SITE_KEY_ID] == keys.key_id
    assert policy["spec"]["webhookConfiguration"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["rules"]
    (verify,) = rule["verifyImages"]
    assert verify["imageReferences"] == [GLOB]
    assert verify["failureAction"] == "Enforce"
    assert verify["mutateDigest"] is True and verify["verifyDigest"] is True
    assert verify["required"] is True
    (attestation,) = verify["attestations"]
    assert attestation["type"] == names.VSA_PREDICATE_TYPE
    for attestors in (verify["attestors"], attestation["attestors"]):
        (entry,) = attestors[0]["entries"]
        entry_keys = entry["keys"]
        assert entry_keys["publicKeys"] == pem
        assert entry_keys["rekor"] == {"ignoreTlog": True}
        assert entry_keys["ctlog"] == {"ignoreSCT": True}
    (conditions,) = attestation["conditions"]
    checks = {(c["key"], c["operator"], c["value"]) for c in conditions["all"]}
    assert ("{{ verificationResult }}", "Equals", names.PASSED) in checks
    assert ("{{ verifier.id }}", "Equals", names.VERIFIER_ID) in checks
    unsafe = [k for k, op, v in checks if "verifiedLevels" in k]
    assert unsafe == [
        "{{ length(verifiedLevels[?starts_with(@, '" + names.UNSAFE_LEVEL_PREFIX + "')] || `[]`) }}"
    ]
    assert (unsafe[0], "Equals", 0) in checks


def test_every_image_by_default(keys: GeneratedKeyPair) -> None:
    kyverno = yaml.safe_load(config(keys, "kyverno"))
    assert kyverno["spec"]["rules"][0]["verifyImages"][0]["imageReferences"] == ["*"]
    for doc in yaml.safe_load_all(config(keys, "policy-controller")):
        assert doc["spec"]["images"] == [{"glob": "**"}]
    assert containers_scopes([]) == ("",)


# -- policy-controller ---------------------------------------------------------------------------


def test_policy_controller_needs_both_policies(keys: GeneratedKeyPair) -> None:
    pem = keys.public_key.read_text()
    out = config(keys, "policy-controller", "--images", GLOB, "--images", "host:5000/a:*")
    signature, vsa = yaml.safe_load_all(out)
    for doc in (signature, vsa):
        assert (doc["apiVersion"], doc["kind"]) == (
            "policy.sigstore.dev/v1beta1",
            "ClusterImagePolicy",
        )
        assert doc["spec"]["mode"] == "enforce"
        # policy-controller's '*' stops at '/': '**' is what the glob means.
        assert doc["spec"]["images"] == [
            {"glob": "registry.site/dhi/**"},
            {"glob": "host:5000/a:**"},
        ]
        (authority,) = doc["spec"]["authorities"]
        assert authority["key"] == {"data": pem}
        # No ctlog: no transparency log; no signatureFormat: cosign's .sig/.att tags.
        assert "ctlog" not in authority and "signatureFormat" not in authority
    assert "attestations" not in signature["spec"]["authorities"][0]
    (attestation,) = vsa["spec"]["authorities"][0]["attestations"]
    assert attestation["predicateType"] == names.VSA_PREDICATE_TYPE
    assert attestation["policy"]["type"] == "rego"
    rego = attestation["policy"]["data"]
    assert rego == VSA_REGO
    assert rego.startswith("package sigstore\n")
    assert f'input.predicate.verificationResult == "{names.PASSED}"' in rego
    assert f'input.predicate.verifier.id == "{names.VERIFIER_ID}"' in rego
    assert f'startswith(level, "{names.UNSAFE_LEVEL_PREFIX}")' in rego
    assert "count(unsafe_levels) == 0" in rego
    assert f'input.predicateType == "{names.VSA_PREDICATE_TYPE}"' in rego


# -- containers-policy.json ----------------------------------------------------------------------


def test_containers_policy_writes_both_files(keys: GeneratedKeyPair, tmp_path: Path) -> None:
    out_dir = tmp_path / "etc-containers"
    out = config(keys, "containers-policy", "--images", GLOB, "-o", str(out_dir))
    policy_path = out_dir / "policy.json"
    registries_path = out_dir / "registries.d" / "dhi-offline.yaml"
    assert f"wrote {policy_path}" in out and f"wrote {registries_path}" in out
    assert "cannot read the VSA" in out
    policy = json.loads(policy_path.read_text())
    assert policy["default"] == [{"type": "reject"}]
    assert list(policy["transports"]) == ["docker"]
    (requirement,) = policy["transports"]["docker"]["registry.site/dhi"]
    assert requirement["type"] == "sigstoreSigned"
    assert base64.b64decode(requirement["keyData"]) == keys.public_key.read_bytes()
    assert requirement["signedIdentity"] == {"type": "matchRepository"}
    registries_text = registries_path.read_text()
    assert "cannot read the VSA" in registries_text
    assert yaml.safe_load(registries_text) == {
        "docker": {"registry.site/dhi": {"use-sigstore-attachments": True}}
    }
    for path in (policy_path, registries_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in out_dir.rglob("*")) == [
        "dhi-offline.yaml",
        "policy.json",
        "registries.d",
    ]


def test_containers_policy_for_every_image_uses_the_default_scopes(
    keys: GeneratedKeyPair, tmp_path: Path
) -> None:
    config(keys, "containers-policy", "-o", str(tmp_path / "c"))
    policy = json.loads((tmp_path / "c" / "policy.json").read_text())
    assert list(policy["transports"]["docker"]) == [""]
    assert policy["default"] == [{"type": "reject"}]
    registries = yaml.safe_load((tmp_path / "c" / "registries.d" / "dhi-offline.yaml").read_text())
    assert registries == {"default-docker": {"use-sigstore-attachments": True}}


def test_containers_scopes_are_prefixes() -> None:
    assert containers_scopes(["registry.site/dhi/*", "registry.site/dhi/python:*"]) == (
        "registry.site/dhi",
        "registry.site/dhi/python",
    )
    assert containers_scopes(["registry.site/dhi/python:3.13"]) == (
        "registry.site/dhi/python:3.13",
    )
    assert containers_scopes(["*"]) == ("",)
    digest = "sha256:" + "a" * 64
    assert containers_scopes([f"host:5000/dhi/python@{digest}", "host:5000/*"]) == (
        f"host:5000/dhi/python@{digest}",
        "host:5000",
    )


@pytest.mark.parametrize(
    "glob", ["registry.site/dhi/", "registry.site/DHI/*", "r.site/a/b@sha256:*", "r.site/a:b c"]
)
def test_containers_policy_refuses_what_is_no_scope(glob: str) -> None:
    # containers/image would refuse the whole policy.json over one bad scope.
    with pytest.raises(UsageError, match="--images"):
        containers_scopes([glob])


@pytest.mark.parametrize("glob", ["registry.site/dhi/py*", "registry.site/*/python", "r.site/a*/"])
def test_containers_policy_refuses_a_star_inside(keys: GeneratedKeyPair, glob: str) -> None:
    with pytest.raises(UsageError, match="prefixes"):
        containers_scopes([glob])
    line = refused(
        [
            "admission-config",
            "--kind",
            "containers-policy",
            "--key",
            str(keys.public_key),
            "--images",
            glob,
            "-o",
            "/nonexistent-dir",
        ]
    )
    assert "prefixes" in line and glob in line


def test_containers_policy_needs_a_directory(keys: GeneratedKeyPair, tmp_path: Path) -> None:
    argv = ["admission-config", "--kind", "containers-policy", "--key", str(keys.public_key)]
    assert "-o DIR" in refused(argv)
    (tmp_path / "file").write_text("x")
    assert "not a directory" in refused([*argv, "-o", str(tmp_path / "file")])


# -- refusals ------------------------------------------------------------------------------------


def test_a_private_key_is_refused(keys: GeneratedKeyPair) -> None:
    line = refused(["admission-config", "--kind", "kyverno", "--key", str(keys.private_key)])
    assert "PRIVATE key" in line and str(keys.private_key) in line
    with pytest.raises(TrustMaterialError, match="PRIVATE"):
        site_public_key(keys.private_key.read_bytes())


def test_not_a_pem_key_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    line = refused(["admission-config", "--kind", "policy-controller", "--key", str(junk)])
    assert "not a PEM public key" in line and str(junk) in line


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pub"
    line = refused(["admission-config", "--kind", "containers-policy", "--key", str(missing)])
    assert str(missing) in line


def test_another_key_type_is_refused(tmp_path: Path) -> None:
    p384 = tmp_path / "p384.pub"
    p384.write_bytes(
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert "ECDSA P-256" in refused(["admission-config", "--kind", "kyverno", "--key", str(p384)])


def test_two_keys_in_one_file_are_refused(keys: GeneratedKeyPair, tmp_path: Path) -> None:
    two = tmp_path / "two.pub"
    two.write_bytes(keys.public_key.read_bytes() * 2)
    assert "more than one PEM block" in refused(
        ["admission-config", "--kind", "kyverno", "--key", str(two)]
    )


@pytest.mark.parametrize(
    "glob", ["python*", "dhi/python", "*/dhi/*", "registry.site/dhi/**", "reg.site/a b", "r.s/?"]
)
def test_globs_every_enforcer_cannot_read_alike_are_refused(
    keys: GeneratedKeyPair, glob: str
) -> None:
    line = refused(
        ["admission-config", "--kind", "kyverno", "--key", str(keys.public_key), "--images", glob]
    )
    assert "--images" in line


# -- output files --------------------------------------------------------------------------------


def test_output_to_a_file_or_a_directory(keys: GeneratedKeyPair, tmp_path: Path) -> None:
    stdout = config(keys, "kyverno")
    out = config(keys, "kyverno", "-o", str(tmp_path / "k.yaml"))
    assert out == f"wrote {tmp_path / 'k.yaml'}\n"
    assert (tmp_path / "k.yaml").read_text() == stdout
    config(keys, "policy-controller", "-o", str(tmp_path))
    written = tmp_path / "dhi-offline-policy-controller.yaml"
    assert written.read_text() == config(keys, "policy-controller")
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_an_unwritable_output_is_one_line(keys: GeneratedKeyPair, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "k.yaml"
    line = refused(
        ["admission-config", "--kind", "kyverno", "--key", str(keys.public_key), "-o", str(target)]
    )
    assert f"cannot write {target}" in line
    assert not target.parent.exists()


# -- a real enforcer: containers/image (skopeo) against what push wrote -------------------------


def _skopeo_copy(etc: Path, image: str, out: Path) -> subprocess.CompletedProcess[str]:
    skopeo = skopeo_binary()
    assert skopeo is not None
    argv = [skopeo, "--policy", str(etc / "policy.json"), "--registries.d"]
    argv += [str(etc / "registries.d"), "copy", "--src-tls-verify=false", "--retry-times", "0"]
    argv += [image, f"dir:{out}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


# Debian builds containers/image with sigstore verification patched out; such a build
# still parses policy.json and picks the requirement, then refuses with this message.
_NO_SIGSTORE = "sigstore disabled"


@pytest.mark.integration
def test_containers_policy_admits_only_what_the_site_signed(site: Site, tmp_path: Path) -> None:
    site.mirror()
    code, _, err = run_cli(site.push_argv())
    assert code == 0, err
    image = f"docker://{site.registry.host}/{REPOSITORY}:3.13"

    def policy(key: Path, name: str, glob: str = f"{site.registry.host}/dhi/*") -> Path:
        etc = tmp_path / name
        argv = ["admission-config", "--kind", "containers-policy", "--key", str(key)]
        code, _, err = run_cli([*argv, "--images", glob, "-o", str(etc)])
        assert code == 0, err
        return etc

    # Outside every scope: the default requirement, reject.
    outside = _skopeo_copy(
        policy(site.site_pub, "outside", "other.site/x/*"), image, tmp_path / "o"
    )
    assert outside.returncode != 0
    assert "rejected by policy" in outside.stderr and _NO_SIGSTORE not in outside.stderr
    admitted = _skopeo_copy(policy(site.site_pub, "site"), image, tmp_path / "a")
    if _NO_SIGSTORE in admitted.stderr:
        # The file parsed and the image's scope chose sigstoreSigned: all this build checks.
        pytest.skip("this skopeo's containers/image is built without sigstore verification")
    assert admitted.returncode == 0, admitted.stderr
    other = generate_keypair(tmp_path / "other")
    wrong_key = _skopeo_copy(policy(other.public_key, "other"), image, tmp_path / "b")
    assert wrong_key.returncode != 0
    assert "signature" in wrong_key.stderr.lower(), wrong_key.stderr
    # An unsafe verification is never signed, and push removes the earlier site signature.
    run_cli(site.push_argv("--at", "2026-01-01T00:00:00Z"))
    revoked = _skopeo_copy(policy(site.site_pub, "site-again"), image, tmp_path / "c")
    assert revoked.returncode != 0
    assert "signature" in revoked.stderr.lower(), revoked.stderr


# -- the YAML writer -----------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_scalars = st.one_of(
    _text,
    st.sampled_from(["yes", "No", "on", "null", "~", "0x1", "1e3", "-", "a: b", "#x", "'q'"]),
    st.sampled_from(["line one\nline two\n", "a\n\nb", "x\n  indented\n", "trail \nx\n"]),
    st.integers(-(10**6), 10**6),
    st.booleans(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_text, _values, max_size=5))
def test_yaml_reads_back_as_written(doc: dict[str, Any]) -> None:
    assert yaml.safe_load(to_yaml(doc)) == (doc or {})


def test_yaml_stream_has_every_document() -> None:
    docs: list[dict[str, Any]] = [{"a": "x\ny\n"}, {"b": [1, {"c": True}]}]
    assert list(yaml.safe_load_all(to_yaml(*docs))) == docs


# -- documentation -------------------------------------------------------------------------------


def _blocks_after(text: str, heading: str) -> list[str]:
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(?:yaml|json)\n(.*?)^```$", section, flags=re.M | re.S)


def _unversioned(text: str) -> str:
    return re.sub(r"Generated by dhi-offline \S+ ", "Generated by dhi-offline V ", text)


def test_the_documented_configs_are_what_the_command_writes(tmp_path: Path) -> None:
    doc = (DOCS / "admission.md").read_text(encoding="utf-8")
    (kyverno,) = _blocks_after(doc, "## Kyverno")
    pem = re.search(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", kyverno, re.S)
    assert pem is not None
    key = tmp_path / "example.pub"
    key.write_text("\n".join(line.strip() for line in pem.group().splitlines()) + "\n")
    base = ["admission-config", "--key", str(key), "--images", GLOB]
    for kind, heading in (("kyverno", "## Kyverno"), ("policy-controller", "## sigstore")):
        code, out, err = run_cli([*base, "--kind", kind])
        assert code == 0, err
        assert [_unversioned(out)] == [_unversioned(b) for b in _blocks_after(doc, heading)]
    code, _, err = run_cli([*base, "--kind", "containers-policy", "-o", str(tmp_path / "c")])
    assert code == 0, err
    written = [
        (tmp_path / "c" / "policy.json").read_text(),
        (tmp_path / "c" / "registries.d" / "dhi-offline.yaml").read_text(),
    ]
    blocks = _blocks_after(doc, "## podman")
    assert [_unversioned(w) for w in written] == [_unversioned(b) for b in blocks]


def test_the_command_is_documented() -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert "### `dhi-offline admission-config" in cli
    admission = (DOCS / "admission.md").read_text(encoding="utf-8")
    for heading in ("## What push writes", "## End-to-end flow"):
        assert heading in admission
    for kind in ("kyverno", "policy-controller", "containers-policy"):
        assert f"--kind {kind}" in admission
