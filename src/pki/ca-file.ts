import { readFile } from 'node:fs/promises';
import { ReefError } from '../errors.js';
import { partsFromPem } from './identity.js';

/**
 * Reads the certificates of a CA file (`--ca-file`, REEF_CA_FILE): one or more PEM
 * certificates, such as an organisation's root and intermediates, that a client trusts in
 * addition to the public CAs when it checks a portal's certificate. Returns them as PEM,
 * or a clear error for a missing file or one without a certificate.
 */
export async function readCaFile(file: string, option = '--ca-file'): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ReefError(
      code === 'ENOENT' ? 'REEF_FILE_NOT_FOUND' : 'REEF_FILE_UNREADABLE',
      code === 'ENOENT' ? `${option} ${file} does not exist.` : `${option} ${file} could not be read: ${(err as Error).message}.`,
      { cause: err },
    );
  }
  const { certificates } = partsFromPem(text);
  if (certificates.length === 0) {
    throw new ReefError('REEF_BAD_CERTIFICATE', `${option} ${file} holds no PEM certificate ("-----BEGIN CERTIFICATE-----"); give the certificate of the CA that issued the portal's certificate.`);
  }
  return certificates.map((cert) => cert.toString());
}
