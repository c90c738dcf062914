import forge from 'node-forge';
import { ReefError } from '../errors.js';
import { passwordError } from './private-key.js';

/**
 * Reads a PKCS#12 (PFX) file into exact DER bytes: certificates as their original
 * encoding, private keys as unencrypted PKCS#8 PrivateKeyInfo.
 *
 * Why not `forge.pkcs12.pkcs12FromAsn1` alone: for RSA certificates forge hands back a
 * parsed certificate, and re-encoding it does not always give the original bytes (an RSA
 * certificate signed with ECDSA comes back with a NULL parameter that was never there), so
 * the thumbprint would be wrong. Forge still does the cryptography here: the PKCS#12 key
 * derivation, HMAC and the PBE/PBES2 ciphers.
 */
export interface Pkcs12Contents {
  certificates: Buffer[];
  privateKeys: Buffer[];
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbes2: '1.2.840.113549.1.5.13',
} as const;

const MAC_DIGESTS: Record<string, () => forge.md.MessageDigest> = {
  '1.3.14.3.2.26': () => forge.md.sha1.create(),
  '2.16.840.1.101.3.4.2.1': () => forge.md.sha256.create(),
  '2.16.840.1.101.3.4.2.2': () => forge.md.sha384.create(),
  '2.16.840.1.101.3.4.2.3': () => forge.md.sha512.create(),
};

type Asn1 = forge.asn1.Asn1;

/** Forge's PBE lookup; present at runtime but missing from @types/node-forge. */
interface PbeCipher {
  update(data: forge.util.ByteBuffer): void;
  finish(): boolean;
  output: forge.util.ByteBuffer;
}
const pbe = () =>
  (forge.pki as unknown as {
    pbe: { getCipher(oid: string, params: Asn1, password: string): PbeCipher };
  }).pbe;

/** Thrown inside the parser for structural problems; turned into REEF_BAD_CERTIFICATE. */
class MalformedPkcs12 extends Error {}

export function readPkcs12(der: Uint8Array, password?: string): Pkcs12Contents {
  try {
    return parse(der, password);
  } catch (err) {
    if (err instanceof ReefError) throw err;
    throw new ReefError(
      'REEF_BAD_CERTIFICATE',
      `The data is not a readable PKCS#12 (PFX) file: ${(err as Error).message}. ` +
        'Export it again as .pfx/.p12, or use PEM files.',
      { cause: err },
    );
  }
}

function parse(der: Uint8Array, password: string | undefined): Pkcs12Contents {
  const [version, authSafe, macData] = seq(forge.asn1.fromDer(binary(der)));
  if (integerOf(version) !== 3) throw new MalformedPkcs12('only PKCS#12 version 3 is supported');
  if (oidOf(seq(authSafe)[0]) !== OID.data) {
    throw new MalformedPkcs12('only password-integrity PFX files are supported, not public-key integrity');
  }
  const authSafeBytes = octets(contentOf(authSafe));

  // Blank and absent passwords are different bytes in PKCS#12; try both, as OpenSSL does.
  const candidates = password === undefined || password === '' ? ['', null] : [password];
  let macPassword: string | null | undefined = candidates[0];
  if (macData !== undefined) {
    macPassword = candidates.find((pw) => macVerifies(macData, authSafeBytes, pw));
    if (macPassword === undefined) throw passwordError(password, 'PKCS#12 (PFX) file');
  }
  const pw = macPassword ?? '';

  const contents: Pkcs12Contents = { certificates: [], privateKeys: [] };
  for (const contentInfo of seq(forge.asn1.fromDer(authSafeBytes))) {
    const type = oidOf(seq(contentInfo)[0]);
    if (type === OID.data) {
      readSafeContents(octets(contentOf(contentInfo)), pw, contents);
    } else if (type === OID.encryptedData) {
      readSafeContents(decryptEncryptedData(contentOf(contentInfo), pw, password), pw, contents);
    }
    // Public-key-enveloped content (enveloped-data) needs a key we do not have; skip it.
  }
  return contents;
}

function macVerifies(macData: Asn1, content: string, password: string | null): boolean {
  const [digestInfo, salt, iterations] = seq(macData);
  const [algorithm, digest] = seq(digestInfo);
  const algorithmOid = oidOf(seq(algorithm)[0]);
  const makeDigest = MAC_DIGESTS[algorithmOid];
  if (!makeDigest) throw new MalformedPkcs12(`unsupported MAC algorithm ${algorithmOid}`);
  const md = makeDigest();
  const count = iterations === undefined ? 1 : integerOf(iterations);
  const key = forge.pkcs12.generateKey(password, forge.util.createBuffer(octets(salt)), 3, count, md.digestLength, md);
  const hmac = forge.hmac.create();
  hmac.start(md, key.getBytes());
  hmac.update(content);
  return hmac.digest().getBytes() === octets(digest);
}

