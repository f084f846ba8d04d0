"""Checkpoints across imports: a log that grows is followed, a log that forks is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.rekor_double import RekorDouble
from tests.support.rekor_site import do_import, export, make_rekor_site, run


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, RekorDouble]:
    return make_rekor_site(tmp_path, monkeypatch)


def test_growing_log_is_followed_and_forked_log_refused(
    world: tuple[Path, RekorDouble], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, rekor = world
    (d / "policy.toml").write_text("[attestations]\nrequired = ['tests']\n")
    with rekor.serve() as url:
        (d / "root.json").write_bytes(rekor.trusted_root_json())
        first = export(d, url, "one.dhi.tar.zst")
        assert first["tlog"]["inclusion-proof"] == 1  # type: ignore[index]
        code, out, err = do_import(d, "one.dhi.tar.zst")
        assert code == 0, err

        # The log grows; the same exporter's next bundle carries a consistency proof.
        for i in range(5):
            rekor.add_entry(json.dumps({"later": i}).encode())
        export(d, url, "two.dhi.tar.zst")
        code, out, err = do_import(d, "two.dhi.tar.zst")
        assert code == 0, err
        consistency = [c for c in json.loads(out)["checks"] if c["step"] == "4 consistency"]
        assert len(consistency) == 1 and consistency[0]["status"] == "passed"

        # The log now shows a different tree of the same size (same key): a fork. Another
        # trusted exporter, with no memory of the earlier tree, packs it; the host refuses.
        rekor.present(rekor.equivocate())
        monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(d / "fresh-state"))
        assert run(["keys", "generate", "--output", str(d / "exporter2")])[0] == 0
        export(d, url, "three.dhi.tar.zst", exporter="exporter2")
        code, _, err = do_import(d, "three.dhi.tar.zst")
    assert code == 1
    assert "forked" in err and err.count("\n") == 1 and "Traceback" not in err
