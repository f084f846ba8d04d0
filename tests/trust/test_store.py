"""The host's trust store (dhi_offline/trust/store.py): pinned keys, one role each,
distrusted shipped keys, one JSON file written atomically under a lock.

The ``trust`` commands that drive it are tested in tests/cli/.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.errors import InputError, TrustMaterialError, UsageError
from dhi_offline.trust.keys import load_pem
from dhi_offline.trust.store import STORE_FILE, TrustStore

RFC3339_SECONDS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def _pem() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


def test_a_store_that_was_never_written_is_empty(store: TrustStore) -> None:
    assert store.keys() == [] and store.distrusted() == {}
    assert not store.directory.exists()  # reading creates nothing


def test_add_round_trips_through_the_file(store: TrustStore) -> None:
    pem = _pem()
    pinned, added = store.add(pem, role="exporter", name="lab")
    assert added
    assert store.path == store.directory / STORE_FILE and store.path.is_file()
    again = TrustStore(store.directory).keys()
    assert again == [pinned]
    assert (again[0].role, again[0].name) == ("exporter", "lab")
    assert again[0].key_id == load_pem(pem).key_id
    assert again[0].added == pinned.added
    assert pinned.added and re.match(RFC3339_SECONDS, pinned.added)
    doc = json.loads(store.path.read_text())
    assert doc == {"keys": [pinned.to_json()], "distrusted": []}
    assert doc["keys"][0]["pem"].encode() == load_pem(pem).pem()


def test_default_name_is_the_role_and_key_id(store: TrustStore) -> None:
    pinned, _ = store.add(_pem(), role="publisher")
    assert pinned.name == f"publisher-{pinned.key_id[:12]}"


def test_pinning_again_for_the_same_role_is_a_no_op(store: TrustStore) -> None:
    pem = _pem()
    first, _ = store.add(pem, role="exporter", name="lab")
    before = store.path.read_bytes()
    again, added = store.add(pem, role="exporter", name="other name")
    assert (again, added) == (first, False)
    assert store.path.read_bytes() == before


def test_a_key_has_one_role(store: TrustStore) -> None:
    pem = _pem()
    store.add(pem, role="exporter", name="lab")
    before = store.path.read_bytes()
    with pytest.raises(UsageError, match=r"already pinned as exporter \(lab\); a key has one role"):
        store.add(pem, role="publisher")
    assert store.path.read_bytes() == before


def test_by_role_keeps_roles_apart(store: TrustStore) -> None:
    exporter, _ = store.add(_pem(), role="exporter")
    publisher, _ = store.add(_pem(), role="publisher")
    assert store.by_role("exporter") == [exporter]
    assert store.by_role("publisher") == [publisher]


def test_unknown_role_and_non_keys_are_refused_before_anything_is_written(
    store: TrustStore,
) -> None:
    with pytest.raises(UsageError, match="role must be exporter or publisher, not 'admin'"):
        store.add(_pem(), role="admin")
    with pytest.raises(TrustMaterialError, match="not a PEM public key"):
        store.add(b"-----BEGIN CERTIFICATE-----\n", role="exporter")
    assert not store.directory.exists()


def test_remove_by_name_or_by_id_prefix(store: TrustStore) -> None:
    a, _ = store.add(_pem(), role="exporter", name="a")
    b, _ = store.add(_pem(), role="publisher", name="b")
    c, _ = store.add(_pem(), role="publisher", name="c")
    assert store.remove("a") == a
    assert store.remove(b.key_id[:8].upper()) == b  # ids match case-insensitively
    assert TrustStore(store.directory).keys() == [c]


def test_remove_refuses_short_unknown_and_ambiguous_names(store: TrustStore) -> None:
    first, _ = store.add(_pem(), role="exporter", name="lab")
    second, _ = store.add(_pem(), role="exporter", name="lab")  # names need not be unique
    before = store.path.read_bytes()
    with pytest.raises(UsageError, match="at least 8 hex digits"):
        store.remove(first.key_id[:7])
    with pytest.raises(UsageError, match=r"^0 pinned keys match 'no-such-key'$"):
        store.remove("no-such-key")
    with pytest.raises(UsageError, match=r"^2 pinned keys match 'lab'$"):
        store.remove("lab")
    assert store.path.read_bytes() == before
    assert store.remove(second.key_id) == second


def test_distrust_is_recorded_once_and_keeps_the_pinned_keys(store: TrustStore) -> None:
    pinned, _ = store.add(_pem(), role="publisher", name="p")
    assert store.distrust("ab" * 32, "dhi-1") is True
    assert store.distrust("ab" * 32, "dhi-1") is False
    reread = TrustStore(store.directory)
    distrusted = reread.distrusted()
    assert list(distrusted) == ["ab" * 32]
    assert re.match(RFC3339_SECONDS, distrusted["ab" * 32])
    assert reread.keys() == [pinned]
    # ...and pinning or unpinning keeps the distrusted list.
    other, _ = store.add(_pem(), role="exporter")
    store.remove(other.key_id)
    assert TrustStore(store.directory).distrusted() == distrusted
    entry = json.loads(store.path.read_text())["distrusted"][0]
    assert (entry["keyId"], entry["name"]) == ("ab" * 32, "dhi-1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is unreadable"),
        ("[]", "is malformed"),
        ('{"keys": {}}', "is malformed"),
        ('{"keys": [], "distrusted": {}}', "malformed distrusted list"),
        ('{"keys": [], "distrusted": [{"added": "x"}]}', "malformed distrusted list"),
    ],
)
def test_a_corrupt_store_is_refused_never_reset(
    store: TrustStore, content: str, message: str
) -> None:
    store.directory.mkdir(parents=True)
    store.path.write_text(content)
    for call in (
        store.keys,
        store.distrusted,
        lambda: store.add(_pem(), role="exporter"),
        lambda: store.distrust("ab" * 32, "dhi-1"),
    ):
        with pytest.raises(TrustMaterialError, match=message):
            call()
    assert store.path.read_text() == content


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"role": "admin"}, "malformed entry"),
        ("key", "malformed entry"),
        ({"role": "exporter", "pem": "nope"}, "not a PEM public key"),
    ],
)
def test_a_corrupt_key_entry_is_refused_never_dropped(
    store: TrustStore, entry: object, message: str
) -> None:
    store.directory.mkdir(parents=True)
    content = json.dumps({"keys": [entry], "distrusted": []})
    store.path.write_text(content)
    for call in (
        store.keys,
        lambda: store.by_role("exporter"),
        lambda: store.add(_pem(), role="exporter"),
        lambda: store.remove("anything"),
        lambda: store.distrust("ab" * 32, "dhi-1"),
    ):
        with pytest.raises(TrustMaterialError, match=message):
            call()
    assert store.path.read_text() == content


def test_a_key_id_that_does_not_match_its_key_is_refused(store: TrustStore) -> None:
    pinned, _ = store.add(_pem(), role="exporter")
    doc = json.loads(store.path.read_text())
    doc["keys"][0]["keyId"] = "0" * 64
    store.path.write_text(json.dumps(doc))
    with pytest.raises(TrustMaterialError, match="key id does not match its key"):
        store.keys()
    assert pinned.key_id != "0" * 64


def test_writes_leave_no_temporary_files(store: TrustStore) -> None:
    a, _ = store.add(_pem(), role="exporter")
    store.distrust("cd" * 32, "dhi-2")
    store.remove(a.key_id)
    assert sorted(p.name for p in store.directory.iterdir()) == [".trust.lock", STORE_FILE]


def test_an_unwritable_directory_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = TrustStore(tmp_path / "file")
    with pytest.raises(InputError, match="cannot write the trust store"):
        store.add(_pem(), role="exporter")


_ADD = (
    "import sys\n"
    "from pathlib import Path\n"
    "from dhi_offline.trust.store import TrustStore\n"
    "store = TrustStore(Path(sys.argv[1]))\n"
    "pems = [Path(p).read_bytes() for p in sys.argv[2:]]\n"
    "print('ready', flush=True)\n"
    "for pem in pems:\n"
    "    store.add(pem, role='publisher')\n"
)


def _adder(directory: Path, pems: list[Path]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _ADD, str(directory), *map(str, pems)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _pem_files(tmp_path: Path, n: int, prefix: str) -> list[Path]:
    out = []
    for i in range(n):
        path = tmp_path / f"{prefix}{i}.pem"
        path.write_bytes(_pem())
        out.append(path)
    return out


def test_a_writer_waits_for_the_lock(store: TrustStore, tmp_path: Path) -> None:
    store.directory.mkdir(parents=True)
    fd = os.open(store.directory / ".trust.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        child = _adder(store.directory, _pem_files(tmp_path, 1, "k"))
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(1.0)  # an unlocked add takes milliseconds
        assert child.poll() is None and not store.path.exists()
    finally:
        os.close(fd)  # releases the lock
    assert child.wait(timeout=60) == 0
    assert len(store.keys()) == 1


def test_concurrent_processes_lose_no_update(store: TrustStore, tmp_path: Path) -> None:
    groups = [_pem_files(tmp_path, 5, f"p{n}-") for n in range(4)]
    children = [_adder(store.directory, pems) for pems in groups]
    assert [c.wait(timeout=120) for c in children] == [0] * len(children)
    expected = {load_pem(p.read_bytes()).key_id for pems in groups for p in pems}
    assert {k.key_id for k in store.keys()} == expected  # noqa: SIM118 - a method, not a dict
