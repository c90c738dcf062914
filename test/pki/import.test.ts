import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { isReefError, type ErrorCode } from '../../src/errors.js';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import { importCertificate, importCertificateFiles } from '../../src/pki/import.js';
import { normalizeThumbprint } from '../../src/pki/thumbprint.js';
import { handshake, opensslDir, selfSigned, type OpensslDir } from './fixtures.js';

const PASSWORD = 'correct horse';
const UNICODE_PASSWORD = 'pässwörd-日本';
let o: OpensslDir;
let legacySupported = false;

const code = (expected: ErrorCode) => (err: unknown) => {
  assert.ok(isReefError(err, expected), `expected ${expected}, got ${String(err)}`);
  return true;
};

/** Imports a fixture file and checks the result against what openssl says about `certName`. */
async function importAndCheck(file: string, certName: string, password?: string): Promise<CertificateIdentity> {
  const identity = await importCertificate({ data: await o.read(file), password });
  assert.equal(identity.thumbprint, normalizeThumbprint(await o.fingerprint(certName)), `thumbprint of ${file}`);
  assert.match(identity.keyPem, /^-----BEGIN PRIVATE KEY-----\n[^-]+-----END PRIVATE KEY-----\n$/);
  assert.match(identity.certPem, /^-----BEGIN CERTIFICATE-----\n[^-]+-----END CERTIFICATE-----\n$/);
  assert.ok(new X509Certificate(identity.certPem).checkPrivateKey(createPrivateKey(identity.keyPem)));
  return identity;
}

async function pfx(out: string, key: string, cert: string, password: string, ...extra: string[]): Promise<void> {
  await o.openssl('pkcs12', '-export', '-inkey', key, '-in', cert, '-passout', `pass:${password}`, '-out', out, ...extra);
}

