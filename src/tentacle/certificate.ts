import { hostname } from 'node:os';
import { generateCertificate, type CertificateIdentity } from '../pki/certificate.js';
import { identityFiles, loadOrCreateIdentity, saveIdentity } from '../pki/identity-files.js';
import { importCertificateFiles } from '../pki/import.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { isReefError } from '../errors.js';
import type { TentacleConfig } from './config.js';
import { loadTentacleIdentity } from './certificate-rotation.js';
import { homeFiles } from './paths.js';

/** The Tentacle's own identity: `<home>/comms.cert.pem` + `<home>/comms.key.pem`, both 0600. */

export interface CertificateResult {
  thumbprint: Thumbprint;
  /** false when --if-blank found a certificate already there. */
  created: boolean;
  /** The thumbprint that was replaced, if any; servers that pinned it must be told. */
  replaced: Thumbprint | null;
}

export function certificateFiles(config: TentacleConfig) {
  return identityFiles(config.home, homeFiles.certBaseName);
}

export function commonName(config: TentacleConfig): string {
  return `Reef Tentacle ${config.instance}@${hostname()}`;
}

function missingHint(config: TentacleConfig): string {
  return `Create one with "tentacle new-certificate --instance ${config.instance}" or import one with "tentacle import-certificate".`;
}

/** Generates a new ECDSA P-256 identity, replacing any existing one unless `ifBlank`. */
export async function newCertificate(config: TentacleConfig, options: { ifBlank?: boolean } = {}): Promise<CertificateResult> {
  if (options.ifBlank) {
    const identity = await loadOrCreateIdentity(config.home, homeFiles.certBaseName, commonName(config));
    return { thumbprint: identity.thumbprint, created: identity.created, replaced: null };
  }
  const replaced = await currentThumbprint(config).catch(() => null);
  const identity = await generateCertificate(commonName(config));
  await saveIdentity(config.home, identity, homeFiles.certBaseName);
  return { thumbprint: identity.thumbprint, created: true, replaced };
}

/** Imports PEM (certificate and key in one file) or PKCS#12 (.pfx/.p12) as the identity. */
export async function importCertificateFile(config: TentacleConfig, file: string, password?: string): Promise<CertificateResult> {
  const identity: CertificateIdentity = await importCertificateFiles({ certFile: file, ...(password !== undefined ? { password } : {}) });
  const replaced = await currentThumbprint(config).catch(() => null);
  await saveIdentity(config.home, identity, homeFiles.certBaseName);
  return { thumbprint: identity.thumbprint, created: true, replaced: replaced === identity.thumbprint ? null : replaced };
}

/** The instance's thumbprint; throws REEF_IDENTITY_MISSING with a hint when there is no certificate. */
export async function currentThumbprint(config: TentacleConfig): Promise<Thumbprint> {
  // As the agent loads it: a certificate rotation cut off by a crash is finished first.
  return (await loadTentacleIdentity(config.home, missingHint(config))).thumbprint;
}

/** Like currentThumbprint, but null when no certificate has been created yet. */
export async function thumbprintIfAny(config: TentacleConfig): Promise<Thumbprint | null> {
  try {
    return await currentThumbprint(config);
  } catch (err) {
    if (isReefError(err, 'REEF_IDENTITY_MISSING')) return null;
    throw err;
  }
}
