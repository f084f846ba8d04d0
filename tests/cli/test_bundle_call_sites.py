"""Each check of the bundle plan (steps 1-5 and the policy's tests rule), alone.

Every test builds a bundle that only the check under test refuses, runs the air-gapped
CLI on it, and asserts the exit code and the step that refused it. Bundles "re-signed"
here are signed by the pinned exporter key (an insider, or an exporter that did not
check): the host must not rely on the exporter having checked. The mutation harness
(``tests/mutation/``) removes each check and expects these tests to fail.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zstandard

from dhi_offline.bundle.reader import open_bundle
from dhi_offline.bundle.signing import load_private_key, public_key_of
from dhi_offline.bundle.writer import write_bundle
from dhi_offline.evidence.records import AttestationRecord, EvidenceIndex
from tests.bundle.helpers import Raw, compress, tar_bytes
from tests.support.rekor_double import RekorDouble
from tests.support.rekor_site import do_import, export, make_rekor_site, run
from tests.support.sample import PRODUCTION_ROOT as ROOT
from tests.support.sample import export_argv, make_sample_site, trust_argv

Files = dict[str, bytes]


class Site:
    def __init__(self, d: Path) -> None:
        self.d = d
        self.bundle = d / "good.dhi.tar.zst"

    def verify(self, bundle: Path, *extra: str) -> tuple[int, str, str]:
        return run(["verify", str(bundle), *trust_argv(self.d), *extra])

    def imp(self, bundle: Path, *extra: str) -> tuple[int, str, str]:
        archive = ["--archive", str(self.d / "archive")]
        return run(["import", str(bundle), *trust_argv(self.d), *archive, *extra])


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    s = Site(make_sample_site(tmp_path, monkeypatch))
    code, _, err = run(export_argv(s.d, "good.dhi.tar.zst"))
    assert code == 0, err
    return s


def members(bundle: Path) -> list[tuple[str, bytes]]:
    raw = zstandard.ZstdDecompressor().decompress(bundle.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]  # type: ignore[union-attr]


def repack(site: Site, name: str, edit: Callable[[list[tuple[str, bytes]]], object]) -> Path:
    """The tar rewritten WITHOUT re-signing (an outsider's change)."""
    ms = members(site.bundle)
    edit(ms)
    out = site.d / name
    out.write_bytes(compress(tar_bytes([Raw.regular(p, d) for p, d in ms])))
    return out


def resign(
    site: Site,
    name: str,
    edit: Callable[[Files], object] | None = None,
    *,
    images: Callable[[tuple[object, ...]], tuple[object, ...]] | None = None,
) -> Path:
    """The site's bundle edited and signed again by the pinned exporter key."""
    return resign_file(site.bundle, site.d / name, site.d / "exporter.pem", edit, images=images)


def resign_file(
    src: Path,
    dst: Path,
    key_pem: Path,
    edit: Callable[[Files], object] | None = None,
    *,
    images: Callable[[tuple[object, ...]], tuple[object, ...]] | None = None,
) -> Path:
    """``src``'s members (and image list) edited, signed again with ``key_pem``
    (sequence + 1): an insider, or an exporter that did not check."""
    dest = dst.parent / f"x-{dst.name}"
    dest.mkdir()
    key = load_private_key(key_pem)
    opened = open_bundle(src, trusted_exporters=lambda k: public_key_of(key), dest=dest)
    files = {m.path: (dest / m.path).read_bytes() for m in opened.manifest.members}
    if edit is not None:
        edit(files)
    now = datetime.now(UTC).replace(microsecond=0)
    write_bundle(
        dst,
        tool_version="0.1.0",
        created=now,
        expires=now + timedelta(days=30),
        sequence=opened.manifest.sequence + 1,
        images=images(opened.manifest.images) if images else opened.manifest.images,  # type: ignore[arg-type]
        members=sorted(files.items()),
        private_key=key,
    )
    return dst


def refused(result: tuple[int, str, str], step: str) -> str:
    code, _, err = result
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith(f"dhi-offline: verification failed: {step}: "), lines[0]
    return lines[0]


def failed_checks(result: tuple[int, str, str]) -> list[dict[str, str]]:
    code, out, err = result
    assert code == 1, err
    return [c for c in json.loads(out)["checks"] if c["status"] == "failed"]


def test_control_resigned_bundle_verifies(site: Site) -> None:
    assert site.verify(resign(site, "same.dhi.tar.zst"))[0] == 0


# -- steps 1-3: manifest signature and members ------------------------------------------


def test_corrupted_manifest_signature_is_refused(site: Site) -> None:
    def corrupt(ms: list[tuple[str, bytes]]) -> None:
        name, data = ms[1]
        env = json.loads(data)
        sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
        sig[-1] ^= 1
        env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
        ms[1] = (name, json.dumps(env).encode())

    line = refused(site.verify(repack(site, "sig.dhi.tar.zst", corrupt)), "2 bundle signature")
    assert "does not verify" in line


def test_signature_of_other_manifest_bytes_is_refused(site: Site) -> None:
    def reserialise(ms: list[tuple[str, bytes]]) -> None:
        name, data = ms[0]
        ms[0] = (name, data.replace(b'"sequence":1', b'"sequence":1 '))

    line = refused(
        site.verify(repack(site, "bytes.dhi.tar.zst", reserialise)), "2 bundle signature"
    )
    assert "signs other bytes" in line


def test_unpinned_exporter_is_refused(site: Site) -> None:
    argv = ["verify", str(site.bundle), "--trust-exporter", str(site.d / "publisher.pub")]
    line = refused(run([*argv, "--trusted-root", str(ROOT)]), "2 bundle signature")
    assert "not signed by a trusted exporter key" in line


def test_member_with_other_content_same_size_is_refused(site: Site) -> None:
    def flip(ms: list[tuple[str, bytes]]) -> None:
        i = next(i for i, (p, _) in enumerate(ms) if p.startswith("blobs/"))
        name, data = ms[i]
        ms[i] = (name, data[:-1] + bytes([data[-1] ^ 1]))

    line = refused(site.verify(repack(site, "flip.dhi.tar.zst", flip)), "3 bundle members")
    assert "has sha256" in line


def test_unlisted_member_is_refused(site: Site) -> None:
    def add(ms: list[tuple[str, bytes]]) -> None:
        ms.append(("evidence/extra.json", b"{}"))

    line = refused(site.verify(repack(site, "extra.dhi.tar.zst", add)), "3 bundle members")
    assert "not listed" in line


def test_listed_member_missing_is_refused(site: Site) -> None:
    def drop(ms: list[tuple[str, bytes]]) -> None:
        i = max(i for i, (p, _) in enumerate(ms) if p.startswith("blobs/"))
        del ms[i]

    line = refused(site.verify(repack(site, "drop.dhi.tar.zst", drop)), "3 bundle members")
    assert "listed but not in the bundle" in line


# -- step 5: images ---------------------------------------------------------------------


def test_platforms_swapped_in_the_signed_manifest_fail_the_image_check(site: Site) -> None:
    def swap(images: tuple[object, ...]) -> tuple[object, ...]:
        out = []
        for image in images:
            plats = image.platforms  # type: ignore[attr-defined]
            names = [p.platform for p in plats][::-1]
            swapped = tuple(replace(p, platform=n) for p, n in zip(plats, names, strict=True))
            out.append(replace(image, platforms=swapped))  # type: ignore[type-var]
        return tuple(out)

    bundle = resign(site, "swap.dhi.tar.zst", images=swap)
    checks = failed_checks(site.verify(bundle, "--format", "json"))
    assert checks[0]["step"] == "5 image" and "does not list" in checks[0]["message"]


def test_evidence_about_no_platform_of_the_bundle_fails(site: Site) -> None:
    def retarget(files: Files) -> None:
        index = EvidenceIndex.from_json_bytes(files["evidence/index.json"])
        first, *rest = index.attestations
        moved = AttestationRecord(**{**first.__dict__, "subject": "sha256:" + "cd" * 32})
        files["evidence/index.json"] = EvidenceIndex(
            attestations=(moved, *rest), completions=index.completions
        ).to_json_bytes()

    checks = failed_checks(
        site.verify(resign(site, "nowhere.dhi.tar.zst", retarget), "--format", "json")
    )
    assert [c["step"] for c in checks] == ["6 attestation"]
    assert "not about any platform" in checks[0]["name"]


# -- policy: tests passed with no test report --------------------------------------------


def test_no_test_attestation_violates_require_passed(site: Site) -> None:
    def drop_tests(files: Files) -> None:
        index = EvidenceIndex.from_json_bytes(files["evidence/index.json"])
        kept = tuple(
            r
            for r in index.attestations
            if "scout.docker.com/tests" not in (r.predicate_type or "")
        )
        assert len(kept) < len(index.attestations)
        files["evidence/index.json"] = EvidenceIndex(
            attestations=kept, completions=index.completions
        ).to_json_bytes()

    policy = site.d / "tests-only.toml"
    policy.write_text("[tests]\nrequire_passed = true\n")
    bundle = resign(site, "notests.dhi.tar.zst", drop_tests)
    code, out, _ = site.verify(bundle, "--policy", str(policy), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["verified"] is True
    assert {(v["rule"], v["message"]) for v in doc["violations"]} == {
        ("tests passed", "no verified test report")
    }


# -- step 4: checkpoints and consistency (a publisher logging to a Rekor double) -----------


@pytest.fixture
def rekor_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, RekorDouble]:
    d, rekor = make_rekor_site(tmp_path, monkeypatch)
    (d / "policy.toml").write_text("[attestations]\nrequired = ['tests']\n")
    return d, rekor


def _members(files: Files, suffix: str) -> list[str]:
    return [p for p in files if p.startswith("tlog/") and suffix in p]


def test_checkpoint_not_signed_by_its_log_is_refused(rekor_site: tuple[Path, RekorDouble]) -> None:
    d, rekor = rekor_site

    def forge(files: Files) -> None:
        (path,) = _members(files, "checkpoint.txt")
        text, sig_line = files[path].decode().rstrip("\n").rsplit("\n", 1)
        prefix, b64 = sig_line.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(b64))
        raw[-1] ^= 1
        files[path] = f"{text}\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n".encode()

    with rekor.serve() as url:
        (d / "root.json").write_bytes(rekor.trusted_root_json())
        export(d, url, "one.dhi.tar.zst")
    resign_file(d / "one.dhi.tar.zst", d / "forged.dhi.tar.zst", d / "exporter.pem", forge)
    line = refused(do_import(d, "forged.dhi.tar.zst"), "4 checkpoint")
    assert "does not verify" in line


