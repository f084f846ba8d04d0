"""``push`` with other peers: a registry with the referrers API, an interrupted push, the
exporter reading the internal registry back, skopeo and sigstore-js checking what the
site wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dhi_offline.deliver import names
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.content import referrers_tag
from tests.deliver.conftest import REPOSITORY, Site
from tests.interop.sigstore_js import installed_node, verify_dsse_bundle
from tests.support.referrers_proxy import ReferrersProxy
from tests.support.registry import Fault, FaultProxy, fast_client, skopeo_binary, skopeo_push
from tests.support.sample import PRODUCTION_ROOT, run_cli, trust_argv

pytestmark = pytest.mark.integration


def _push_via(site: Site, host: str, *extra: str) -> tuple[int, dict[str, object], str]:
    argv = site.push_argv("--format", "json", *extra)
    argv[argv.index("--to") + 1] = f"{host}/dhi"
    code, out, err = run_cli(argv)
    doc = json.loads(out) if out.strip() else {}
    return code, doc, err


def _platform_digests(site: Site) -> list[str]:
    with fast_client() as client:
        top = client.get_tag(site.registry.host, REPOSITORY, "3.13")
        assert top is not None
        return [m["digest"] for m in json.loads(top.data)["manifests"]]


def test_registry_with_referrers_api_gets_no_fallback_tags(site: Site) -> None:
    with ReferrersProxy(site.registry.host) as proxy:
        skopeo_push(site.d / "layout", "3.13", f"{proxy.host}/{REPOSITORY}:3.13")
        code, doc, err = _push_via(site, proxy.host)
        assert code == 0, err
        counts = proxy.counts()
        assert counts[("PUT", "fallback-tag")] == 0
        assert counts[("GET", "referrers")] > 0
        for digest in _platform_digests(site):
            listed = proxy.referrers_of(REPOSITORY, digest)
            types = [d.get("artifactType") for d in listed]
            assert types.count(mt.SIGSTORE_BUNDLE_V03) == 1
            assert types.count(mt.IN_TOTO) == 5
        code, doc, err = _push_via(site, proxy.host)
        assert code == 0, err
        actions = doc["push"]["actions"]  # type: ignore[index]
        assert not [a for a in actions if a["status"] == "pushed"]
        assert counts[("PUT", "fallback-tag")] == 0


def test_interrupted_push_is_completed_by_a_rerun(site: Site) -> None:
    site.mirror()
    att_tag = Fault(
        "status",
        match=r"PUT /v2/dhi/python-sample/manifests/sha256-[0-9a-f]+\.att",
        times=-1,
        status=400,
    )
    with FaultProxy(site.registry.host, [att_tag]) as proxy:
        code, _doc, err = _push_via(site, proxy.host)
        assert code == 2
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
        with fast_client() as client:
            for digest in _platform_digests(site):
                # The fallback index comes last: nothing lists a VSA yet.
                assert client.get_tag(site.registry.host, REPOSITORY, referrers_tag(digest)) is None
        proxy.plan.clear()
        code, doc, err = _push_via(site, proxy.host)
        assert code == 0, err
        code, doc, err = _push_via(site, proxy.host)
        assert code == 0, err
        actions = doc["push"]["actions"]  # type: ignore[index]
        assert not [a for a in actions if a["status"] == "pushed"]
    with fast_client() as client:
        for digest in _platform_digests(site):
            index = client.get_tag(site.registry.host, REPOSITORY, referrers_tag(digest))
            assert index is not None
            listed = json.loads(index.data)["manifests"]
            vsas = [m for m in listed if m.get("artifactType") == mt.SIGSTORE_BUNDLE_V03]
            assert len(vsas) == 1
            for m in listed:  # every listed referrer exists
                client.get_manifest(site.registry.host, REPOSITORY, m["digest"])


def test_exporter_reads_the_internal_registry_back(site: Site) -> None:
    site.mirror()
    code, _, err = run_cli(site.push_argv())
    assert code == 0, err
    again = site.d / "again.dhi.tar.zst"
    argv = [
        "export",
        f"{site.registry.host}/{REPOSITORY}:3.13",
        "--signing-key",
        str(site.d / "exporter.pem"),
        "--key",
        str(site.d / "publisher.pub"),
        "--key",
        str(site.site_pub),
        "--trusted-root",
        str(PRODUCTION_ROOT),
        "--no-rekor",
        "--format",
        "json",
        "-o",
        str(again),
    ]
    code, out, err = run_cli(argv)
    assert code == 0, err + out
    code, out, err = run_cli(
        [
            "verify",
            str(again),
            *trust_argv(site.d),
            "--trust-publisher",
            str(site.site_pub),
            "--format",
            "json",
        ]
    )
    assert code == 0, err + out
    report = json.loads(out)
    for image in report["images"]:
        for platform in image["platforms"]:
            types = [a["predicateType"] for a in platform["attestations"] if a["verified"]]
            # the publisher's five, and the site's VSA (as .att and as a bundle referrer)
            assert len([t for t in types if t != names.VSA_PREDICATE_TYPE]) == 5
            assert types.count(names.VSA_PREDICATE_TYPE) == 2


def test_pushed_sigstore_bundles_verify_with_sigstore_js(site: Site, tmp_path: Path) -> None:
    node = installed_node()
    skopeo = skopeo_binary()
    assert skopeo is not None
    site.mirror()
    code, _, err = run_cli(site.push_argv())
    assert code == 0, err
    other = tmp_path / "other"
    run_cli(["keys", "generate", "--output", str(other)])
    with fast_client() as client:
        for digest in _platform_digests(site):
            index = client.get_tag(site.registry.host, REPOSITORY, referrers_tag(digest))
            assert index is not None
            (vsa,) = [
                m
                for m in json.loads(index.data)["manifests"]
                if m.get("artifactType") == mt.SIGSTORE_BUNDLE_V03
            ]
            # skopeo fetches the referrer artifact (manifest and layer) as a directory.
            out = tmp_path / digest.removeprefix("sha256:")
            done = subprocess.run(
                [
                    skopeo,
                    "--insecure-policy",
                    "copy",
                    "--src-tls-verify=false",
                    f"docker://{site.registry.host}/{REPOSITORY}@{vsa['digest']}",
                    f"dir:{out}",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            manifest = json.loads((out / "manifest.json").read_bytes())
            layer = out / manifest["layers"][0]["digest"].removeprefix("sha256:")
            bundle = tmp_path / "bundle.json"
            shutil.copyfile(layer, bundle)
            ok, message = verify_dsse_bundle(node, bundle, site.site_pub)
            assert ok, message
            ok, message = verify_dsse_bundle(node, bundle, other.with_suffix(".pub"))
            assert not ok, message
