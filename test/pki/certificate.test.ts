import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { isReefError } from '../../src/errors.js';
import { describeCertificate, generateCertificate, identityFromPem } from '../../src/pki/certificate.js';
import { normalizeThumbprint, thumbprintOfPem } from '../../src/pki/thumbprint.js';
import { handshake, opensslDir, type OpensslDir } from './fixtures.js';

const YEAR_MS = 365.25 * 24 * 3600 * 1000;
let o: OpensslDir;
before(async () => {
  o = await opensslDir();
});
after(() => o.remove());

test('generateCertificate makes a self-signed ECDSA P-256 certificate for the name', async () => {
  const identity = await generateCertificate('tentacle-web-01');
  const cert = new X509Certificate(identity.certPem);
  assert.equal(cert.subject, 'CN=tentacle-web-01');
  assert.equal(cert.issuer, 'CN=tentacle-web-01');
  assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(cert.verify(cert.publicKey), 'signature verifies with its own key');
  assert.equal(cert.ca, false);
  assert.ok(Date.parse(cert.validTo) - Date.now() >= 10 * YEAR_MS, `valid until ${cert.validTo}`);
  assert.ok(Date.parse(cert.validFrom) <= Date.now(), 'valid now');
});

test('the thumbprint is the SHA-256 of the DER certificate, as openssl prints it', async () => {
  const identity = await generateCertificate('thumbprint-check');
  const der = new X509Certificate(identity.certPem).raw;
  assert.match(identity.thumbprint, /^[0-9A-F]{64}$/);
  assert.equal(identity.thumbprint, createHash('sha256').update(der).digest('hex').toUpperCase());
  assert.equal(thumbprintOfPem(identity.certPem), identity.thumbprint);
  await writeFile(o.path('generated.crt'), identity.certPem);
  assert.equal(normalizeThumbprint(await o.fingerprint('generated.crt')), identity.thumbprint);
});

test('the key is PKCS#8 PEM and belongs to the certificate', async () => {
  const identity = await generateCertificate('key-check');
  assert.match(identity.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const cert = new X509Certificate(identity.certPem);
  assert.ok(cert.publicKey.equals(createPublicKey(identity.keyPem)));
  // openssl agrees the pair matches and can read the files.
  await writeFile(o.path('key-check.key'), identity.keyPem);
  await writeFile(o.path('key-check.crt'), identity.certPem);
  const fromKey = await o.openssl('pkey', '-in', 'key-check.key', '-pubout');
  const fromCert = await o.openssl('x509', '-in', 'key-check.crt', '-noout', '-pubkey');
  assert.equal(fromKey, fromCert);
});

test('every certificate is new: different keys, serials and thumbprints', async () => {
  const [a, b] = await Promise.all([generateCertificate('same'), generateCertificate('same')]);
  assert.notEqual(a.thumbprint, b.thumbprint);
  assert.notEqual(new X509Certificate(a.certPem).serialNumber, new X509Certificate(b.certPem).serialNumber);
});

test('years sets the validity; an empty name is refused', async () => {
  const short = new X509Certificate((await generateCertificate('short', { years: 1 })).certPem);
  const years = (Date.parse(short.validTo) - Date.parse(short.validFrom)) / YEAR_MS;
  assert.ok(years > 0.99 && years < 1.01, `${years} years`);
  await assert.rejects(generateCertificate('  '), (err) => isReefError(err, 'REEF_INVALID_ARGUMENT'));
});

test('a generated identity works in a mutual TLS handshake', async () => {
  const [server, client] = await Promise.all([generateCertificate('server'), generateCertificate('client')]);
  const seen = await handshake(server, client);
  assert.equal(seen.serverThumbprint, server.thumbprint);
  assert.equal(seen.clientThumbprint, client.thumbprint);
});

test('identityFromPem checks the pair and normalises it', async () => {
  const [a, b] = await Promise.all([generateCertificate('a'), generateCertificate('b')]);
  assert.deepEqual(identityFromPem(a.certPem, a.keyPem), a);
  assert.throws(() => identityFromPem(a.certPem, b.keyPem), (err) => isReefError(err, 'REEF_KEY_MISMATCH'));
  assert.throws(() => identityFromPem('nonsense', a.keyPem), (err) => isReefError(err, 'REEF_BAD_CERTIFICATE'));
  assert.throws(() => identityFromPem(a.certPem, ''), (err) => isReefError(err, 'REEF_NO_PRIVATE_KEY'));
  // A chain in the certificate text: the certificate matching the key is chosen.
  assert.deepEqual(identityFromPem(b.certPem + a.certPem, a.keyPem), a);
});

test('describeCertificate reports subject, issuer, validity and thumbprint', async () => {
  const identity = await generateCertificate('describe-me');
  const info = describeCertificate(identity.certPem);
  assert.equal(info.subject, 'CN=describe-me');
  assert.equal(info.issuer, 'CN=describe-me');
  assert.equal(info.thumbprint, identity.thumbprint);
  assert.ok(info.notBefore.getTime() <= Date.now());
  assert.ok(info.notAfter.getTime() - Date.now() >= 10 * YEAR_MS);
  assert.throws(() => describeCertificate('garbage'), (err) => isReefError(err, 'REEF_BAD_CERTIFICATE'));
});