def test_forged_consistency_record_is_refused(rekor_site: tuple[Path, RekorDouble]) -> None:
    d, rekor = rekor_site
    with rekor.serve() as url:
        (d / "root.json").write_bytes(rekor.trusted_root_json())
        export(d, url, "one.dhi.tar.zst")
        assert do_import(d, "one.dhi.tar.zst")[0] == 0
        for i in range(5):
            rekor.add_entry(json.dumps({"later": i}).encode())
        export(d, url, "two.dhi.tar.zst")

    def forge(files: Files) -> None:
        (path,) = _members(files, "consistency")
        record = json.loads(files[path])
        first = bytearray(bytes.fromhex(record["hashes"][0]))
        first[0] ^= 1
        record["hashes"][0] = bytes(first).hex()
        files[path] = json.dumps(record).encode()

    resign_file(d / "two.dhi.tar.zst", d / "forged.dhi.tar.zst", d / "exporter.pem", forge)
    refused(do_import(d, "forged.dhi.tar.zst"), "4 consistency")
    # the control: the genuine record links the trees
    code, out, err = do_import(d, "two.dhi.tar.zst")
    assert code == 0, err
    steps = {c["step"]: c["status"] for c in json.loads(out)["checks"]}
    assert steps["4 consistency"] == "passed"


