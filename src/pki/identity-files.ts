import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeFileAtomic } from '../durable-fs.js';
import { ReefError } from '../errors.js';
import { generateCertificate, identityFromPem, type CertificateIdentity, type GenerateOptions } from './certificate.js';

/**
 * Where an identity lives on disk: `<dir>/<baseName>.cert.pem` and `<dir>/<baseName>.key.pem`,
 * both mode 0600, the folder 0700 when Reef creates it.
 */
export interface IdentityFiles {
  certFile: string;
  keyFile: string;
}

export const DEFAULT_IDENTITY_BASE_NAME = 'comms';

export function identityFiles(dir: string, baseName = DEFAULT_IDENTITY_BASE_NAME): IdentityFiles {
  return { certFile: join(dir, `${baseName}.cert.pem`), keyFile: join(dir, `${baseName}.key.pem`) };
}

/**
 * Writes both files atomically (temporary file, fsync, rename), so a crash never leaves a
 * half-written key. The key is written first: a certificate file on disk means its key is
 * complete.
 */
export async function saveIdentity(
  dir: string,
  identity: CertificateIdentity,
  baseName = DEFAULT_IDENTITY_BASE_NAME,
): Promise<IdentityFiles> {
  const files = identityFiles(dir, baseName);
  await ensurePrivateDir(dir);
  await writePrivateFile(files.keyFile, identity.keyPem);
  await writePrivateFile(files.certFile, identity.certPem);
  await syncDir(dir);
  return files;
}

/**
 * Reads an identity back and checks that key and certificate still belong together.
 * `hint` says how to create one, e.g. "Run `tentacle new-certificate`.", and ends the
 * message when the files are missing.
 */
export async function loadIdentity(
  dir: string,
  baseName = DEFAULT_IDENTITY_BASE_NAME,
  hint?: string,
): Promise<CertificateIdentity> {
  const files = identityFiles(dir, baseName);
  const certPem = await readIdentityFile(files.certFile, 'certificate', hint);
  const keyPem = await readIdentityFile(files.keyFile, 'private key', hint);
  try {
    return identityFromPem(certPem, keyPem);
  } catch (err) {
    if (!(err instanceof ReefError)) throw err;
    throw new ReefError(err.code, `${files.certFile} / ${files.keyFile}: ${err.message}`, { cause: err });
  }
}

/**
 * Loads the identity, or generates and saves a self-signed one if neither file exists.
 * If only one of the two exists the identity is damaged, and replacing it silently would
 * change the thumbprint that peers pin, so that is an error instead.
 */
export async function loadOrCreateIdentity(
  dir: string,
  baseName: string,
  commonName: string,
  /** For a new certificate only: an existing one is never changed, since peers pin it. */
  generate: GenerateOptions = {},
): Promise<CertificateIdentity & { created: boolean }> {
  const files = identityFiles(dir, baseName);
  const [hasCert, hasKey] = await Promise.all([exists(files.certFile), exists(files.keyFile)]);
  if (hasCert || hasKey) {
    if (!hasCert || !hasKey) {
      const missing = hasCert ? files.keyFile : files.certFile;
      const present = hasCert ? files.certFile : files.keyFile;
      throw new ReefError(
        'REEF_IDENTITY_INCOMPLETE',
        `${present} exists but ${missing} does not. Restore the missing file from a backup, or delete ` +
          `${present} to create a new certificate (peers that trust the old thumbprint must then be updated).`,
      );
    }
    return { ...(await loadIdentity(dir, baseName)), created: false };
  }
  const identity = await generateCertificate(commonName, generate);
  await saveIdentity(dir, identity, baseName);
  return { ...identity, created: true };
}

async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    const firstCreated = await mkdir(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode is filtered by the umask; an existing folder is the operator's choice.
    if (firstCreated !== undefined) await chmod(dir, 0o700);
  } catch (err) {
    throw new ReefError('REEF_IDENTITY_UNWRITABLE', `Could not create the folder ${dir}: ${(err as Error).message}.`, {
      cause: err,
    });
  }
}

async function writePrivateFile(file: string, contents: string): Promise<void> {
  try {
    await writeFileAtomic(file, contents, { mode: 0o600 });
  } catch (err) {
    throw new ReefError('REEF_IDENTITY_UNWRITABLE', `Could not write ${file}: ${(err as Error).message}.`, {
      cause: err,
    });
  }
}

async function readIdentityFile(file: string, what: string, hint: string | undefined): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ReefError(
        'REEF_IDENTITY_MISSING',
        `No ${what} at ${file}.${hint ? ` ${hint}` : ''}`,
        { cause: err },
      );
    }
    throw new ReefError('REEF_FILE_UNREADABLE', `Could not read the ${what} at ${file}: ${(err as Error).message}.`, {
      cause: err,
    });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
