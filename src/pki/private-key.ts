import { createPrivateKey, type KeyObject } from 'node:crypto';
import { ReefError } from '../errors.js';

/** RSA keys shorter than this are refused: 1024-bit RSA is within reach of a determined attacker. */
export const MIN_RSA_BITS = 2048;

/** Curves that Node's TLS (OpenSSL) will sign a handshake with. */
const TLS_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/**
 * Reads one PEM private key block: PKCS#8 ("PRIVATE KEY"), encrypted PKCS#8
 * ("ENCRYPTED PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"), the
 * last two possibly with OpenSSL's legacy "Proc-Type: 4,ENCRYPTED" headers.
 */
export function readPrivateKeyPem(pem: string, password?: string): KeyObject {
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,\s*ENCRYPTED/.test(pem);
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase: password });
  } catch (err) {
    if (encrypted) throw passwordError(password, 'private key', err);
    throw new ReefError(
      'REEF_BAD_PRIVATE_KEY',
      `The private key could not be read (${(err as Error).message}). ` +
        'Expected a PEM private key in PKCS#8, PKCS#1 (RSA) or SEC1 (EC) form.',
      { cause: err },
    );
  }
}

/** Reads an unencrypted DER PKCS#8 private key (as unwrapped from a PKCS#12 file). */
export function readPrivateKeyDer(der: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new ReefError('REEF_BAD_PRIVATE_KEY', `The private key could not be read (${(err as Error).message}).`, {
      cause: err,
    });
  }
}

/** Refuses keys that are too weak, or that TLS cannot use for a handshake signature. */
export function assertUsableKey(key: KeyObject): void {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) {
        throw new ReefError(
          'REEF_WEAK_KEY',
          `The RSA key is ${bits} bits long; Reef needs at least ${MIN_RSA_BITS} bits. ` +
            'Create a new certificate with a stronger key (RSA 3072 or ECDSA P-256), or let Reef generate one.',
        );
      }
      return;
    }
    case 'ec':
      if (details.namedCurve !== undefined && details.namedCurve in TLS_CURVES) return;
      throw new ReefError(
        'REEF_UNSUPPORTED_KEY',
        `The EC key uses curve ${details.namedCurve ?? '(unknown)'}, which TLS cannot sign with here; ` +
          `use one of ${Object.values(TLS_CURVES).join(', ')}.`,
      );
    case 'ed25519':
      return;
    default:
      throw new ReefError(
        'REEF_UNSUPPORTED_KEY',
        `Private keys of type ${key.asymmetricKeyType ?? '(unknown)'} are not supported; ` +
          `use ECDSA (${Object.values(TLS_CURVES).join(', ')}), RSA (${MIN_RSA_BITS} bits or more) or Ed25519.`,
      );
  }
}

export function passwordError(password: string | undefined, what: string, cause?: unknown): ReefError {
  return password === undefined || password === ''
    ? new ReefError('REEF_PASSWORD_REQUIRED', `The ${what} is encrypted; supply the password it was protected with.`, { cause })
    : new ReefError(
        'REEF_BAD_PASSWORD',
        `The password does not open the ${what}. Check the password and try again.`,
        { cause },
      );
}
