import { ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { normalizeThumbprint, type Thumbprint } from '../../pki/thumbprint.js';
import { readConfigFile, writeConfigFile, type TentacleConfig } from '../config.js';
import { withFileLock } from '../file-lock.js';

export interface TrustServiceOptions {
  /** The config file holding the trust list; changes are written there and survive restarts. */
  configPath?: string;
  /** The config as the agent runs it now (used when there is no file, in tests). */
  current(): TentacleConfig;
  /** Applies a changed config at once (the agent's reload). */
  apply(next: TentacleConfig): Promise<void>;
  logger: Logger;
}

/**
 * The server's half of its certificate rotation (docs/security.md): over a link this
 * Tentacle already trusts, the server may add the thumbprint of its next certificate, and
 * later drop its old one. Nothing else about trust can be changed remotely, and the
 * thumbprint a request came over can never be dropped by it: a server cannot lock itself
 * out, nor lock out every server.
 */
export class TrustService {
  constructor(private readonly options: TrustServiceOptions) {}

  add(thumbprint: string, via: Thumbprint): Promise<Thumbprint[]> {
    const tp = normalizeThumbprint(thumbprint);
    return this.change((trust) => {
      if (trust.includes(tp)) return trust;
      this.options.logger.info({ thumbprint: tp, requestedBy: via }, 'certificate rotation: now also trusting the server certificate the server announced');
      return [...trust, tp];
    });
  }

  drop(thumbprint: string, via: Thumbprint): Promise<Thumbprint[]> {
    const tp = normalizeThumbprint(thumbprint);
    return this.change((trust) => {
      if (!trust.includes(tp)) return trust;
      if (tp === via) {
        throw new ReefError('REEF_TRUST_CHANGE_REFUSED', `The server asked to drop ${tp}, the certificate this very connection was made with; refused (it would cut the server off).`);
      }
      if (!trust.includes(via)) {
        throw new ReefError('REEF_TRUST_CHANGE_REFUSED', `The server on ${via} is not trusted any more, so it cannot change the trust list.`);
      }
      this.options.logger.info({ thumbprint: tp, requestedBy: via }, 'certificate rotation: no longer trusting the old server certificate');
      return trust.filter((t) => t !== tp);
    });
  }

  private async change(mutate: (trust: Thumbprint[]) => Thumbprint[]): Promise<Thumbprint[]> {
    const { configPath } = this.options;
    if (!configPath) {
      const config = this.options.current();
      const trust = mutate([...config.trust]);
      if (trust.length !== config.trust.length) await this.options.apply({ ...config, trust });
      return trust;
    }
    // Under the same lock as `tentacle configure`, so a concurrent edit is not lost.
    const next = await withFileLock(`${configPath}.lock`, async () => {
      const config = await readConfigFile(configPath);
      const trust = mutate([...config.trust]);
      if (trust.length === config.trust.length) return config;
      const changed = { ...config, trust };
      await writeConfigFile(configPath, changed);
      return changed;
    });
    await this.options.apply(next);
    return next.trust;
  }
}
