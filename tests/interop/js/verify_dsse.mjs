// Verify one DSSE sigstore bundle signed with a plain public key, with sigstore-js
// (@sigstore/verify), as an offline site's clients would: no transparency log, no CT
// log, no timestamp authority, an empty trusted root, the key given out of band.
//
// usage: node verify_dsse.mjs BUNDLE.json PUBLIC_KEY.pem
// exit 0: verified; exit 1: refused (one line on stderr); exit 2: bad usage.
//
// What @sigstore/verify 3.1.1 does with such a bundle (see dist/verifier.js):
// - zero timestamps pass at timestampThreshold 0, zero tlog entries at tlogThreshold 0;
// - the key is looked up by verificationMaterial.publicKey.hint (a missing hint is "");
//   its validFor window is only checked against timestamps, so with none it is not;
// - the signature is checked over the DSSE PAE of the first (and only allowed)
//   signature with node's crypto.verify and no explicit digest: SHA-256 for P-256.
// It does not look at the payload: the caller checks the statement's subjects.

import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { PublicKeyDetails, TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';

const [bundlePath, keyPath, extra] = process.argv.slice(2);
if (!keyPath || extra !== undefined) {
  console.error('usage: node verify_dsse.mjs BUNDLE.json PUBLIC_KEY.pem');
  process.exit(2);
}

// Nothing to trust but the site key: no logs, no CAs, no TSAs.
const EMPTY_ROOT = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

try {
  const bundle = bundleFromJSON(JSON.parse(readFileSync(bundlePath, 'utf8')));
  if (bundle.content.$case !== 'dsseEnvelope') {
    throw new Error(`not a DSSE bundle: content is ${bundle.content.$case}`);
  }
  if (bundle.verificationMaterial.content?.$case !== 'publicKey') {
    throw new Error('not signed with a public key (no verificationMaterial.publicKey)');
  }
  const der = createPublicKey(readFileSync(keyPath)).export({ type: 'spki', format: 'der' });
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  const key = {
    rawBytes: der,
    keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
    validFor: { start: new Date('2000-01-01T00:00:00Z') },
  };
  const trustMaterial = toTrustMaterial(TrustedRoot.fromJSON(EMPTY_ROOT), { [hint]: key });
  const verifier = new Verifier(trustMaterial, {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle));
  const payloadType = bundle.content.dsseEnvelope.payloadType;
  console.log(`verified: ${bundlePath} (payloadType ${payloadType}, hint "${hint}")`);
} catch (e) {
  const code = e?.code ? `${e.code}: ` : '';
  // @sigstore/bundle's ValidationError names the offending fields.
  const fields = Array.isArray(e?.fields) ? ` (${e.fields.join(', ')})` : '';
  console.error(`refused: ${code}${String(e?.message ?? e).split('\n')[0]}${fields}`);
  process.exit(1);
}
