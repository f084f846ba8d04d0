"""The host's TUF pins (dhi_offline/trust/tuf_store.py): the shipped root until the first
update, one JSON file per instance, refusal of corrupt or older state, a lock.

``trust update-root``, ``import`` and ``verify`` use it: tests/host/test_tufroot.py and
tests/export/test_export_tuf.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dhi_offline.encoding import format_rfc3339
from dhi_offline.errors import InputError, TrustMaterialError
from dhi_offline.trust.shipped import shipped_tuf_root
from dhi_offline.trust.tuf_chain import verify_chain
from dhi_offline.trust.tuf_state import TufAccepted, TufResult
from dhi_offline.trust.tuf_store import TUF_DIR, TufStore
from tests.trust.tuf_repo import NOW, TRUSTED_ROOT, TufRepo, seed_host

SAVED_AT = datetime(2026, 6, 2, 12, 30, tzinfo=UTC)
ROOT_V1 = '{"signed": {"version": 1}}'


def _chain(repo: TufRepo) -> TufResult:
    """What verifying ``repo`` from its root v1 yields."""
    return verify_chain(
        repo.roots[0],
        repo.roots[1:],
        repo.timestamp,
        repo.snapshot,
        repo.targets,
        target_files=repo.files,
        at=NOW,
    )


@pytest.fixture
def repo() -> TufRepo:
    r = TufRepo()
    r.new_root(rotate_root=True)
    r.new_root()
    return r


@pytest.fixture
def store(tmp_path: Path, repo: TufRepo) -> TufStore:
    """A host that pinned ``repo``'s root v1 (as the shipped root would be)."""
    seed_host(tmp_path / "config", repo)
    return TufStore(tmp_path / "config")


@pytest.mark.parametrize("instance", ["production", "staging"])
def test_before_any_update_the_shipped_root_is_the_start(tmp_path: Path, instance: str) -> None:
    store = TufStore(tmp_path / "config")
    pin = store.load(instance)  # type: ignore[arg-type]
    shipped = shipped_tuf_root(instance)  # type: ignore[arg-type]
    assert pin.root == shipped
    assert pin.root_version == json.loads(shipped)["signed"]["version"]
    assert pin.accepted == TufAccepted()
    assert (pin.trusted_root, pin.targets_version, pin.updated) == (None, None, None)
    assert store.pinned(instance) is None  # type: ignore[arg-type]
    assert not (tmp_path / "config").exists()  # reading creates nothing


def test_each_instance_has_its_own_file(tmp_path: Path) -> None:
    store = TufStore(tmp_path)
    assert store.path("production") == tmp_path / TUF_DIR / "production.json"
    assert store.path("staging") == tmp_path / TUF_DIR / "staging.json"


def test_a_seeded_root_is_the_start_but_pins_no_trusted_root(
    store: TufStore, repo: TufRepo
) -> None:
    pin = store.load("production")
    assert (pin.root, pin.root_version) == (repo.roots[0], 1)
    assert pin.accepted == TufAccepted()
    assert store.pinned("production") is None
    assert store.load("staging").root == shipped_tuf_root("staging")


def test_save_then_load_round_trips(store: TufStore, repo: TufRepo) -> None:
    repo.publish({"trusted_root.json": TRUSTED_ROOT, "signing_config.v0.2.json": b"{}"})
    result = _chain(repo)
    saved = store.save("production", result, now=SAVED_AT)
    loaded = TufStore(store.directory).load("production")
    assert saved == loaded
    assert (loaded.root, loaded.root_version) == (repo.roots[-1], 3)
    assert loaded.targets_version == 1
    assert loaded.accepted == TufAccepted(repo.timestamp, repo.snapshot, repo.targets)
    assert loaded.trusted_root == TRUSTED_ROOT
    assert loaded.trusted_root_sha256 == result.trusted_root_sha256
    assert (loaded.signing_config, loaded.signing_config_name) == (
        b"{}",
        "signing_config.v0.2.json",
    )
    assert loaded.updated == format_rfc3339(SAVED_AT)
    assert store.pinned("production") == loaded
    assert loaded.label() == (
        f"Sigstore TUF (production, root v3, targets v1, updated {format_rfc3339(SAVED_AT)})"
    )