def test_forked_log_is_refused_by_verify_too(
    rekor_site: tuple[Path, RekorDouble], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, rekor = rekor_site
    with rekor.serve() as url:
        (d / "root.json").write_bytes(rekor.trusted_root_json())
        export(d, url, "one.dhi.tar.zst")
        assert do_import(d, "one.dhi.tar.zst")[0] == 0
        rekor.present(rekor.equivocate())
        monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(d / "fresh-state"))
        assert run(["keys", "generate", "--output", str(d / "exporter2")])[0] == 0
        export(d, url, "forked.dhi.tar.zst", exporter="exporter2")
    argv = ["verify", str(d / "forked.dhi.tar.zst"), "--trust-exporter", str(d / "exporter2.pub")]
    argv += ["--trust-publisher", str(d / "publisher.pub"), "--trusted-root", str(d / "root.json")]
    line = refused(run([*argv, "--archive", str(d / "archive")]), "4 consistency")
    assert "forked" in line


def test_checkpoint_with_a_changed_tree_size_is_refused(
    rekor_site: tuple[Path, RekorDouble],
) -> None:
    d, rekor = rekor_site

    def grow(files: Files) -> None:
        (path,) = _members(files, "checkpoint.txt")
        origin, size, rest = files[path].decode().split("\n", 2)
        files[path] = f"{origin}\n{int(size) + 1}\n{rest}".encode()

    with rekor.serve() as url:
        (d / "root.json").write_bytes(rekor.trusted_root_json())
        export(d, url, "one.dhi.tar.zst")
    resign_file(d / "one.dhi.tar.zst", d / "grown.dhi.tar.zst", d / "exporter.pem", grow)
    refused(do_import(d, "grown.dhi.tar.zst"), "4 checkpoint")


