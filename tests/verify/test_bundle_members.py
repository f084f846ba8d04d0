"""Where the verifier keeps a bundle's members changes nothing in the report.

Small members are kept in memory while ``MEMORY_BUDGET`` lasts, then packed into one
file of the work directory; larger ones are files of their own (verify/bundle.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.bundle import reader
from dhi_offline.bundle.reader import OpenedBundle
from dhi_offline.verify import bundle as verify_bundle
from tests.support.sample import export_argv, make_sample_site, run_cli, trust_argv

PLACES = {
    "memory": (64 * 1024 * 1024, 1024 * 1024),
    "packed": (0, 1024 * 1024),
    "files": (0, 0),
}


def test_the_report_is_the_same_wherever_members_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run_cli(export_argv(d, "b.dhi.tar.zst"))
    assert code == 0, err
    opened: list[OpenedBundle] = []
    real_open = reader.open_bundle

    def spy(*args: Any, **kwargs: Any) -> OpenedBundle:
        result = real_open(*args, **kwargs)
        opened.append(result)
        return result

    monkeypatch.setattr(verify_bundle, "open_bundle", spy)
    reports: dict[str, Any] = {}
    for place, (budget, small) in PLACES.items():
        monkeypatch.setattr(verify_bundle, "MEMORY_BUDGET", budget)
        monkeypatch.setattr(verify_bundle, "SMALL_MEMBER", small)
        argv = ["verify", str(d / "b.dhi.tar.zst"), *trust_argv(d), "--format", "json"]
        code, out, err = run_cli(argv)
        assert code == 0, err
        report = json.loads(out)
        report.pop("referenceTime")
        reports[place] = report
        last = opened[-1]
        counts = (bool(last.memory), bool(last.packed))
        assert (
            counts
            == {"memory": (True, False), "packed": (False, True), "files": (False, False)}[place]
        )
    assert reports["memory"]["verdict"] == "PASS"
    assert reports["memory"] == reports["packed"] == reports["files"]