function decryptEncryptedData(encryptedData: Asn1, pw: string, given: string | undefined): string {
  const [, algorithm, content] = seq(seq(encryptedData)[1]);
  if (content === undefined) return '';
  const [algorithmOid, params] = seq(algorithm);
  const oid = oidOf(algorithmOid);
  let cipher: PbeCipher;
  try {
    cipher = pbe().getCipher(oid, params as Asn1, passwordFor(oid, pw));
  } catch (err) {
    throw new MalformedPkcs12(`unsupported encryption: ${(err as Error).message}`);
  }
  cipher.update(forge.util.createBuffer(octets(content, 'implicit')));
  if (!cipher.finish()) throw passwordError(given, 'PKCS#12 (PFX) file');
  return cipher.output.getBytes();
}

function readSafeContents(der: string, pw: string, into: Pkcs12Contents): void {
  for (const bag of seq(forge.asn1.fromDer(der))) {
    const [bagId, bagValue] = seq(bag);
    const value = tagged(bagValue);
    switch (oidOf(bagId)) {
      case OID.keyBag:
        into.privateKeys.push(Buffer.from(forge.asn1.toDer(value).getBytes(), 'binary'));
        break;
      case OID.pkcs8ShroudedKeyBag: {
        const oid = oidOf(seq(seq(value)[0])[0]);
        let info: Asn1 | null;
        try {
          info = forge.pki.decryptPrivateKeyInfo(value, passwordFor(oid, pw));
        } catch (err) {
          throw new MalformedPkcs12(`the private key could not be decrypted: ${(err as Error).message}`);
        }
        // The MAC already proved the password, so a failure here is a damaged file.
        if (!info) throw new MalformedPkcs12('the private key could not be decrypted');
        into.privateKeys.push(Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary'));
        break;
      }
      case OID.certBag: {
        const [certId, certValue] = seq(value);
        if (oidOf(certId) === OID.x509Certificate) {
          into.certificates.push(Buffer.from(octets(tagged(certValue)), 'binary'));
        }
        break;
      }
      case OID.safeContentsBag:
        readSafeContents(forge.asn1.toDer(value).getBytes(), pw, into);
        break;
      // CRL and secret bags carry nothing an identity needs.
    }
  }
}

/** PBES2 (OpenSSL 3's default) derives keys from the UTF-8 bytes; PKCS#12 PBE takes UTF-16, which forge builds from the JS string. */
function passwordFor(algorithmOid: string, password: string): string {
  return algorithmOid === OID.pbes2 ? forge.util.encodeUtf8(password) : password;
}

function binary(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('binary');
}

const { Class, Type } = forge.asn1;

function seq(node: Asn1 | undefined): Asn1[] {
  if (node?.tagClass !== Class.UNIVERSAL || node.type !== Type.SEQUENCE || !Array.isArray(node.value)) {
    throw new MalformedPkcs12('expected a SEQUENCE');
  }
  return node.value;
}

/** The value inside an explicit [0] tag. */
function tagged(node: Asn1 | undefined): Asn1 {
  const inner = node?.tagClass === Class.CONTEXT_SPECIFIC && node.type === 0 && Array.isArray(node.value) ? node.value[0] : undefined;
  if (inner === undefined) throw new MalformedPkcs12('expected an explicit [0] value');
  return inner;
}

/** ContentInfo's content: SEQUENCE { contentType, [0] EXPLICIT content }. */
function contentOf(contentInfo: Asn1 | undefined): Asn1 {
  return tagged(seq(contentInfo)[1]);
}

function oidOf(node: Asn1 | undefined): string {
  if (node?.tagClass !== Class.UNIVERSAL || node.type !== Type.OID || typeof node.value !== 'string') {
    throw new MalformedPkcs12('expected an object identifier');
  }
  return forge.asn1.derToOid(node.value);
}

function integerOf(node: Asn1 | undefined): number {
  if (node?.tagClass !== Class.UNIVERSAL || node.type !== Type.INTEGER || typeof node.value !== 'string') {
    throw new MalformedPkcs12('expected an integer');
  }
  return forge.asn1.derToInteger(node.value);
}

/**
 * OCTET STRING contents (or an implicit [0] one). BER encoders such as Windows and Java
 * may split them into constructed chunks.
 */
function octets(node: Asn1 | undefined, tag: 'universal' | 'implicit' = 'universal'): string {
  const ok =
    tag === 'universal'
      ? node?.tagClass === Class.UNIVERSAL && node.type === Type.OCTETSTRING
      : node?.tagClass === Class.CONTEXT_SPECIFIC && node.type === 0;
  if (!node || !ok) throw new MalformedPkcs12('expected an OCTET STRING');
  if (typeof node.value === 'string') return node.value;
  return node.value.map((chunk) => octets(chunk)).join('');
}
