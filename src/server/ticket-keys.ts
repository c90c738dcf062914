import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../durable-fs.js';
import type { Logger } from '../logging.js';
import { newTicketKeys, TICKET_KEYS_BYTES } from '../comms/session-resumption.js';
import type { ClusterBus } from './cluster/bus.js';
import type { Coordination } from './store/coordination.js';

/**
 * The comms port's TLS session-ticket keys, kept across restarts so that a restarted
 * server resumes its Tentacles' sessions (a ticket is checked and decrypted with no
 * private-key operation) instead of doing thousands of full handshakes at once. A single
 * server keeps them in its data directory (file mode 0600); a cluster keeps them in the
 * store beside the cluster certificate, so any node resumes a session another node issued.
 *
 * They are secrets, as strong as the server's private key and more: whoever holds them can
 * forge a ticket carrying any registered Tentacle's certificate (a public thing) and be
 * taken for that Tentacle, or answer a Tentacle's resumption as the server. See
 * docs/security.md.
 *
 * Rotation: Node takes a single key set (`setTicketKeys`, 48 bytes), so there is no overlap
 * in which old tickets still open: a rotation turns every Tentacle's next reconnect into a
 * full handshake. Keys are therefore rotated while the server runs (checked hourly, after
 * TICKET_KEYS_ROTATE_MS), never at a start, when the whole fleet is coming back at once.
 */
/** Daily: tickets sealed with a stolen key set open for at most a day more (security.md). */
export const TICKET_KEYS_ROTATE_MS = 24 * 60 * 60 * 1000;
const CHECK_MS = 60 * 60 * 1000;
export const TICKET_KEYS_FILE = 'comms-ticket-keys.json';
const SHARED_SETTING = 'comms-ticket-keys';

export interface TicketKeys {
  keys: Buffer;
  createdAt: Date;
}

/** Where the keys live: a file for one server, a shared setting for a cluster. */
interface TicketKeySource {
  /** The stored keys, or `fresh` stored when there are none (or they cannot be read). */
  load(fresh: TicketKeys): Promise<TicketKeys>;
  replace(next: TicketKeys): Promise<void>;
}

export interface TicketKeeperOptions {
  dataDir: string;
  /** Set for a cluster: the keys are shared through the store. */
  coordination?: Coordination;
  bus: ClusterBus;
  logger: Logger;
  /** Applies keys that changed after the start (a rotation here or on another node). */
  apply(keys: Buffer): void;
  rotateAfterMs?: number;
  checkEveryMs?: number;
  now?: () => Date;
}

export class TicketKeeper {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  private constructor(
    private current: TicketKeys,
    private readonly source: TicketKeySource,
    private readonly options: TicketKeeperOptions,
  ) {}

  /** Reads (or makes and stores) the keys, then follows the bus and an hourly check. */
  static async start(options: TicketKeeperOptions): Promise<TicketKeeper> {
    const source = options.coordination ? sharedSource(options.coordination, options.logger) : fileSource(join(options.dataDir, TICKET_KEYS_FILE), options.logger);
    const now = options.now ?? (() => new Date());
    const keeper = new TicketKeeper(await source.load({ keys: newTicketKeys(), createdAt: now() }), source, options);
    options.bus.subscribe((event) => {
      if (event.kind === 'ticket-keys' || event.kind === 'resync') void keeper.check();
    });
    keeper.timer = setInterval(() => void keeper.check(), options.checkEveryMs ?? CHECK_MS);
    keeper.timer.unref();
    return keeper;
  }

  get keys(): Buffer {
    return this.current.keys;
  }

  get createdAt(): Date {
    return this.current.createdAt;
  }

  /** Re-reads the stored keys (another node may have rotated them), and rotates them when due. */
  check(): Promise<void> {
    this.checking ??= this.checkNow().finally(() => (this.checking = undefined));
    return this.checking;
  }

  /** New keys now, stored and applied here, and announced to the other nodes. */
  async rotate(): Promise<void> {
    const next = { keys: newTicketKeys(), createdAt: this.now() };
    await this.source.replace(next);
    this.use(next);
    this.options.bus.publish({ kind: 'ticket-keys' });
    this.options.logger.info({ createdAt: next.createdAt.toISOString() }, 'comms: rotated the TLS session-ticket keys; Tentacles do a full handshake on their next reconnect');
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async checkNow(): Promise<void> {
    try {
      // Stored keys that are gone (deleted after a suspected theft) are replaced with new
      // ones, never with the ones in use here.
      this.use(await this.source.load({ keys: newTicketKeys(), createdAt: this.now() }));
      if (this.now().getTime() - this.current.createdAt.getTime() >= (this.options.rotateAfterMs ?? TICKET_KEYS_ROTATE_MS)) await this.rotate();
    } catch (err) {
      this.options.logger.warn({ err }, 'comms: could not check the TLS session-ticket keys; the current ones stay in use');
    }
  }

  private use(next: TicketKeys): void {
    if (next.keys.equals(this.current.keys)) return;
    this.current = next;
    this.options.apply(next.keys);
  }

  private now(): Date {
    return (this.options.now ?? (() => new Date()))();
  }
}

function encode({ keys, createdAt }: TicketKeys): string {
  return JSON.stringify({ version: 1, keys: keys.toString('base64'), createdAt: createdAt.toISOString() });
}

/** The stored keys, or undefined when the text is not keys this version wrote. */
function decode(text: string): TicketKeys | undefined {
  try {
    const value = JSON.parse(text) as { version?: unknown; keys?: unknown; createdAt?: unknown };
    if (value.version !== 1 || typeof value.keys !== 'string' || typeof value.createdAt !== 'string') return undefined;
    const keys = Buffer.from(value.keys, 'base64');
    const createdAt = new Date(value.createdAt);
    if (keys.length !== TICKET_KEYS_BYTES || Number.isNaN(createdAt.getTime())) return undefined;
    return { keys, createdAt };
  } catch {
    return undefined;
  }
}

function fileSource(path: string, logger: Logger): TicketKeySource {
  const replace = (next: TicketKeys) => writeFileAtomic(path, encode(next) + '\n', { mode: 0o600 });
  return {
    async load(fresh) {
      let text: string | undefined;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const stored = text === undefined ? undefined : decode(text);
      if (stored) return stored;
      // Losing them costs one round of full handshakes, nothing else: replace, say so.
      if (text !== undefined) logger.warn({ path }, 'comms: the TLS session-ticket key file could not be read; it is replaced with new keys');
      await replace(fresh);
      return fresh;
    },
    replace,
  };
}

function sharedSource(coordination: Coordination, logger: Logger): TicketKeySource {
  return {
    async load(fresh) {
      // The first node to start stores its keys; the others adopt them.
      const stored = decode(await coordination.sharedSetting(SHARED_SETTING, encode(fresh)));
      if (stored) return stored;
      logger.warn('comms: the TLS session-ticket keys stored for the cluster could not be read; they are replaced with new keys');
      await coordination.replaceSharedSetting(SHARED_SETTING, encode(fresh));
      return fresh;
    },
    replace: (next) => coordination.replaceSharedSetting(SHARED_SETTING, encode(next)),
  };
}
