"""A small export-under-faults campaign inside ``make test`` (the large one: ``make faults``).

12 exports with a fixed seed through the fault proxy of ``fault_campaign.py``, against a
real registry: every run must succeed with the reference's evidence or fail cleanly;
none may leave a file behind or end any other way. The first eight runs each start with
a different fault kind, so every kind is drawn. Below, the classifier and the "registry
goes away" proxy are checked on their own, so a campaign that finds nothing is not a
campaign that cannot see anything.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.export import fault_campaign as fc
from tests.export.test_export_registry import REPOSITORY, TAG
from tests.support.registry import Fault

RUNS = 12
SEED = 20260401


@pytest.fixture(scope="module")
def world() -> Iterator[fc.World]:
    missing = fc.tools_missing()
    if missing is not None:
        pytest.skip(missing)
    with fc.ready_world() as ready:
        yield ready


@pytest.fixture(scope="module")
def report(world: fc.World) -> dict[str, Any]:
    return fc.run_campaign(world, RUNS, SEED)


@pytest.mark.integration
def test_every_run_was_made_and_classified(report: dict[str, Any]) -> None:
    assert report["runs"] == RUNS
    outcomes = report["succeeded"] + report["failedCleanly"] + report["leftBehind"]
    assert outcomes + report["other"] == RUNS
    assert report["reference"]["members"] > 20  # the reference bundle is not trivial


@pytest.mark.integration
def test_nothing_left_behind_and_no_other_outcome(report: dict[str, Any]) -> None:
    shown = json.dumps(report["examples"], indent=1)[:4000]
    assert report["leftBehind"] == 0, shown
    assert report["other"] == 0, shown


@pytest.mark.integration
def test_the_faults_were_drawn_and_fired(report: dict[str, Any]) -> None:
    drawn = {k for k, v in report["byKind"].items() if v}
    assert drawn == set(fc.KINDS)
    fired = set(report["faultsFired"])
    assert {"5xx", "429", "reset", "delay", "gone"} <= fired, fired
    assert fired & fc.WRONG_BYTES, fired
    assert report["succeeded"] > 0 and report["failedCleanly"] > 0
    assert report["succeededAfterWrongBytes"] == []


@pytest.mark.integration
def test_a_superscript_digit_in_retry_after_is_retried_like_any_other(
    world: fc.World, tmp_path: Path
) -> None:
    """One 429 with ``Retry-After: ²`` (byte 0xB2): retried, like any unparsable value.

    Regression: ``str.isdigit()`` accepted '²' and ``float()`` then crashed the export.
    """
    fault = Fault(
        "status", match=fc.CLASSES["manifests"], status=429, headers={"Retry-After": "\u00b2"}
    )
    plan = fc.Plan([fc.Ingredient("odd-retry-after", "429 Retry-After '²' once", [fault])])
    run = fc.one_run(world, 0, plan, tmp_path, use_subprocess=False)
    if run.fired != {"429": 1}:
        pytest.fail(f"the fault did not fire as planned: {run.fired}")
    assert run.outcome == "succeeded", run.why


# ----------------------------------------------------------------- the classifier


@pytest.fixture
def fake_world(tmp_path: Path) -> fc.World:
    return fc.World(tmp_path / "world", "127.0.0.1:1", "http://127.0.0.1:2")


HOST = "127.0.0.1:5000"
CLEAN = (
    f"dhi-offline: error: {HOST}/{REPOSITORY}:{TAG}: registry {HOST} repository "
    f"{REPOSITORY}: blob sha256:{'a' * 64}: cannot connect after 5 attempts (refused)\n"
)


def _classify(world: fc.World, tmp_path: Path, outcome: fc.Outcome) -> tuple[str, str]:
    out = tmp_path / "run" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (tmp_path / "run" / "tmp").mkdir(exist_ok=True)
    return fc.classify(world, outcome, HOST, tmp_path / "run", out)


def test_a_clean_failure_is_recognised(fake_world: fc.World, tmp_path: Path) -> None:
    outcome, why = _classify(fake_world, tmp_path, fc.Outcome(2, "", CLEAN))
    assert outcome == "failed cleanly"
    assert why == "error: blob D: cannot connect after N attempts"


OTHERS = [
    (2, CLEAN + "second line\n", None, "2 lines"),
    (2, "Traceback (most recent call last):\n" + CLEAN, None, "crash"),
    (2, "dhi-offline: internal error: KeyError: 'x' (run with --verbose)\n", None, "crash"),
    (None, "", "RuntimeError: boom", "exception out of main"),
    (2, CLEAN.replace(f"{HOST}/{REPOSITORY}:{TAG}: ", ""), None, "does not name the image"),
    (2, f"dhi-offline: error: {HOST}/{REPOSITORY}:{TAG}: it broke\n", None, "the request"),
    (3, CLEAN, None, "exit 3"),
    (0, "", None, "without a bundle"),
]


@pytest.mark.parametrize("case", OTHERS, ids=[c[3] for c in OTHERS])
def test_anything_else_is_other(
    fake_world: fc.World, tmp_path: Path, case: tuple[int | None, str, str | None, str]
) -> None:
    code, stderr, exception, words = case
    outcome, why = _classify(fake_world, tmp_path, fc.Outcome(code, "", stderr, exception))
    assert outcome == "other" and words in why, why


def test_a_bundle_that_does_not_open_is_other(fake_world: fc.World, tmp_path: Path) -> None:
    (tmp_path / "world").mkdir()
    (tmp_path / "world" / "exporter.pub").write_bytes(b"not a key")
    out = tmp_path / "run" / "out"
    out.mkdir(parents=True)
    (out / "b.dhi.tar.zst").write_bytes(b"\x28\xb5\x2f\xfd garbage")
    outcome, why = _classify(fake_world, tmp_path, fc.Outcome(0, "{}", ""))
    assert outcome == "other" and "does not open" in why, why


@pytest.mark.parametrize(
    ("place", "code"),
    [("out/b.dhi.tar.zst.partial", 2), ("out/.b.dhi.tar.zst.x1.tmp", 1), ("tmp/tmpab12", 2)],
)
def test_files_left_behind_are_found(
    fake_world: fc.World, tmp_path: Path, place: str, code: int
) -> None:
    path = tmp_path / "run" / place
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    outcome, why = _classify(fake_world, tmp_path, fc.Outcome(code, "", CLEAN))
    assert outcome == "left behind" and place in why, why


def test_a_bundle_after_a_failure_is_left_behind(fake_world: fc.World, tmp_path: Path) -> None:
    out = tmp_path / "run" / "out"
    out.mkdir(parents=True)
    (out / "b.dhi.tar.zst").write_bytes(b"x")
    outcome, _ = _classify(fake_world, tmp_path, fc.Outcome(1, "{}", CLEAN))
    assert outcome == "left behind"


# ----------------------------------------------------------------- the registry going away


@pytest.fixture
def upstream() -> Iterator[str]:
    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = b"x" * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize("mid_body", [False, True])
def test_the_proxy_goes_away_after_request_k(upstream: str, mid_body: bool) -> None:
    with fc.CampaignProxy(upstream, [], fc.Gone(after=2, mid_body=mid_body)) as proxy:
        conn = http.client.HTTPConnection(proxy.host, timeout=5)
        conn.request("GET", "/v2/one")
        assert conn.getresponse().read() == b"x" * 1000  # request 1 passes
        conn.request("GET", "/v2/two")
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            conn.getresponse().read()  # request 2: reset (after half its body, mid_body)
        conn.close()
        again = http.client.HTTPConnection(proxy.host, timeout=5)
        with pytest.raises(ConnectionRefusedError):
            again.request("GET", "/v2/three")  # nobody listens any more
    assert proxy.actions() == ["pass", "gone mid-body" if mid_body else "gone"]