def test_consistency_record_with_a_missing_hash_is_refused_by_verify(
    rekor_site: tuple[Path, RekorDouble],
) -> None:
    d, rekor = rekor_site
    with rekor.serve() as url:
        (d / "root.json").write_bytes(rekor.trusted_root_json())
        export(d, url, "one.dhi.tar.zst")
        assert do_import(d, "one.dhi.tar.zst")[0] == 0
        for i in range(7):
            rekor.add_entry(json.dumps({"later": i}).encode())
        export(d, url, "two.dhi.tar.zst")

    def shorten(files: Files) -> None:
        (path,) = _members(files, "consistency")
        record = json.loads(files[path])
        record["hashes"] = record["hashes"][:-1]
        files[path] = json.dumps(record).encode()

    resign_file(d / "two.dhi.tar.zst", d / "short.dhi.tar.zst", d / "exporter.pem", shorten)
    argv = ["verify", str(d / "short.dhi.tar.zst"), "--trust-exporter", str(d / "exporter.pub")]
    argv += ["--trust-publisher", str(d / "publisher.pub"), "--trusted-root", str(d / "root.json")]
    refused(run([*argv, "--archive", str(d / "archive")]), "4 consistency")


def test_platform_renamed_in_the_signed_manifest_fails_the_image_check(site: Site) -> None:
    def rename(images: tuple[object, ...]) -> tuple[object, ...]:
        out = []
        for image in images:
            first, *rest = image.platforms  # type: ignore[attr-defined]
            renamed = (replace(first, platform="linux/riscv64"), *rest)
            out.append(replace(image, platforms=renamed))  # type: ignore[type-var]
        return tuple(out)

    bundle = resign(site, "renamed.dhi.tar.zst", images=rename)
    checks = failed_checks(site.verify(bundle, "--format", "json"))
    assert checks[0]["step"] == "5 image" and "as linux/riscv64" in checks[0]["message"]