def test_the_state_is_one_json_document(store: TufStore, repo: TufRepo) -> None:
    # (was tests/host/test_tufroot.py::test_pin_state_is_one_json_document)
    repo.publish()
    result = _chain(repo)
    store.save("production", result, now=SAVED_AT)
    doc = json.loads(store.path("production").read_text())
    assert doc == {
        "repository": "production",
        "updated": format_rfc3339(SAVED_AT),
        "rootVersion": 3,
        "targetsVersion": 1,
        "trustedRootSha256": result.trusted_root_sha256,
        "root": repo.roots[-1].decode(),
        "timestamp": repo.timestamp.decode(),
        "snapshot": repo.snapshot.decode(),
        "targets": repo.targets.decode(),
        "trustedRoot": TRUSTED_ROOT.decode(),
        "signingConfig": None,
        "signingConfigName": None,
    }
    assert sorted(p.name for p in store.path("production").parent.iterdir()) == [
        ".tuf.lock",
        "production.json",
    ]  # no temporary file left behind


def test_a_newer_result_replaces_the_pin(store: TufStore, repo: TufRepo) -> None:
    repo.publish()
    store.save("production", _chain(repo), now=SAVED_AT)
    repo.publish()
    store.save("production", _chain(repo), now=SAVED_AT)
    assert store.load("production").targets_version == 2
    store.save("production", _chain(repo), now=SAVED_AT)  # the same versions again: fine
    assert store.load("production").targets_version == 2


def test_older_targets_are_refused_and_nothing_is_written(store: TufStore, repo: TufRepo) -> None:
    repo.publish()
    old = _chain(repo)
    repo.publish()
    store.save("production", _chain(repo), now=SAVED_AT)
    state = store.path("production").read_bytes()
    with pytest.raises(TrustMaterialError, match=r"newer TUF state .* \(root v3, targets v2\)"):
        store.save("production", old, now=SAVED_AT)
    assert store.path("production").read_bytes() == state


def test_an_older_root_is_refused(store: TufStore, repo: TufRepo) -> None:
    repo.publish()
    store.save("production", _chain(repo), now=SAVED_AT)
    state = store.path("production").read_bytes()
    older = verify_chain(
        repo.roots[0],
        repo.roots[1:2],  # stops at root v2
        repo.timestamp,
        repo.snapshot,
        repo.targets,
        target_files=repo.files,
        at=NOW,
    )
    assert older.root_version == 2
    with pytest.raises(TrustMaterialError, match="newer TUF state was pinned meanwhile"):
        store.save("production", older, now=SAVED_AT)
    assert store.path("production").read_bytes() == state


def test_a_result_older_than_the_shipped_root_is_refused(tmp_path: Path, repo: TufRepo) -> None:
    repo.publish()  # root v3 < the shipped production root
    store = TufStore(tmp_path)
    with pytest.raises(TrustMaterialError, match="newer TUF state"):
        store.save("production", _chain(repo), now=SAVED_AT)
    assert not store.path("production").exists()


