/**
 * A throwaway certificate authority for tests of CA-issued portal certificates: a root, an
 * intermediate under it, and server certificates the intermediate issues (ECDSA P-256, as a
 * real CA would issue them: subjectAltName, serverAuth, not a CA). Nothing is written to
 * disk here; tests write what they need.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { thumbprintOfDer } from '../../src/pki/thumbprint.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  thumbprint: string;
}

export interface TestCa {
  /** The root's certificate: what a client is given as --ca-file. */
  rootPem: string;
  /** The intermediate that signs server certificates; servers must send it. */
  intermediatePem: string;
  /** A server certificate for these DNS names and IP addresses, valid from yesterday for 90 days unless told otherwise. */
  issue(names: { dns?: string[]; ip?: string[] }, validity?: { notBefore?: Date; notAfter?: Date }): Promise<IssuedCertificate>;
}

async function keys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

async function keyPem(pair: CryptoKeyPair): Promise<string> {
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey as unknown as webcrypto.CryptoKey));
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

function serial(): string {
  return '01' + randomBytes(15).toString('hex');
}

export async function createTestCa(name = 'Reef Test'): Promise<TestCa> {
  const now = Date.now();
  const rootKeys = await keys();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name} Root CA`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    signingAlgorithm: ALG,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const intermediateKeys = await keys();
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name} Issuing CA`,
    issuer: root.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 1825 * DAY),
    signingAlgorithm: ALG,
    publicKey: intermediateKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(intermediateKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  return {
    rootPem: root.toString('pem') + '\n',
    intermediatePem: intermediate.toString('pem') + '\n',
    async issue(names, validity = {}) {
      const leafKeys = await keys();
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${names.dns?.[0] ?? names.ip?.[0] ?? 'server'}`,
        issuer: intermediate.subject,
        notBefore: validity.notBefore ?? new Date(Date.now() - DAY),
        notAfter: validity.notAfter ?? new Date(Date.now() + 90 * DAY),
        signingAlgorithm: ALG,
        publicKey: leafKeys.publicKey,
        signingKey: intermediateKeys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension([
            ...(names.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
            ...(names.ip ?? []).map((value) => ({ type: 'ip' as const, value })),
          ]),
          await x509.AuthorityKeyIdentifierExtension.create(intermediateKeys.publicKey),
        ],
      });
      return { certPem: leaf.toString('pem') + '\n', keyPem: await keyPem(leafKeys), thumbprint: thumbprintOfDer(new Uint8Array(leaf.rawData)) };
    },
  };
}
