import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateCertificate } from '../../src/pki/certificate.js';
import { spkiPinOfPem } from '../../src/pki/spki-pin.js';
import { runTracked, stopAll, trackedTempDir } from '../support/processes.js';

after(stopAll);

test('the public-key pin is what openssl computes for curl --pinnedpubkey', async () => {
  const identity = await generateCertificate('Reef Server pin-test');
  const dir = await trackedTempDir('reef-spki-');
  await writeFile(join(dir, 'cert.pem'), identity.certPem);
  // The recipe from curl's documentation of --pinnedpubkey.
  const openssl = await runTracked('bash', ['-c', 'openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64', 'pin', join(dir, 'cert.pem')], { timeoutMs: 30_000 });
  assert.equal(openssl.code, 0, openssl.stderr);
  assert.equal(spkiPinOfPem(identity.certPem), `sha256//${openssl.stdout.trim()}`);
  // Another key, another pin.
  assert.notEqual(spkiPinOfPem((await generateCertificate('other')).certPem), spkiPinOfPem(identity.certPem));
});
