import { unwatchFile, watchFile, type Stats } from 'node:fs';
import type https from 'node:https';
import { baseTlsOptions } from '../../comms/index.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logging.js';
import type { CertificateIdentity } from '../../pki/certificate.js';
import { loadServingCertificate, servingCertificateError, validityProblem, type ServingCertificate } from '../../pki/serving-certificate.js';
import { spkiPinOfPem } from '../../pki/spki-pin.js';

/**
 * Which certificate the portal and REST API present. By default the node's pinned comms
 * identity (self-signed; the admin CLI and Tentacles pin its thumbprint). With
 * `--https-certificate`, a certificate from the organisation's (or a public) CA, for people:
 * read again on SIGHUP and whenever its file changes, so a renewal (certbot, an ACME
 * client, a deployment tool) needs no restart. Comms never sees it: the comms port, the
 * polling hostnames, ALPN `reef-comms` and the WebSocket's inner session keep the pinned
 * identity, so renewing it changes nothing any Tentacle pins.
 */
export interface PortalCertificateSettings {
  /** PEM (certificate, intermediates and, unless `keyFile`, the key) or PKCS#12 (.pfx/.p12). */
  file: string;
  /** The private key in PEM, when `file` does not hold it (certbot's privkey.pem). */
  keyFile?: string;
  /** Opens a PKCS#12 file or an encrypted key. */
  password?: string;
}

export type ReloadOutcome =
  /** The new certificate is presented from the next handshake on. */
  | { outcome: 'reloaded'; certificate: ServingCertificate }
  /** The files hold the certificate already presented. */
  | { outcome: 'unchanged' }
  /** The files cannot be used (unreadable, no key, wrong password, expired...); the old certificate stays. */
  | { outcome: 'refused'; reason: string }
  /** No `--https-certificate`: the portal presents the pinned identity, which is not reloaded. */
  | { outcome: 'not-configured' };

/** One year; no includeSubDomains or preload: other hosts of the organisation's domain are not Reef's to decide for. */
export const STRICT_TRANSPORT_SECURITY = 'max-age=31536000';

/** How often the certificate files are checked for a change. A stat per second is nothing; inotify would miss a renamed-over symlink. */
export const DEFAULT_CERTIFICATE_WATCH_INTERVAL_MS = 1000;

/** Changes of one renewal (key file, then certificate file) are read together once writes settle. */
const SETTLE_MS = 250;

export interface PortalCertificate {
  /** Key, chain, versions and ciphers for the portal's HTTPS server. */
  tlsOptions(): ReturnType<typeof baseTlsOptions>;
  /** `sha256//<base64>` of the presented certificate's key, for the pinned curl commands of /downloads. */
  publicKeyPin(): string;
  /** The Strict-Transport-Security value while a CA-issued certificate is presented; undefined otherwise. */
  strictTransportSecurity(): string | undefined;
  /** The configured certificate, for the start-up banner; undefined when the pinned identity is presented. */
  configured(): ServingCertificate | undefined;
  /** Watches the files, and presents each reloaded certificate on `server` (created with `tlsOptions()`). */
  serve(server: https.Server): void;
  /** Reads the files again (SIGHUP, a file change); logs what happened. */
  reload(trigger: string): Promise<ReloadOutcome>;
  /**
   * A completed server certificate rotation: without a configured certificate the portal
   * presents the new pinned identity from the next handshake; a configured one stays.
   */
  switchIdentity(identity: CertificateIdentity): void;
  /** Stops watching the files. */
  close(): void;
}

export interface PortalCertificateOptions {
  settings?: PortalCertificateSettings;
  /** The pinned comms identity, presented when no certificate is configured. */
  identity: CertificateIdentity;
  logger: Logger;
  watchIntervalMs?: number;
  /** After a reload that changed the presented certificate (the audit log records it). */
  onReloaded?(change: { trigger: string; from: string; to: ServingCertificate }): void;
}

/**
 * Loads the configured certificate, failing start-up with a message naming the file when it
 * cannot be used at all. An expired one only logs an error: the fleet's comms do not depend
 * on it, and refusing to start would take them down for a portal problem.
 */