before(async () => {
  o = await opensslDir();
  await Promise.all([
    selfSigned(o, 'rsa', '-newkey', 'rsa:2048'),
    selfSigned(o, 'ec', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'),
    selfSigned(o, 'ec384', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'),
    selfSigned(o, 'ed25519', '-newkey', 'ed25519'),
    selfSigned(o, 'rsa1024', '-newkey', 'rsa:1024'),
    selfSigned(o, 'k1', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'),
  ]);
  legacySupported = await o.tryOpenssl('pkcs12', '-export', '-legacy', '-inkey', 'rsa.key', '-in', 'rsa.crt',
    '-passout', `pass:${PASSWORD}`, '-out', 'rsa.legacy.pfx');
});
after(() => o.remove());

describe('PEM', () => {
  test('RSA 2048: certificate and PKCS#8 key in one text', async () => {
    await writeFile(o.path('rsa.bundle.pem'), Buffer.concat([await o.read('rsa.crt'), await o.read('rsa.key')]));
    await importAndCheck('rsa.bundle.pem', 'rsa.crt');
  });

  test('RSA: key first, then a PKCS#1 "RSA PRIVATE KEY"', async () => {
    await o.openssl('rsa', '-in', 'rsa.key', '-traditional', '-out', 'rsa.pkcs1.key');
    const pkcs1 = await o.read('rsa.pkcs1.key');
    assert.match(pkcs1.toString(), /BEGIN RSA PRIVATE KEY/);
    await writeFile(o.path('rsa.pkcs1.pem'), Buffer.concat([pkcs1, await o.read('rsa.crt')]));
    await importAndCheck('rsa.pkcs1.pem', 'rsa.crt');
  });

  test('EC P-256: certificate and PKCS#8 key', async () => {
    await writeFile(o.path('ec.bundle.pem'), Buffer.concat([await o.read('ec.crt'), await o.read('ec.key')]));
    await importAndCheck('ec.bundle.pem', 'ec.crt');
  });

  test('EC: SEC1 "EC PRIVATE KEY" with an "EC PARAMETERS" block and CRLF line ends', async () => {
    await o.openssl('ec', '-in', 'ec.key', '-out', 'ec.sec1.key');
    const sec1 = (await o.openssl('ecparam', '-name', 'prime256v1')) + (await o.read('ec.sec1.key')).toString();
    assert.match(sec1, /BEGIN EC PARAMETERS[\s\S]*BEGIN EC PRIVATE KEY/);
    const text = `${(await o.read('ec.crt')).toString()}${sec1}`.replace(/\n/g, '\r\n');
    await writeFile(o.path('ec.crlf.pem'), text);
    await importAndCheck('ec.crlf.pem', 'ec.crt');
  });

  test('encrypted PKCS#8 key ("ENCRYPTED PRIVATE KEY") with its password', async () => {
    await o.openssl('pkcs8', '-topk8', '-in', 'ec.key', '-passout', `pass:${PASSWORD}`, '-out', 'ec.enc.key');
    await writeFile(o.path('ec.enc.pem'), Buffer.concat([await o.read('ec.crt'), await o.read('ec.enc.key')]));
    await importAndCheck('ec.enc.pem', 'ec.crt', PASSWORD);
    const data = await o.read('ec.enc.pem');
    await assert.rejects(() => importCertificate({ data, password: 'wrong' }), code('REEF_BAD_PASSWORD'));
    await assert.rejects(() => importCertificate({ data }), code('REEF_PASSWORD_REQUIRED'));
  });

  test('legacy OpenSSL-encrypted PKCS#1 key (Proc-Type: 4,ENCRYPTED)', async () => {
    await o.openssl('rsa', '-in', 'rsa.key', '-traditional', '-aes256', '-passout', `pass:${PASSWORD}`,
      '-out', 'rsa.legacyenc.key');
    await writeFile(o.path('rsa.legacyenc.pem'), Buffer.concat([await o.read('rsa.crt'), await o.read('rsa.legacyenc.key')]));
    await importAndCheck('rsa.legacyenc.pem', 'rsa.crt', PASSWORD);
    const data = await o.read('rsa.legacyenc.pem');
    await assert.rejects(() => importCertificate({ data, password: 'wrong' }), code('REEF_BAD_PASSWORD'));
  });

  test('a password given for an unencrypted key is ignored', async () => {
    await importAndCheck('rsa.bundle.pem', 'rsa.crt', 'unused');
  });

  test('PEM printed by `openssl pkcs12 -nodes` (with Bag Attributes text)', async () => {
    await pfx('rsa.forpem.pfx', 'rsa.key', 'rsa.crt', PASSWORD);
    await o.openssl('pkcs12', '-in', 'rsa.forpem.pfx', '-nodes', '-passin', `pass:${PASSWORD}`, '-out', 'rsa.fromp12.pem');
    assert.match((await o.read('rsa.fromp12.pem')).toString(), /Bag Attributes/);
    await importAndCheck('rsa.fromp12.pem', 'rsa.crt');
  });

  test('a certificate without its key is REEF_NO_PRIVATE_KEY', async () => {
    await assert.rejects(() => importCertificate({ data: Buffer.from(o.path('x')) }), code('REEF_BAD_CERTIFICATE'));
    const data = await o.read('rsa.crt');
    await assert.rejects(() => importCertificate({ data }), (err) => {
      code('REEF_NO_PRIVATE_KEY')(err);
      assert.match((err as Error).message, /CN=rsa/);
      return true;
    });
  });

  test('a key that belongs to another certificate is REEF_KEY_MISMATCH', async () => {
    const data = Buffer.concat([await o.read('rsa.crt'), await o.read('ec.key')]);
    await assert.rejects(() => importCertificate({ data }), code('REEF_KEY_MISMATCH'));
    const sameType = Buffer.concat([await o.read('ec.crt'), await o.read('ec384.key')]);
    await assert.rejects(() => importCertificate({ data: sameType }), code('REEF_KEY_MISMATCH'));
  });

  test('a damaged certificate or key block is refused', async () => {
    const cert = (await o.read('ec.crt')).toString();
    const key = (await o.read('ec.key')).toString();
    const damagedCert = cert.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!');
    await assert.rejects(() => importCertificate({ data: Buffer.from(damagedCert + key) }), code('REEF_BAD_CERTIFICATE'));
    const damagedKey = key.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
    await assert.rejects(() => importCertificate({ data: Buffer.from(cert + damagedKey) }), code('REEF_BAD_PRIVATE_KEY'));
    const truncatedKey = key.split('\n').slice(0, 2).join('\n');
    await assert.rejects(() => importCertificate({ data: Buffer.from(cert + truncatedKey) }), code('REEF_NO_PRIVATE_KEY'));
  });
});

describe('PKCS#12', () => {
  test('RSA 2048, OpenSSL 3 defaults (AES-256, PBKDF2, SHA-256 MAC)', async () => {
    await pfx('rsa.pfx', 'rsa.key', 'rsa.crt', PASSWORD);
    assert.match(await o.openssl('pkcs12', '-in', 'rsa.pfx', '-info', '-noout', '-passin', `pass:${PASSWORD}`), /PBES2/);
    await importAndCheck('rsa.pfx', 'rsa.crt', PASSWORD);
  });

  test('EC P-256, OpenSSL 3 defaults', async () => {
    await pfx('ec.pfx', 'ec.key', 'ec.crt', PASSWORD);
    await importAndCheck('ec.pfx', 'ec.crt', PASSWORD);
  });

  test('RSA and EC with -legacy (RC2/3DES, SHA-1 MAC)', async (t) => {
    if (!legacySupported) return t.skip('this openssl has no legacy provider');
    await importAndCheck('rsa.legacy.pfx', 'rsa.crt', PASSWORD);
    await pfx('ec.legacy.pfx', 'ec.key', 'ec.crt', PASSWORD, '-legacy');
    await importAndCheck('ec.legacy.pfx', 'ec.crt', PASSWORD);
  });

  test('a non-ASCII password, modern and legacy', async () => {
    await pfx('ec.unicode.pfx', 'ec.key', 'ec.crt', UNICODE_PASSWORD);
    await importAndCheck('ec.unicode.pfx', 'ec.crt', UNICODE_PASSWORD);
    if (legacySupported) {
      await pfx('ec.unicode.legacy.pfx', 'ec.key', 'ec.crt', UNICODE_PASSWORD, '-legacy');
      await importAndCheck('ec.unicode.legacy.pfx', 'ec.crt', UNICODE_PASSWORD);
    }
  });

  test('an empty password, given or not', async () => {
    await pfx('ec.nopass.pfx', 'ec.key', 'ec.crt', '');
    await importAndCheck('ec.nopass.pfx', 'ec.crt');
    await importAndCheck('ec.nopass.pfx', 'ec.crt', '');
  });

  test('no encryption and no MAC at all', async () => {
    await pfx('ec.plain.pfx', 'ec.key', 'ec.crt', '', '-keypbe', 'NONE', '-certpbe', 'NONE', '-nomac');
    await importAndCheck('ec.plain.pfx', 'ec.crt');
  });

  test('a chain: the leaf matching the key is chosen, with its exact bytes', async () => {
    // An ECDSA CA signing an RSA leaf: re-encoding such a leaf (as forge would) changes its bytes.
    await selfSigned(o, 'ca', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256');
    await o.openssl('req', '-new', '-key', 'rsa.key', '-subj', '/CN=leaf', '-out', 'leaf.csr');
    await o.openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '30', '-out', 'leaf.crt');
    await pfx('chain.pfx', 'rsa.key', 'leaf.crt', PASSWORD, '-certfile', 'ca.crt');
    const identity = await importAndCheck('chain.pfx', 'leaf.crt', PASSWORD);
    assert.equal(new X509Certificate(identity.certPem).subject, 'CN=leaf');
    // The same chain as PEM, CA first.
    await writeFile(o.path('chain.pem'), Buffer.concat([await o.read('ca.crt'), await o.read('leaf.crt'), await o.read('rsa.key')]));
    await importAndCheck('chain.pem', 'leaf.crt');
  });

  test('wrong password is REEF_BAD_PASSWORD; none is REEF_PASSWORD_REQUIRED', async () => {
    const data = await o.read('rsa.pfx');
    await assert.rejects(() => importCertificate({ data, password: 'wrong' }), (err) => {
      code('REEF_BAD_PASSWORD')(err);
      assert.match((err as Error).message, /password/);
      return true;
    });
    await assert.rejects(() => importCertificate({ data }), code('REEF_PASSWORD_REQUIRED'));
    if (legacySupported) {
      const legacy = await o.read('rsa.legacy.pfx');
      await assert.rejects(() => importCertificate({ data: legacy, password: 'wrong' }), code('REEF_BAD_PASSWORD'));
    }
  });

  test('a PFX without a private key is REEF_NO_PRIVATE_KEY; without a certificate, REEF_BAD_CERTIFICATE', async () => {
    await pfx('nokey.pfx', 'rsa.key', 'rsa.crt', PASSWORD, '-nokeys');
    const noKey = await o.read('nokey.pfx');
    await assert.rejects(() => importCertificate({ data: noKey, password: PASSWORD }), code('REEF_NO_PRIVATE_KEY'));
    await o.openssl('pkcs12', '-export', '-nocerts', '-inkey', 'rsa.key', '-passout', `pass:${PASSWORD}`, '-out', 'nocert.pfx');
    const noCert = await o.read('nocert.pfx');
    await assert.rejects(() => importCertificate({ data: noCert, password: PASSWORD }), code('REEF_BAD_CERTIFICATE'));
  });

  test('a truncated or corrupted PFX gives a ReefError or the same identity, never a crash or another key', async () => {
    const data = await o.read('ec.pfx');
    const original = await importCertificate({ data, password: PASSWORD });
    await assert.rejects(() => importCertificate({ data: data.subarray(0, data.length >> 1), password: PASSWORD }), code('REEF_BAD_CERTIFICATE'));
    const expected = ['REEF_BAD_CERTIFICATE', 'REEF_BAD_PASSWORD', 'REEF_BAD_PRIVATE_KEY'];
    await fc.assert(
      fc.asyncProperty(fc.nat(data.length - 1), fc.integer({ min: 1, max: 255 }), async (at, flip) => {
        const damaged = Buffer.from(data);
        damaged[at] = damaged[at]! ^ flip;
        let imported: CertificateIdentity;
        try {
          imported = await importCertificate({ data: damaged, password: PASSWORD });
        } catch (err) {
          assert.ok(isReefError(err) && expected.includes(err.code), String(err));
          return;
        }
        // Some bytes carry no meaning (e.g. the NULL parameters of the MAC's hash).
        assert.deepEqual(imported, original);
      }),
      { numRuns: 200 },
    );
  });
});

describe('key policy', () => {
  test('RSA below 2048 bits is refused with REEF_WEAK_KEY, from PEM and from PFX', async () => {
    const data = Buffer.concat([await o.read('rsa1024.crt'), await o.read('rsa1024.key')]);
    await assert.rejects(() => importCertificate({ data }), (err) => {
      code('REEF_WEAK_KEY')(err);
      assert.match((err as Error).message, /1024 bits.*2048/);
      return true;
    });
    await pfx('rsa1024.pfx', 'rsa1024.key', 'rsa1024.crt', PASSWORD);
    const weakPfx = await o.read('rsa1024.pfx');
    await assert.rejects(() => importCertificate({ data: weakPfx, password: PASSWORD }), code('REEF_WEAK_KEY'));
  });

  test('an EC curve TLS cannot use is REEF_UNSUPPORTED_KEY', async () => {
    const data = Buffer.concat([await o.read('k1.crt'), await o.read('k1.key')]);
    await assert.rejects(() => importCertificate({ data }), (err) => {
      code('REEF_UNSUPPORTED_KEY')(err);
      assert.match((err as Error).message, /secp256k1/);
      return true;
    });
  });

  test('P-384 and Ed25519 are accepted', async () => {
    await writeFile(o.path('ec384.pem'), Buffer.concat([await o.read('ec384.crt'), await o.read('ec384.key')]));
    await importAndCheck('ec384.pem', 'ec384.crt');
    await writeFile(o.path('ed25519.pem'), Buffer.concat([await o.read('ed25519.crt'), await o.read('ed25519.key')]));
    await importAndCheck('ed25519.pem', 'ed25519.crt');
  });
});

describe('garbage', () => {
  test('empty, random bytes, plain text and a lone DER key are REEF_BAD_CERTIFICATE', async () => {
    await o.openssl('pkcs8', '-topk8', '-nocrypt', '-in', 'ec.key', '-outform', 'DER', '-out', 'ec.key.der');
    for (const data of [
      Buffer.alloc(0),
      randomBytes(2048),
      Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02, 0x01, 0x03]),
      Buffer.from('hello, this is not a certificate\n'),
      Buffer.from('-----BEGIN CERTIFICATE-----\nnot base64 at all\n'),
      await o.read('ec.key.der'),
    ]) {
      await assert.rejects(() => importCertificate({ data, password: PASSWORD }), code('REEF_BAD_CERTIFICATE'), data.subarray(0, 16).toString('hex'));
    }
  });

  test('property: arbitrary bytes, or arbitrary text in PEM armour, end in a ReefError', async () => {
    const armoured = fc.tuple(fc.constantFrom('CERTIFICATE', 'PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'RSA PRIVATE KEY'), fc.string())
      .map(([label, body]) => Buffer.from(`-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)), armoured), fc.option(fc.string()), async (data, password) => {
        await assert.rejects(() => importCertificate({ data, password: password ?? undefined }), (err) => isReefError(err));
      }),
      { numRuns: 300 },
    );
  });

  test('an OpenSSH private key gets advice on converting it', async () => {
    const data = Buffer.concat([await o.read('ec.crt'),
      Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n')]);
    await assert.rejects(() => importCertificate({ data }), (err) => {
      code('REEF_BAD_PRIVATE_KEY')(err);
      assert.match((err as Error).message, /ssh-keygen/);
      return true;
    });
  });
});

describe('importCertificateFiles', () => {
  test('separate certificate and key files', async () => {
    const identity = await importCertificateFiles({ certFile: o.path('rsa.crt'), keyFile: o.path('rsa.key') });
    assert.equal(identity.thumbprint, normalizeThumbprint(await o.fingerprint('rsa.crt')));
  });

  test('a DER certificate (.cer) with an encrypted PEM key', async () => {
    await o.openssl('x509', '-in', 'ec.crt', '-outform', 'DER', '-out', 'ec.cer');
    const identity = await importCertificateFiles({ certFile: o.path('ec.cer'), keyFile: o.path('ec.enc.key'), password: PASSWORD });
    assert.equal(identity.thumbprint, normalizeThumbprint(await o.fingerprint('ec.cer', 'DER')));
    await assert.rejects(importCertificateFiles({ certFile: o.path('ec.cer') }), code('REEF_NO_PRIVATE_KEY'));
  });

  test('a PFX file on its own', async () => {
    const identity = await importCertificateFiles({ certFile: o.path('ec.pfx'), password: PASSWORD });
    assert.equal(identity.thumbprint, normalizeThumbprint(await o.fingerprint('ec.crt')));
  });

  test('a missing file names its path', async () => {
    await assert.rejects(importCertificateFiles({ certFile: o.path('nope.pem') }), (err) => {
      code('REEF_FILE_NOT_FOUND')(err);
      assert.match((err as Error).message, /nope\.pem/);
      return true;
    });
  });

  test('mismatched files are REEF_KEY_MISMATCH', async () => {
    await assert.rejects(importCertificateFiles({ certFile: o.path('ec.crt'), keyFile: o.path('rsa.key') }), code('REEF_KEY_MISMATCH'));
  });
});

describe('imported identities in a real TLS handshake', () => {
  for (const [name, file, certName, password] of [
    ['RSA from PFX', 'rsa.pfx', 'rsa.crt', PASSWORD],
    ['EC P-256 from PFX', 'ec.pfx', 'ec.crt', PASSWORD],
    ['RSA leaf of an EC CA from PFX', 'chain.pfx', 'leaf.crt', PASSWORD],
    ['EC from encrypted PEM', 'ec.enc.pem', 'ec.crt', PASSWORD],
    ['Ed25519 from PEM', 'ed25519.pem', 'ed25519.crt', undefined],
  ] as const) {
    test(name, async () => {
      const identity = await importCertificate({ data: await o.read(file), password });
      assert.equal(identity.thumbprint, normalizeThumbprint(await o.fingerprint(certName)));
      const seen = await handshake(identity);
      assert.equal(seen.serverThumbprint, identity.thumbprint);
    });
  }

  test('mutual TLS between an imported RSA server and an imported EC client', async () => {
    const server = await importCertificate({ data: await o.read('rsa.pfx'), password: PASSWORD });
    const client = await importCertificate({ data: await o.read('ec.pfx'), password: PASSWORD });
    const seen = await handshake(server, client);
    assert.equal(seen.serverThumbprint, server.thumbprint);
    assert.equal(seen.clientThumbprint, client.thumbprint);
  });
});
