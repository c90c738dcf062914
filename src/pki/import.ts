import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { ReefError } from '../errors.js';
import {
  identityFromParts,
  partsFromPem,
  readCertificate,
  type CertificateIdentity,
  type IdentityParts,
} from './identity.js';
import { readPrivateKeyDer } from './private-key.js';

export interface ImportCertificateOptions {
  /** PEM text (certificate and private key blocks) or a binary PKCS#12 (.pfx/.p12) file. */
  data: Uint8Array;
  /** Opens a PKCS#12 file or an encrypted private key; ignored when nothing is encrypted. */
  password?: string;
}

/**
 * Turns a certificate bought or issued elsewhere into a Reef identity: PEM with the key
 * in the same text, or PKCS#12. The result is normalised (one PEM certificate, a PKCS#8
 * PEM key) and its key is checked against the certificate and for strength.
 */
export async function importCertificate({ data, password }: ImportCertificateOptions): Promise<CertificateIdentity> {
  return identityFromParts(await partsFrom(data, password, 'The data'));
}

export interface ImportCertificateFilesOptions {
  /** PEM (certificate, optionally with its key), PKCS#12, or a DER certificate. */
  certFile: string;
  /** The private key (PEM), when `certFile` does not hold it. */
  keyFile?: string;
  password?: string;
}

export async function importCertificateFiles(options: ImportCertificateFilesOptions): Promise<CertificateIdentity> {
  return identityFromParts(await readCertificateFiles(options));
}

/** Every certificate and private key in the files, not yet paired (a chain keeps its intermediates here). */
export async function readCertificateFiles(options: ImportCertificateFilesOptions): Promise<IdentityParts> {
  const files = [options.certFile, ...(options.keyFile === undefined ? [] : [options.keyFile])];
  const parts: IdentityParts = { certificates: [], keys: [] };
  for (const file of files) {
    const found = await partsFrom(await readInput(file), options.password, file);
    parts.certificates.push(...found.certificates);
    parts.keys.push(...found.keys);
  }
  return parts;
}

async function readInput(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ReefError(
      code === 'ENOENT' ? 'REEF_FILE_NOT_FOUND' : 'REEF_FILE_UNREADABLE',
      code === 'ENOENT' ? `${file} does not exist.` : `${file} could not be read: ${(err as Error).message}.`,
      { cause: err },
    );
  }
}

/** `source` names the input in messages: a file path, or "The data". */
async function partsFrom(data: Uint8Array, password: string | undefined, source: string): Promise<IdentityParts> {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length === 0) throw new ReefError('REEF_BAD_CERTIFICATE', `${source} is empty.`);
  // PEM may sit after a text preamble (openssl's "Bag Attributes"), so look for it anywhere.
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN')) return partsFromPem(text, password);
  // Loaded only for PKCS#12: node-forge takes about 100 ms to load, on every server start
  // otherwise. A dynamic import of our own module (not a require of node-forge) so that the
  // single executable Tentacle's bundle still holds it.
  const { readPkcs12 } = await import('./pkcs12.js');
  try {
    const { certificates, privateKeys } = readPkcs12(bytes, password);
    return {
      certificates: certificates.map((der) => readCertificate(der)),
      keys: privateKeys.map((der) => readPrivateKeyDer(der)),
    };
  } catch (err) {
    if (!(err instanceof ReefError) || err.code !== 'REEF_BAD_CERTIFICATE') throw err;
    return certificateFromDer(bytes) ?? failUnrecognised(source, err);
  }
}

/** A lone DER certificate (.cer/.crt), common on Windows; its key must come separately. */
function certificateFromDer(der: Buffer): IdentityParts | undefined {
  try {
    return { certificates: [new X509Certificate(der)], keys: [] };
  } catch {
    return undefined;
  }
}

function failUnrecognised(source: string, cause: ReefError): never {
  throw new ReefError(
    'REEF_BAD_CERTIFICATE',
    `${source} is neither PEM ("-----BEGIN CERTIFICATE-----"), PKCS#12 (.pfx/.p12) nor a DER certificate. ` +
      `(${cause.message})`,
    { cause },
  );
}
