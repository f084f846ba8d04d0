// Verify one sigstore bundle with sigstore-js (@sigstore/verify), as another Sigstore
// client would: key-signed, one transparency-log entry required, no CT log, no TSA.
//
// usage: node verify.mjs BUNDLE.json TRUSTED_ROOT.json PUBLIC_KEY.pem ARTIFACT
// exit 0: verified; exit 1: refused (one line on stderr); exit 2: bad usage.

import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { PublicKeyDetails, TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';

const [bundlePath, rootPath, keyPath, artifactPath] = process.argv.slice(2);
if (!artifactPath) {
  console.error('usage: node verify.mjs BUNDLE TRUSTED_ROOT PUBLIC_KEY_PEM ARTIFACT');
  process.exit(2);
}

try {
  const bundleJSON = JSON.parse(readFileSync(bundlePath, 'utf8'));
  const bundle = bundleFromJSON(bundleJSON);
  const trustedRoot = TrustedRoot.fromJSON(JSON.parse(readFileSync(rootPath, 'utf8')));
  const der = createPublicKey(readFileSync(keyPath)).export({ type: 'spki', format: 'der' });
  const hint = bundle.verificationMaterial.content.publicKey?.hint ?? '';
  const key = {
    rawBytes: der,
    keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
    validFor: { start: new Date('2000-01-01T00:00:00Z') },
  };
  const trustMaterial = toTrustMaterial(trustedRoot, { [hint]: key });
  const entity = toSignedEntity(bundle, readFileSync(artifactPath));
  const verifier = new Verifier(trustMaterial, {
    tlogThreshold: 1,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(entity);
  console.log(`verified: ${bundlePath}`);
} catch (e) {
  const code = e?.code ? `${e.code}: ` : '';
  console.error(`refused: ${code}${String(e?.message ?? e).split('\n')[0]}`);
  process.exit(1);
}
