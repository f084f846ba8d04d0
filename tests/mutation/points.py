"""Every security check of the trust path as a mutation point.

A point names the file, the exact code of the check (found exactly once), the smallest
edit that disables it, and the tests expected to catch its loss. ``make mutants`` applies
each edit in a scratch copy and runs those tests; ``test_points.py`` (part of ``make
test``) fails when a point's code no longer matches, so this list moves with the code.

``acceptance`` marks checks on the path that decides whether a bundle is accepted: each
of them must be caught by at least two independent tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """One check and how to remove it."""

    id: str
    check: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    acceptance: bool = True


CALL = "tests/verify/test_call_sites.py"
ATT = "tests/verify/test_attestation.py"
IMPORT = "tests/cli/test_import_attacks.py"
ARCHIVE_CLI = "tests/cli/test_archive_evidence.py"
STORE = "tests/archive/test_store.py"
CKPT = "tests/cli/test_import_checkpoints.py"
READER = "tests/bundle/test_bundle_reader.py"
SIGNING = "tests/bundle/test_bundle_signing.py"
CONF = "tests/verify/test_conformance.py"
POLICY = "tests/verify/test_policy.py"
TLOG = "tests/tlog"
DSSE = "tests/evidence/test_dsse_intoto.py"
LAZY = "tests/evidence/test_intoto_lazy.py"
BUNDLE_CALLS = "tests/cli/test_bundle_call_sites.py"

POINTS: tuple[Point, ...] = (
    # -- bundle: manifest signature and members (steps 1-3) -----------------------------
    Point(
        "manifest-signature",
        "the manifest signature verifies with the pinned exporter key",
        "dhi_offline/bundle/signing.py",
        "        verify_envelope(envelope, key, exactly_one=True, expected_keyid=keyid)",
        "        pass",
        (SIGNING, IMPORT, BUNDLE_CALLS),
    ),
    Point(
        "manifest-signs-these-bytes",
        "the DSSE payload is exactly the manifest member's bytes",
        "dhi_offline/bundle/signing.py",
        "    if envelope.payload != manifest_bytes:",
        "    if False:",
        (SIGNING, IMPORT, BUNDLE_CALLS),
    ),
    Point(
        "exporter-key-pinned",
        "the signing key is a pinned exporter key",
        "dhi_offline/bundle/signing.py",
        "    if key is None:\n        # The keyid",
        "    if False:\n        # The keyid",
        (SIGNING, IMPORT, BUNDLE_CALLS),
    ),
    Point(
        "member-sha256",
        "every member's size and sha256 match the signed manifest",
        "dhi_offline/bundle/reader.py",
        "        if size != member.size or sha256 != member.sha256:",
        "        if False:",
        (READER, IMPORT, BUNDLE_CALLS),
    ),
    Point(
        "member-listed",
        "a member the signed manifest does not list is refused",
        "dhi_offline/bundle/reader.py",
        "        if member is None:\n            raise MemberIntegrityError(",
        "        if False:\n            raise MemberIntegrityError(",
        (READER, IMPORT, BUNDLE_CALLS),
    ),
    Point(
        "member-complete",
        "a member the manifest lists must be in the archive",
        "dhi_offline/bundle/reader.py",
        "    if missing:\n        more =",
        "    if False:\n        more =",
        (READER, BUNDLE_CALLS),
    ),
    # -- bundle: freshness and history (step 4) -----------------------------------------
    Point(
        "expiry",
        "a bundle past its expiry is refused",
        "dhi_offline/verify/bundle.py",
        "    if manifest.expires < options.at:",
        "    if False:",
        (IMPORT, ARCHIVE_CLI),
    ),
    Point(
        "rollback",
        "a sequence lower than the last imported from that exporter is refused",
        "dhi_offline/verify/bundle.py",
        "    elif last is not None and manifest.sequence < last:",
        "    elif False:",
        (IMPORT, ARCHIVE_CLI),
    ),
    Point(
        "checkpoint-signed",
        "every checkpoint in the bundle is signed by its log",
        "dhi_offline/verify/bundle.py",
        "            verify_checkpoint(new, log)\n        with _refusing_as",
        "            pass\n        with _refusing_as",
        (BUNDLE_CALLS, CKPT),
    ),
    Point(
        "consistency-record-host",
        "consistency records are verified on the host",
        "dhi_offline/verify/bundle.py",
        "            verify_consistency_record(link, log)",
        "            pass",
        (BUNDLE_CALLS, CKPT),
    ),
    Point(
        "fork-same-size",
        "a checkpoint of the size seen before with another root is a fork",
        "dhi_offline/verify/bundle.py",
        "            if seen.tree_size == new.tree_size and seen.root_hash != new.root_hash:",
        "            if False:",
        (CKPT, BUNDLE_CALLS),
    ),
    # -- images (step 5) ------------------------------------------------------------------
    Point(
        "index-lists-platform",
        "the stored index lists each platform digest as that platform",
        "dhi_offline/verify/bundle.py",
        "                if listed.get(pdigest) != plat:",
        "                if False:",
        (BUNDLE_CALLS,),
    ),
    Point(
        "unclaimed-attestation",
        "an attestation about no platform of the bundle's images fails",
        "dhi_offline/verify/bundle.py",
        "        if r.id not in claimed:",
        "        if False:",
        (IMPORT, BUNDLE_CALLS),
    ),
    # -- attestations (step 6) ------------------------------------------------------------
    Point(
        "oci-subject-attestation",
        "the attestation manifest's OCI subject is the platform it is presented for",
        "dhi_offline/verify/layouts/checks.py",
        '    check_subject_field(manifest, record.subject, "attestation manifest")',
        "    pass",
        (CALL, ATT),
    ),
    Point(
        "oci-subject-signature",
        "the signature manifest's OCI subject is the attestation manifest",
        "dhi_offline/verify/layouts/dhi_scout.py",
        "                checks.check_subject_field("
        'sig_manifest, record.manifest, "signature manifest")',
        "                pass",
        (CALL, ATT),
    ),
    Point(
        "oci-subject-bundle",
        "a sigstore-bundle referrer's OCI subject is the platform",
        "dhi_offline/verify/layouts/sigstore_bundle.py",
        '        checks.check_subject_field(manifest, record.subject, "bundle manifest")',
        "        pass",
        (CALL, ATT),
    ),
    Point(
        "statement-subject-bare",
        "a bare statement (DHI/Scout, BuildKit) is about the platform's digest",
        "dhi_offline/verify/layouts/checks.py",
        "    statement.require_subject(record.subject)\n    return statement",
        "    return statement",
        (CALL, ATT, IMPORT),
    ),
    Point(
        "statement-subject-cosign-att",
        "a cosign .att statement is about the platform's digest",
        "dhi_offline/verify/layouts/cosign_att.py",
        "        statement = parse_statement(envelope.payload, prepared=prepared)\n"
        "        statement.require_subject(record.subject)",
        "        statement = parse_statement(envelope.payload, prepared=prepared)",
        (ATT, CALL),
    ),
    Point(
        "simple-signing-names-manifest",
        "the simple-signing payload names the attestation manifest it signs",
        "dhi_offline/verify/layouts/dhi_scout.py",
        "                require_manifest_digest(simple, record.manifest)",
        "                pass",
        (CALL, ATT),
    ),
    Point(
        "simple-signing-signature",
        "the simple-signing payload is signed by a pinned publisher key",
        "dhi_offline/verify/layouts/dhi_scout.py",
        "                    k.key.verify(sig, data)",
        "                    pass",
        (ATT, IMPORT),
    ),
    Point(
        "cosign-att-dsse-signature",
        "a cosign .att DSSE envelope is signed by a pinned publisher key",
        "dhi_offline/verify/layouts/cosign_att.py",
        "            lambda k: verify_envelope(envelope, k.key),",
        "            lambda k: envelope.signatures[0],",
        (CALL,),
    ),
    Point(
        "log-entry-dhi",
        "a logged DHI signature's Rekor entry verifies (binding, SET, proof)",
        "dhi_offline/verify/layouts/dhi_scout.py",
        "                    verified, when = verify_log_entry("
        "tlog_entry, content, trust.trusted_root)",
        "                    verified, when = VerifiedLogEntry("
        '"", tlog_entry.log_index, None, False, None), None',
        (ATT,),
    ),
    Point(
        "key-window",
        "the publisher key was valid at every verified signing time (or at the reference time)",
        "dhi_offline/verify/layouts/dhi_scout.py",
        "                entry.check_signing_times(times, fallback=at)",
        "                pass",
        (ATT, IMPORT),
    ),
    Point(
        "completion-is-signed-entry",
        "an inclusion proof stored at export belongs to the signed entry",
        "dhi_offline/verify/layouts/checks.py",
        "    if fetched.body != entry.body or fetched.log_id != entry.log_id:",
        "    if False:",
        (ATT, CALL),
    ),
    # -- evidence parsing -----------------------------------------------------------------
    Point(
        "duplicate-key-fast-path",
        "a duplicate top-level key before a large predicate is refused",
        "dhi_offline/evidence/intoto.py",
        "            if key in top:\n                raise _NotFast",
        "            if False:\n                raise _NotFast",
        (CALL,),
    ),
    Point(
        "duplicate-key-after-predicate",
        "a top-level key repeated after a leading predicate is refused",
        "dhi_offline/evidence/intoto.py",
        '        if "predicate" in rest or rest.keys() & top.keys():',
        "        if False:",
        (LAZY,),
    ),
    # -- transparency log -----------------------------------------------------------------
    Point(
        "set-signature",
        "the signed entry timestamp verifies with the log's key",
        "dhi_offline/tlog/set.py",
        "        log.key.verify(signature, payload)",
        "        pass",
        (TLOG, CONF, ATT, CALL),
    ),
    Point(
        "inclusion-root",
        "the inclusion proof leads to the stated root",
        "dhi_offline/tlog/merkle.py",
        "    if not _same(computed, bytes(root)):",
        "    if False:",
        (TLOG, CONF),
    ),
    Point(
        "checkpoint-signature",
        "a checkpoint's note signature verifies with the log's key",
        "dhi_offline/tlog/checkpoint.py",
        "            _verify_note_signature(key, sig, checkpoint.signed_text)",
        "            pass",
        (TLOG, CONF),
    ),
    Point(
        "checkpoint-root",
        "a checkpoint commits to the inclusion proof's root hash",
        "dhi_offline/tlog/checkpoint.py",
        "    if not hmac.compare_digest(checkpoint.root_hash, bytes(root_hash)):",
        "    if False:",
        (TLOG, CONF),
    ),
    Point(
        "checkpoint-size",
        "a checkpoint commits to the inclusion proof's tree size",
        "dhi_offline/tlog/checkpoint.py",
        "    if checkpoint.tree_size != tree_size:",
        "    if False:",
        (TLOG, CONF),
    ),
    Point(
        "entry-binding-digest",
        "a hashedrekord entry records the signed artifact digest (CVE-2022-36056)",
        "dhi_offline/tlog/body.py",
        "    if not _same(data_hash, content.artifact_digest):",
        "    if False:",
        (TLOG, CONF, ATT, CALL),
    ),
    Point(
        "entry-binding-signature",
        "a hashedrekord entry records the exact signature",
        "dhi_offline/tlog/body.py",
        '    if not _same(b64decode(sig.get("content"), what="spec.signature.content"), '
        "content.signature):",
        "    if False:",
        (TLOG, CONF, ATT, CALL),
    ),
    # -- evidence signatures and parsing ---------------------------------------------------
    Point(
        "dsse-signature",
        "a DSSE envelope's signature verifies over its PAE",
        "dhi_offline/evidence/dsse.py",
        "            key.verify(s.sig, message)",
        "            pass",
        (DSSE, CONF, CALL, SIGNING),
    ),
    Point(
        "tar-regular-files-only",
        "a tar member that is a link, device or directory is refused",
        "dhi_offline/bundle/tarformat.py",
        '    if typeflag != b"0":',
        "    if False:",
        ("tests/bundle/test_tarformat.py", READER),
    ),
    Point(
        "path-traversal",
        "a member path with a '..' segment is refused",
        "dhi_offline/bundle/layout.py",
        '    if ".." in segments:',
        "    if False:",
        ("tests/bundle/test_bundle_layout.py", READER),
    ),
    # -- single sigstore bundles ----------------------------------------------------------
    Point(
        "message-signature",
        "a key-signed message-signature bundle's signature verifies over the artifact",
        "dhi_offline/verify/sigstore.py",
        "        signing_key.verify_digest(ms.signature, artifact.sha256)",
        "        pass",
        (CONF,),
        acceptance=False,
    ),
    Point(
        "identity-issuer",
        "the certificate's OIDC issuer is the one expected",
        "dhi_offline/evidence/certificate.py",
        "    elif found.issuer != issuer:",
        "    elif False:",
        ("tests/evidence/test_certificate.py", "tests/verify/test_sigstore_python_vectors.py"),
        acceptance=False,
    ),
    Point(
        "identity-regexp",
        "the identity regular expression matches a SAN whole",
        "dhi_offline/evidence/certificate.py",
        "        matched = any(re.fullmatch(identity_regexp, s) for s in found.sans)",
        "        matched = True",
        ("tests/cli/test_operator_cli.py",),
        acceptance=False,
    ),
    Point(
        "identity-san",
        "the certificate's identity (SAN) is the one expected",
        "dhi_offline/evidence/certificate.py",
        "        matched = identity in found.sans",
        "        matched = True",
        ("tests/evidence/test_certificate.py", "tests/verify/test_sigstore_python_vectors.py"),
        acceptance=False,
    ),
    # -- policy ---------------------------------------------------------------------------
    Point(
        "tests-passed-no-report",
        "require_passed with no verified test report is a violation",
        "dhi_offline/verify/policy.py",
        "    elif policy.require_tests_passed:\n"
        '        violate(TESTS_PREDICATE, "tests passed", "no verified test report")',
        "    elif False:\n        pass",
        (CALL, POLICY, BUNDLE_CALLS),
    ),
    Point(
        "tests-passed-failures",
        "a test report with failures violates require_passed",
        "dhi_offline/verify/policy.py",
        "            if policy.require_tests_passed and not summary.ok:",
        "            if False:",
        (POLICY, IMPORT, CALL),
    ),
    # -- the evidence archive -------------------------------------------------------------
    Point(
        "archive-line-hash",
        "a log line's hash covers its fields",
        "dhi_offline/archive/store.py",
        "        if _line_hash(line.raw) != line.hash:",
        "        if False:",
        (STORE, ARCHIVE_CLI),
        acceptance=False,
    ),
    Point(
        "archive-chain",
        "each log line chains to the one before",
        "dhi_offline/archive/store.py",
        "        if line.prev != prev:",
        "        if False:",
        (STORE, ARCHIVE_CLI),
        acceptance=False,
    ),
    Point(
        "archive-receipt-agrees",
        "a log line agrees with its receipt",
        "dhi_offline/archive/store.py",
        "                self._check_receipt_agrees(line)",
        "                pass",
        (STORE, ARCHIVE_CLI),
        acceptance=False,
    ),
    Point(
        "archive-leftovers",
        "a receipt or kept bundle no line names is reported",
        "dhi_offline/archive/store.py",
        "                for extra in sorted(self._files(folder) - names):",
        "                for extra in ():",
        (STORE, ARCHIVE_CLI),
        acceptance=False,
    ),
    Point(
        "archive-deleted-log",
        "an empty log over remaining receipts is a deleted log",
        "dhi_offline/archive/store.py",
        "            left = sorted(self._files(RECEIPTS))\n            if left:",
        "            left = sorted(self._files(RECEIPTS))\n            if False:",
        (STORE, ARCHIVE_CLI),
        acceptance=False,
    ),
    Point(
        "archive-expect-head",
        "the log still holds the expected head",
        "dhi_offline/archive/store.py",
        "                if lines[index].hash != digest:",
        "                if False:",
        (STORE, ARCHIVE_CLI),
        acceptance=False,
    ),
)