export async function createPortalCertificate(options: PortalCertificateOptions): Promise<PortalCertificate> {
  const { settings, logger } = options;
  if (!settings) {
    let identity = options.identity;
    let pin = spkiPinOfPem(identity.certPem);
    let served: https.Server | undefined;
    return {
      tlsOptions: () => baseTlsOptions(identity),
      publicKeyPin: () => pin,
      strictTransportSecurity: () => undefined,
      configured: () => undefined,
      serve: (server) => {
        served = server;
      },
      switchIdentity: (next) => {
        identity = next;
        pin = spkiPinOfPem(next.certPem);
        served?.setSecureContext(baseTlsOptions(next));
      },
      reload: async (trigger) => {
        logger.info({ trigger }, 'no --https-certificate is configured: the portal presents the pinned comms certificate, which is not reloaded');
        return { outcome: 'not-configured' };
      },
      close: () => {},
    };
  }

  let current = await load(settings);
  const problem = validityProblem(current);
  if (problem) logger.error({ file: settings.file, notAfter: current.notAfter.toISOString() }, `the HTTPS certificate ${settings.file} is presented although ${problem}; browsers will refuse it. Renew it: it is read again on change or SIGHUP`);
  if (current.selfSigned) logger.warn({ file: settings.file }, `the HTTPS certificate ${settings.file} is self-signed: browsers will warn, and no Strict-Transport-Security header is sent`);
  let server: https.Server | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let settle: NodeJS.Timeout | undefined;
  const watched = [settings.file, ...(settings.keyFile ? [settings.keyFile] : [])];
  const interval = options.watchIntervalMs ?? DEFAULT_CERTIFICATE_WATCH_INTERVAL_MS;

  const onChange = (now: Stats, before: Stats) => {
    if (now.mtimeMs === before.mtimeMs && now.ino === before.ino && now.size === before.size) return;
    clearTimeout(settle);
    settle = setTimeout(() => void reload('file change'), SETTLE_MS);
  };

  function reload(trigger: string): Promise<ReloadOutcome> {
    // One at a time: a SIGHUP during a file-change reload waits for it, then reads again.
    const next = queue.then(() => reloadNow(trigger));
    queue = next.catch(() => {});
    return next;
  }

  async function reloadNow(trigger: string): Promise<ReloadOutcome> {
    const kept = { thumbprint: current.thumbprint, notAfter: current.notAfter.toISOString() };
    let fresh: ServingCertificate;
    try {
      fresh = await load(settings!);
    } catch (err) {
      return refuse(trigger, errorMessage(err), kept);
    }
    if (fresh.thumbprint === current.thumbprint && fresh.chainPem === current.chainPem && fresh.keyPem === current.keyPem) {
      logger.info({ trigger, file: settings!.file, thumbprint: current.thumbprint }, 'HTTPS certificate unchanged');
      return { outcome: 'unchanged' };
    }
    const problem = validityProblem(fresh);
    if (problem) return refuse(trigger, `The HTTPS certificate ${settings!.file} cannot be used: ${problem}.`, kept);
    const from = current.thumbprint;
    current = fresh;
    server?.setSecureContext(tlsOptionsOf(current));
    options.onReloaded?.({ trigger, from, to: fresh });
    logger.info(
      { trigger, file: settings!.file, subject: fresh.subject, issuer: fresh.issuer, names: fresh.names, notAfter: fresh.notAfter.toISOString(), thumbprint: fresh.thumbprint },
      `HTTPS certificate reloaded (${trigger}): new connections get the new one; open connections and Tentacles are untouched`,
    );
    return { outcome: 'reloaded', certificate: fresh };
  }

  // The configured certificate is the operator's, not the pinned identity: a rotation leaves it.
  const switchIdentity = (): void => {};

  function refuse(trigger: string, reason: string, kept: { thumbprint: string; notAfter: string }): ReloadOutcome {
    logger.error({ trigger, file: settings!.file, kept }, `HTTPS certificate not reloaded (${trigger}): ${reason} The previous certificate (thumbprint ${kept.thumbprint}, valid until ${kept.notAfter}) is still presented.`);
    return { outcome: 'refused', reason };
  }

  return {
    tlsOptions: () => tlsOptionsOf(current),
    publicKeyPin: () => current.publicKeyPin,
    strictTransportSecurity: () => (current.selfSigned ? undefined : STRICT_TRANSPORT_SECURITY),
    configured: () => current,
    serve(target) {
      server = target; // created with tlsOptions(); each reload sets its new context
      for (const file of watched) watchFile(file, { interval, persistent: false }, onChange);
    },
    reload,
    switchIdentity,
    close() {
      clearTimeout(settle);
      for (const file of watched) unwatchFile(file, onChange);
    },
  };
}

function tlsOptionsOf(cert: ServingCertificate) {
  return baseTlsOptions({ ...cert, certPem: cert.chainPem });
}

async function load(settings: PortalCertificateSettings): Promise<ServingCertificate> {
  try {
    return await loadServingCertificate({ certFile: settings.file, keyFile: settings.keyFile, password: settings.password });
  } catch (err) {
    throw servingCertificateError(settings.file, err);
  }
}
