import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { generateCertificate } from '../../src/pki/certificate.js';
import { readCaFile } from '../../src/pki/ca-file.js';
import { loadServingCertificate, validityProblem } from '../../src/pki/serving-certificate.js';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/test-ca.js';
import { opensslDir, type OpensslDir } from './fixtures.js';

let o: OpensslDir;
let ca: TestCa;
let leaf: IssuedCertificate;
before(async () => {
  o = await opensslDir();
  ca = await createTestCa();
  leaf = await ca.issue({ dns: ['reef.example.com'], ip: ['10.0.0.1'] });
});
after(() => o.remove());

const subjects = (chainPem: string) => chainPem.split(/(?<=-----END CERTIFICATE-----\n)/).filter(Boolean).map((pem) => new X509Certificate(pem).subject);

test('a PEM bundle in any order: the leaf first, then its intermediate; the root and strangers are not sent', async () => {
  const stranger = await generateCertificate('unrelated');
  await writeFile(o.path('bundle.pem'), ca.rootPem + stranger.certPem + ca.intermediatePem + leaf.keyPem + leaf.certPem);
  const cert = await loadServingCertificate({ certFile: o.path('bundle.pem') });
  assert.deepEqual(subjects(cert.chainPem), ['CN=reef.example.com', 'CN=Reef Test Issuing CA']);
  assert.equal(cert.thumbprint, leaf.thumbprint);
  assert.equal(cert.subject, 'CN=reef.example.com');
  assert.equal(cert.issuer, 'CN=Reef Test Issuing CA');
  assert.equal(cert.names, 'DNS:reef.example.com, IP Address:10.0.0.1');
  assert.equal(cert.selfSigned, false);
  assert.match(cert.publicKeyPin, /^sha256\/\/[A-Za-z0-9+/]{43}=$/);
  assert.equal(validityProblem(cert), undefined);
});

test('certbot layout: fullchain.pem and privkey.pem', async () => {
  await writeFile(o.path('fullchain.pem'), leaf.certPem + ca.intermediatePem);
  await writeFile(o.path('privkey.pem'), leaf.keyPem);
  const cert = await loadServingCertificate({ certFile: o.path('fullchain.pem'), keyFile: o.path('privkey.pem') });
  assert.deepEqual(subjects(cert.chainPem), ['CN=reef.example.com', 'CN=Reef Test Issuing CA']);
});

test('PKCS#12 with its chain, opened by the password; a wrong or missing password is named', async () => {
  await writeFile(o.path('leaf.pem'), leaf.certPem);
  await writeFile(o.path('leaf.key'), leaf.keyPem);
  await writeFile(o.path('chain.pem'), ca.intermediatePem);
  await o.openssl('pkcs12', '-export', '-in', 'leaf.pem', '-inkey', 'leaf.key', '-certfile', 'chain.pem', '-passout', 'pass:s3cret', '-out', 'leaf.pfx');
  const cert = await loadServingCertificate({ certFile: o.path('leaf.pfx'), password: 's3cret' });
  assert.deepEqual(subjects(cert.chainPem), ['CN=reef.example.com', 'CN=Reef Test Issuing CA']);
  await assert.rejects(loadServingCertificate({ certFile: o.path('leaf.pfx'), password: 'wrong' }), { code: 'REEF_BAD_PASSWORD' });
  await assert.rejects(loadServingCertificate({ certFile: o.path('leaf.pfx') }), { code: 'REEF_PASSWORD_REQUIRED' });
});

test('no key, a key of another certificate, a missing file: clear errors', async () => {
  await writeFile(o.path('nokey.pem'), leaf.certPem + ca.intermediatePem);
  await assert.rejects(loadServingCertificate({ certFile: o.path('nokey.pem') }), { code: 'REEF_NO_PRIVATE_KEY' });
  const other = await ca.issue({ dns: ['other.example.com'] });
  await writeFile(o.path('mismatch.pem'), leaf.certPem + other.keyPem);
  await assert.rejects(loadServingCertificate({ certFile: o.path('mismatch.pem') }), { code: 'REEF_KEY_MISMATCH' });
  await assert.rejects(loadServingCertificate({ certFile: o.path('missing.pem') }), { code: 'REEF_FILE_NOT_FOUND' });
});

test('validityProblem: expired and not yet valid certificates are named with their dates', async () => {
  const day = 86400_000;
  const expired = await ca.issue({ dns: ['old.example.com'] }, { notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) });
  await writeFile(o.path('expired.pem'), expired.certPem + expired.keyPem);
  assert.match(validityProblem(await loadServingCertificate({ certFile: o.path('expired.pem') }))!, /^it expired on \d{4}-/);
  const early = await ca.issue({ dns: ['new.example.com'] }, { notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 10 * day) });
  await writeFile(o.path('early.pem'), early.certPem + early.keyPem);
  assert.match(validityProblem(await loadServingCertificate({ certFile: o.path('early.pem') }))!, /^it is not valid before /);
});

test('a self-signed certificate is accepted and said to be so (no HSTS for it)', async () => {
  const self = await generateCertificate('self');
  await writeFile(o.path('self.pem'), self.certPem + self.keyPem);
  const cert = await loadServingCertificate({ certFile: o.path('self.pem') });
  assert.equal(cert.selfSigned, true);
  assert.deepEqual(subjects(cert.chainPem), ['CN=self']);
});

test('generated certificates carry the subjectAltName they are given', async () => {
  const identity = await generateCertificate('Reef Server x', { subjectAltNames: { dns: ['localhost', 'reef.example.com', 'localhost'], ip: ['127.0.0.1', '::1'] } });
  assert.equal(new X509Certificate(identity.certPem).subjectAltName, 'DNS:localhost, DNS:reef.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.equal(new X509Certificate((await generateCertificate('tentacle')).certPem).subjectAltName, undefined);
});

test('readCaFile: the certificates of a CA file, or a clear error', async () => {
  await writeFile(o.path('cas.pem'), ca.rootPem + ca.intermediatePem);
  assert.equal((await readCaFile(o.path('cas.pem'))).length, 2);
  await writeFile(o.path('empty.pem'), 'nothing here\n');
  await assert.rejects(readCaFile(o.path('empty.pem')), /--ca-file .*empty\.pem holds no PEM certificate/);
  await assert.rejects(readCaFile(o.path('absent.pem')), { code: 'REEF_FILE_NOT_FOUND', message: /--ca-file .*absent\.pem does not exist/ });
});