def _write(store: TufStore, doc: object) -> str:
    path = store.path("production")
    text = doc if isinstance(doc, str) else json.dumps(doc)
    path.write_text(text)
    return text


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "is unreadable"),
        ([], "TUF state .* is malformed"),
        ({"root": ROOT_V1}, "TUF state .* is malformed"),  # no repository
        ({"repository": "staging", "root": ROOT_V1}, "TUF state .* is malformed"),  # staging's
        ({"repository": "production"}, "has no root"),
        ({"repository": "production", "root": 1}, "root is not a string"),
        ({"repository": "production", "root": "{"}, "TUF root in .* is malformed"),
        ({"repository": "production", "root": "[]"}, "TUF root in .* is malformed"),
        (
            {"repository": "production", "root": '{"signed": {"version": "3"}}'},
            "has no integer version",
        ),
        (
            {"repository": "production", "root": '{"signed": {"version": true}}'},
            "has no integer version",
        ),
        (
            {"repository": "production", "root": ROOT_V1, "targets": 2},
            "targets is not a string",
        ),
        (
            {"repository": "production", "root": ROOT_V1, "trustedRoot": {}},
            "trustedRoot is not a string",
        ),
    ],
)
def test_a_corrupt_state_is_refused_never_reset(
    store: TufStore, repo: TufRepo, doc: object, message: str
) -> None:
    text = _write(store, doc)
    calls: list[Callable[[], object]] = [
        lambda: store.load("production"),
        lambda: store.pinned("production"),
        lambda: store.save("production", _published(repo), now=SAVED_AT),
    ]
    for call in calls:
        with pytest.raises(TrustMaterialError, match=message):
            call()
    assert store.path("production").read_text() == text


def _published(repo: TufRepo) -> TufResult:
    repo.publish()
    return _chain(repo)


def test_an_unwritable_directory_is_an_input_error(tmp_path: Path, repo: TufRepo) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot write the TUF state"):
        TufStore(tmp_path / "file").save("production", _published(repo), now=SAVED_AT)


_SAVE = (
    "import pickle, sys\n"
    "from datetime import UTC, datetime\n"
    "from pathlib import Path\n"
    "from dhi_offline.errors import TrustMaterialError\n"
    "from dhi_offline.trust.tuf_store import TufStore\n"
    "result = pickle.loads(Path(sys.argv[2]).read_bytes())\n"
    "print('ready', flush=True)\n"
    "try:\n"
    "    TufStore(Path(sys.argv[1])).save('production', result, now=datetime.now(UTC))\n"
    "except TrustMaterialError:\n"
    "    sys.exit(3)\n"
)


def _saver(store: TufStore, result: TufResult, file: Path) -> subprocess.Popen[str]:
    file.write_bytes(pickle.dumps(result))
    return subprocess.Popen(
        [sys.executable, "-c", _SAVE, str(store.directory), str(file)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_save_waits_for_the_lock(store: TufStore, repo: TufRepo, tmp_path: Path) -> None:
    state = store.path("production").read_bytes()
    fd = os.open(store.directory / TUF_DIR / ".tuf.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        child = _saver(store, _published(repo), tmp_path / "result.pickle")
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(1.0)  # an unlocked save takes milliseconds
        assert child.poll() is None
        assert store.path("production").read_bytes() == state
    finally:
        os.close(fd)  # releases the lock
    assert child.wait(timeout=60) == 0
    assert store.load("production").targets_version == 1


def test_concurrent_saves_keep_the_newest(store: TufStore, repo: TufRepo, tmp_path: Path) -> None:
    results = [_published(repo) for _ in range(4)]  # targets v1..v4
    children = [
        _saver(store, r, tmp_path / f"result{n}.pickle") for n, r in enumerate(reversed(results))
    ]
    codes = [c.wait(timeout=120) for c in children]
    assert set(codes) <= {0, 3}  # saved, or refused as older than what landed first
    assert codes[0] == 0  # the newest is never refused
    pin = store.load("production")
    assert pin.targets_version == 4
    assert pin.accepted.targets == results[-1].targets


def test_loading_the_pins_does_not_import_python_tuf() -> None:
    # Every verification reads the pins: python-tuf would cost ~15 ms of start-up.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from dhi_offline.trust.tuf_store import TufStore\n"
        "TufStore(Path('/nonexistent')).load('production')\n"
        "print(sorted(m for m in sys.modules if m == 'tuf' or m.startswith('tuf.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
