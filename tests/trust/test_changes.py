"""Publisher keyring changes a bundle carries are surfaced as notes, never applied
(``dhi_offline/trust/changes.py``; ``docs/trust.md`` "Publisher keyring changes")."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.trust.changes import keyring_changes, keyring_notes
from dhi_offline.trust.keyring import Keyring, KeyringEntry, shipped_dhi_keyring
from dhi_offline.trust.keys import PublicKey, load_pem
from tests.support.sample import (
    PRODUCTION_ROOT,
    export_argv,
    make_sample_site,
    public_pem,
    run_cli,
)

T = datetime(2025, 4, 16, 20, 37, 45, tzinfo=UTC)


def _key() -> PublicKey:
    return load_pem(public_pem(ec.generate_private_key(ec.SECP256R1())))


# -- the pure comparison ---------------------------------------------------------------


def test_equal_keyrings_and_keys_only_the_host_pins_are_no_change() -> None:
    a, b = _key(), _key()
    host = Keyring("host", (KeyringEntry("a", a), KeyringEntry("b", b)))
    carried = Keyring("bundle", (KeyringEntry("renamed-a", a),))  # names are not compared
    assert keyring_changes(host, carried, shipped=Keyring("none")) == ()


def test_a_key_the_host_does_not_pin_is_one_note_with_fingerprint_and_commands() -> None:
    a, new = _key(), _key()
    host = Keyring("host", (KeyringEntry("a", a),))
    carried = Keyring("bundle", (KeyringEntry("a", a), KeyringEntry("dhi-3", new)))
    (change,) = keyring_changes(host, carried, shipped=Keyring("none"))
    assert change.kind == "unpinned" and change.pinned is None
    note = change.note("/b/x.dhi.tar.zst")
    assert note == (
        f"bundle keyring names publisher key dhi-3 (ecdsa-p256 sha256:{new.key_id}; active, "
        "no validity window) that this host does not pin; to trust it, write it out with "
        "'dhi-offline trust bundle-keys /b/x.dhi.tar.zst --write bundle-keys', compare the "
        "fingerprint with the one the publisher publishes, then: dhi-offline trust add "
        "bundle-keys/dhi-3.pub --role publisher --name dhi-3"
    )


def test_a_revoked_key_the_host_does_not_pin_is_noted_without_a_command() -> None:
    carried = Keyring("bundle", (KeyringEntry("old", _key(), "revoked"),))
    (change,) = keyring_changes(Keyring("host"), carried, shipped=Keyring("none"))
    assert change.note("b").endswith("revoked by its publisher, nothing to pin")
    assert "trust add" not in change.note("b")


def test_a_name_the_bundle_chose_never_reaches_a_path_or_command_unchanged() -> None:
    new = _key()
    carried = Keyring("bundle", (KeyringEntry("../../etc/x; rm -rf ~", new),))
    note = keyring_changes(Keyring("host"), carried, shipped=Keyring("none"))[0].note("b c")
    name = f"key-{new.key_id[:12]}"
    assert f"trust add bundle-keys/{name}.pub --role publisher --name {name}" in note
    assert "../" not in note and "rm -rf" not in note
    assert "trust bundle-keys 'b c' --write" in note  # the bundle path is shell-quoted


def test_status_and_window_changes_of_a_pinned_key() -> None:
    k = _key()
    host = Keyring("host", (KeyringEntry("acme", k),))
    retired = Keyring("bundle", (KeyringEntry("acme-1", k, "inactive", not_after=T),))
    (change,) = keyring_changes(host, retired, shipped=Keyring("none"))
    assert change.kind == "changed" and change.narrows
    assert change.note("b") == (
        f"bundle keyring lists publisher key acme-1 (ecdsa-p256 sha256:{k.key_id}) as "
        "inactive, valid until 2025-04-16T20:37:45Z; this host pins it as active, no "
        "validity window and keeps doing so; if the publisher confirms the change, stop "
        "trusting it here with: dhi-offline trust remove acme"
    )
    later = Keyring("bundle", (KeyringEntry("acme", k, not_before=T),))
    assert keyring_changes(host, later, shipped=Keyring("none"))[0].narrows
    # The other way round (the bundle trusts the key more): pinning it adopts that.
    host_retired = Keyring("host", retired.entries)
    (wider,) = keyring_changes(host_retired, host, shipped=Keyring("none"))
    assert not wider.narrows
    assert wider.note("b").endswith("--role publisher --name acme")


def test_a_shipped_key_is_distrusted_and_a_distrusted_one_not_noted() -> None:
    shipped = shipped_dhi_keyring()
    dhi2 = next(e for e in shipped.entries if e.name == "dhi-2")
    revoked = Keyring("bundle", (KeyringEntry("dhi-2", dhi2.key, "revoked"),))
    (change,) = keyring_changes(shipped, revoked)
    assert change.shipped and change.note("b").endswith("dhi-offline trust distrust dhi-2")
    assert keyring_changes(shipped, revoked, ignore={dhi2.key_id}) == ()


def test_an_unreadable_bundle_keyring_is_a_warning() -> None:
    warnings: list[str] = []
    assert keyring_notes(b"{", Keyring("host"), bundle="b", warnings=warnings) == []
    assert warnings == ["the bundle's publisher keyring is unreadable: keyring is not valid JSON"]


# -- end to end: export, verify, pin -------------------------------------------------------


def _verify(d: Path, bundle: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(
        [
            "verify",
            str(d / bundle),
            "--trusted-root",
            str(PRODUCTION_ROOT),
            "--format",
            "json",
            *extra,
        ]
    )
    assert code in (0, 1), err
    doc: dict[str, Any] = json.loads(out)
    return code, doc


def _keyring_notes(doc: dict[str, Any]) -> list[str]:
    return [n for n in doc["notes"] if n.startswith("bundle keyring")]


def _attestation_checks(doc: dict[str, Any]) -> set[str]:
    return {c["status"] for c in doc["checks"] if c["step"] == "6 attestation"}


def test_new_publisher_key_fails_until_pinned_with_the_noted_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_sample_site(tmp_path, monkeypatch)
    monkeypatch.chdir(d)  # the note's commands write bundle-keys/ here
    (d / "first.pub").write_bytes(public_pem(ec.generate_private_key(ec.SECP256R1())))
    # The bundle's keyring: key-1 (the host pins it), key-2 (signed everything, new).
    argv = export_argv(d, "b.dhi.tar.zst", "--key", str(d / "publisher.pub"), key="first.pub")
    assert run_cli(argv)[0] == 0
    assert run_cli(["trust", "add", str(d / "exporter.pub"), "--role", "exporter"])[0] == 0
    assert run_cli(["trust", "add", str(d / "first.pub"), "--role", "publisher"])[0] == 0
    new = load_pem((d / "publisher.pub").read_bytes())

    code, doc = _verify(d, "b.dhi.tar.zst")
    assert code == 1 and doc["verdict"] == "FAIL"
    assert _attestation_checks(doc) == {"failed"}  # nothing trusted from the bundle
    (note,) = _keyring_notes(doc)
    assert f"publisher key key-2 (ecdsa-p256 sha256:{new.key_id}; active" in note
    assert not any("keyring" in w for w in doc["warnings"])

    # --trust-bundle-keys (unsafe) is still the only way to use the carried key unpinned.
    code, unsafe = _verify(d, "b.dhi.tar.zst", "--trust-bundle-keys")
    assert code == 0 and unsafe["verdict"] == "UNSAFE-PASS"

    # The operator runs what the note says.
    write = re.search(r"'dhi-offline (trust bundle-keys [^']+)'", note)
    pin = re.search(r"then: dhi-offline (trust add .+)$", note)
    assert write and pin
    code, out, err = run_cli(shlex.split(write.group(1)))
    assert code == 0, err
    assert f"NOT PINNED key-2  ecdsa-p256 sha256:{new.key_id}  active" in out
    assert re.search(r"^pinned +key-1 ", out, re.M)
    assert (d / "bundle-keys" / "key-2.pub").read_bytes() == new.pem()
    code, out, err = run_cli(shlex.split(pin.group(1)))
    assert code == 0 and f"pinned publisher key key-2 {new.key_id}" in out, err

    code, doc = _verify(d, "b.dhi.tar.zst")
    assert code == 0 and doc["verdict"] == "PASS"
    assert _attestation_checks(doc) == {"passed"} and _keyring_notes(doc) == []


def test_status_change_of_a_pinned_key_is_noted_and_the_host_pin_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_sample_site(tmp_path, monkeypatch)
    key = load_pem((d / "publisher.pub").read_bytes())
    until = (datetime.now(UTC) + timedelta(days=60)).replace(microsecond=0)
    retiring = Keyring("acme", (KeyringEntry("acme-1", key, "inactive", not_after=until),))
    # The exporter's keyring (the shipped one when no --key is given) retires the key.
    monkeypatch.setattr("dhi_offline.cli.export.shipped_dhi_keyring", lambda: retiring)
    argv = export_argv(d, "b.dhi.tar.zst")
    i = argv.index("--key")
    assert run_cli(argv[:i] + argv[i + 2 :])[0] == 0
    assert run_cli(["trust", "add", str(d / "exporter.pub"), "--role", "exporter"])[0] == 0
    assert run_cli(["trust", "add", str(d / "publisher.pub"), "--role", "publisher"])[0] == 0
    name = f"publisher-{key.key_id[:12]}"  # trust add's default name

    code, doc = _verify(d, "b.dhi.tar.zst")
    assert code == 0 and doc["verdict"] == "PASS"  # a note, not a warning or a failure
    (note,) = _keyring_notes(doc)
    assert note.startswith(
        f"bundle keyring lists publisher key acme-1 (ecdsa-p256 sha256:{key.key_id}) as "
        f"inactive, valid until {until.isoformat().replace('+00:00', 'Z')}; this host pins "
        "it as active, no validity window"
    )
    assert note.endswith(f"stop trusting it here with: dhi-offline trust remove {name}")
    code, out, _ = run_cli(["trust", "bundle-keys", str(d / "b.dhi.tar.zst")])
    assert code == 0 and out.startswith("CHANGED    acme-1  ")
    assert out.rstrip().endswith("(this host: active, no validity window)")
