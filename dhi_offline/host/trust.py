"""What this host trusts for one run: the trust store, the shipped DHI keyring, and the
keys named on the command line, assembled into a :class:`BundleTrust`.

The rules (``docs/trust.md``): an exporter key verifies bundle manifests only, a
publisher key verifies evidence only; one key can never be both.
"""

from __future__ import annotations

from pathlib import Path

from dhi_offline.errors import InputError, TrustMaterialError, UsageError
from dhi_offline.files import read_file
from dhi_offline.host.tufroot import pinned_trusted_root
from dhi_offline.trust.keyring import Keyring, KeyringEntry, keyring_from_json, shipped_dhi_keyring
from dhi_offline.trust.keys import PublicKey, load_pem
from dhi_offline.trust.shipped import load_trusted_root
from dhi_offline.trust.store import TrustStore
from dhi_offline.verify.bundle import BundleTrust

_KEY_LIMIT = 1024 * 1024


def build_trust(
    *,
    config_dir: Path,
    trust_exporter: list[Path],
    trust_publisher: list[Path],
    trusted_root: Path | None,
    trust_bundle_keys: bool,
) -> BundleTrust:
    """Everything pinned in ``config_dir``'s trust store, plus the keys given.

    Raises:
        UsageError: no exporter key is pinned at all, or one key is in both roles.
        InputError: a key file cannot be read.
        TrustMaterialError: a key, keyring or trusted root is malformed.
    """
    store = TrustStore(config_dir)
    exporters: dict[str, tuple[str, PublicKey]] = {}
    for pinned in store.by_role("exporter"):
        exporters[pinned.key_id] = (pinned.name, pinned.key)
    for path in trust_exporter:
        key = public_key_from_file(path, what="exporter key")
        exporters[key.key_id] = (path.name, key)
    if not exporters:
        raise UsageError(
            "no exporter key is trusted: pin one with "
            "'dhi-offline trust add KEY.pub --role exporter' or pass --trust-exporter KEY.pub"
        )
    shipped = shipped_dhi_keyring()
    distrusted = store.distrusted()
    publishers = Keyring(
        shipped.name, tuple(e for e in shipped.entries if e.key_id not in distrusted)
    )
    for pinned in store.by_role("publisher"):
        publishers = publishers.with_entry(KeyringEntry(pinned.name, pinned.key))
    for path in trust_publisher:
        data = read_file(path, what="publisher key", limit=_KEY_LIMIT)
        if path.suffix == ".json":
            # A keyring document: keys with a status and a validity window.
            for entry in keyring_from_json(data).entries:
                publishers = publishers.with_entry(entry)
        else:
            key = public_key_from_file(path, what="publisher key")
            publishers = publishers.with_entry(KeyringEntry(path.name, key))
    if set(exporters) & {e.key_id for e in publishers.entries}:
        raise UsageError("a key cannot be trusted both as exporter and as publisher")
    if trusted_root is not None:
        root, source = load_trusted_root(trusted_root), f"given with --trusted-root {trusted_root}"
    else:
        # A root pinned through TUF (trust update-root, import) is newer than the shipped one.
        through_tuf = pinned_trusted_root(config_dir, "production")
        root, source = through_tuf or (load_trusted_root(None), "shipped Sigstore production root")
    return BundleTrust(
        exporters=exporters,
        publishers=publishers,
        trusted_root=root,
        trusted_root_source=source,
        trust_bundle_keys=trust_bundle_keys,
        distrusted=tuple(f"{e.name} {e.key_id}" for e in shipped.entries if e.key_id in distrusted),
    )


def public_key_from_file(path: Path, *, what: str) -> PublicKey:
    """A PEM public key file; a private key given by mistake is named as such.

    Raises:
        InputError: unreadable, or a private key.
        TrustMaterialError: not a PEM public key.
    """
    data = read_file(path, what=what, limit=_KEY_LIMIT)
    if b"PRIVATE KEY-----" in data:
        raise InputError(
            f"{what} {path} is a PRIVATE key: give its public half "
            f"(for a key from 'dhi-offline keys generate', {path.with_suffix('.pub')})"
        )
    try:
        return load_pem(data)
    except TrustMaterialError as e:
        raise TrustMaterialError(f"{what} {path}: {e.message}") from e
