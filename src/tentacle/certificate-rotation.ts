/**
 * The Tentacle's half of a Tentacle certificate rotation (docs/operations.md "Rotating
 * Tentacle certificates"). Over a link pinned to the current certificate the server asks
 * for a next one, records its thumbprint, then tells the Tentacle to switch:
 *
 *   comms.*           the current identity (what the agent presents)
 *   comms-next.*      made by prepareNext, kept until the switch; asked again, the same one
 *   comms-previous.*  the one before the switch, kept until the server confirmed the new one
 *
 * Every file is 0600 and written atomically (saveIdentity). The switch writes the previous
 * copy first, then the next identity over the current one (key before certificate), then
 * removes the next files. A crash between the key and the certificate leaves the next key
 * beside the old certificate: loadTentacleIdentity sees the next key there and finishes the
 * switch, so a restarted Tentacle always starts with a matching pair, the old one or the
 * new one, and the server accepts either until it has seen the new one.
 */
import { readFile, rm } from 'node:fs/promises';
import { syncDir } from '../durable-fs.js';
import { ReefError } from '../errors.js';
import type { Logger } from '../logging.js';
import { generateCertificate, type CertificateIdentity } from '../pki/certificate.js';
import { identityFiles, loadIdentity, saveIdentity } from '../pki/identity-files.js';
import { normalizeThumbprint, type Thumbprint } from '../pki/thumbprint.js';
import { homeFiles } from './paths.js';

const NEXT_CERT_BASE_NAME = homeFiles.nextCertBaseName;
const PREVIOUS_CERT_BASE_NAME = homeFiles.previousCertBaseName;

export interface CertificateRotationState {
  current: Thumbprint;
  /** Made by prepareNext and not switched to yet. */
  next: Thumbprint | null;
  /** Switched away from; kept until the server confirms the new one (forgetPrevious). */
  previous: Thumbprint | null;
}

/**
 * The current identity, finishing a switch a crash cut off between writing the next key
 * and its certificate (the only torn state the switch can leave).
 */
export async function loadTentacleIdentity(home: string, hint?: string): Promise<CertificateIdentity> {
  const next = await loadIfAny(home, NEXT_CERT_BASE_NAME);
  if (next) {
    const currentKey = await readFile(identityFiles(home, homeFiles.certBaseName).keyFile, 'utf8').catch(() => null);
    if (currentKey === next.keyPem) {
      await saveIdentity(home, next, homeFiles.certBaseName);
      await removeIdentity(home, NEXT_CERT_BASE_NAME);
    }
  }
  return loadIdentity(home, homeFiles.certBaseName, hint);
}

export interface CertificateRotationServiceOptions {
  home: string;
  /** The subject of a new certificate (the same as `tentacle new-certificate` gives). */
  commonName: string;
  /** The agent presents `identity` from now on (after the answer to the switch is sent). */
  onSwitch(identity: CertificateIdentity): void;
  logger: Logger;
}

/** Serves certificate.* calls; one change at a time, the files the one source of truth. */
export class CertificateRotationService {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: CertificateRotationServiceOptions) {}

  state(): Promise<CertificateRotationState> {
    return this.serial(() => this.read());
  }

  /** Makes the next certificate, or answers the one made already (a retried call makes no third). */
  prepareNext(): Promise<CertificateRotationState & { next: Thumbprint }> {
    return this.serial(async () => {
      const state = await this.read();
      if (state.next) return { ...state, next: state.next };
      const identity = await generateCertificate(this.options.commonName);
      await saveIdentity(this.options.home, identity, NEXT_CERT_BASE_NAME);
      this.options.logger.info({ current: state.current, next: identity.thumbprint }, 'certificate rotation: made the next Tentacle certificate; the server records it before the switch');
      return { ...state, next: identity.thumbprint };
    });
  }

  /** Makes the next certificate current; switching to the current one again changes nothing. */
  switchTo(thumbprint: string): Promise<CertificateRotationState> {
    const wanted = normalizeThumbprint(thumbprint);
    return this.serial(async () => {
      const { home } = this.options;
      const current = await loadIdentity(home, homeFiles.certBaseName);
      if (current.thumbprint === wanted) return this.read();
      const next = await loadIfAny(home, NEXT_CERT_BASE_NAME);
      if (!next || next.thumbprint !== wanted) {
        throw new ReefError(
          'REEF_CERTIFICATE_SWITCH_REFUSED',
          `The server asked this Tentacle to switch to certificate ${wanted}, but its certificate is ${current.thumbprint} and ` +
            (next ? `the next one it made is ${next.thumbprint}` : 'it has no next one') +
            '. Nothing was changed; run the certificate rotation again.',
        );
      }
      await saveIdentity(home, current, PREVIOUS_CERT_BASE_NAME);
      await saveIdentity(home, next, homeFiles.certBaseName);
      await removeIdentity(home, NEXT_CERT_BASE_NAME);
      this.options.logger.info({ previous: current.thumbprint, current: next.thumbprint }, 'certificate rotation: switched to the new Tentacle certificate; reconnecting with it');
      this.options.onSwitch(next);
      return { current: next.thumbprint, next: null, previous: current.thumbprint };
    });
  }

  /** Removes the previous certificate once the server has confirmed the new one; never the current one. */
  forgetPrevious(thumbprint: string): Promise<CertificateRotationState> {
    const tp = normalizeThumbprint(thumbprint);
    return this.serial(async () => {
      const state = await this.read();
      if (state.previous === tp) {
        await removeIdentity(this.options.home, PREVIOUS_CERT_BASE_NAME);
        this.options.logger.info({ removed: tp }, 'certificate rotation: the server confirmed the new certificate; removed the previous one');
        return { ...state, previous: null };
      }
      return state;
    });
  }

  private async read(): Promise<CertificateRotationState> {
    const { home } = this.options;
    const current = await loadIdentity(home, homeFiles.certBaseName);
    let next = await loadIfAny(home, NEXT_CERT_BASE_NAME);
    if (next?.thumbprint === current.thumbprint) {
      // A switch cut off after the current files were written: nothing is pending any more.
      await removeIdentity(home, NEXT_CERT_BASE_NAME);
      next = null;
    }
    const previous = await loadIfAny(home, PREVIOUS_CERT_BASE_NAME);
    return { current: current.thumbprint, next: next?.thumbprint ?? null, previous: previous?.thumbprint ?? null };
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => {});
    return result;
  }
}

async function loadIfAny(home: string, baseName: string): Promise<CertificateIdentity | null> {
  try {
    return await loadIdentity(home, baseName);
  } catch (err) {
    if (err instanceof ReefError && err.code === 'REEF_IDENTITY_MISSING') return null;
    throw err;
  }
}

/** Certificate first, so that a crash leaves at most a key, which loadIfAny reads as incomplete. */
async function removeIdentity(home: string, baseName: string): Promise<void> {
  const files = identityFiles(home, baseName);
  await rm(files.certFile, { force: true });
  await rm(files.keyFile, { force: true });
  await syncDir(home);
}
