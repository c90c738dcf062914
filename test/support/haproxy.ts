/**
 * HAProxy for tests: a given config body in a temp dir, run in the foreground (`-db`) on
 * free ports of 127.0.0.1. No daemon, pid, chroot or user lines, so it runs as root or not
 * without touching anything outside the temp dir; its log goes to stdout (Daemon.output()).
 */
import { join } from 'node:path';
import { startDaemon, type Daemon } from './tinyproxy.js';

export const HAPROXY = '/usr/sbin/haproxy';

export interface HaproxyContext {
  /** Free ports on 127.0.0.1 for the body's `bind` lines. */
  ports: number[];
  /** The temp dir: where `files` were written. */
  dir: string;
}

export interface HaproxyOptions {
  /** How many free ports to pick (default 1); HAProxy is ready once all accept connections. */
  ports?: number;
  /** Extra files for the temp dir (certificates, maps), by name. */
  files?: Record<string, string>;
  /** The config after the `global` and `defaults` sections: frontends and backends. */
  config(ctx: HaproxyContext): string;
}

/** `global` and `defaults` for a foreground test instance: logs to stdout, short timeouts for connecting. */
const PREAMBLE = `global
  log stdout format raw local0 info
  maxconn 256

defaults
  log global
  mode tcp
  option tcplog
  timeout connect 5s
  timeout client 1h
  timeout server 1h
`;

export function startHaproxy(options: HaproxyOptions): Promise<Daemon> {
  return startDaemon({
    name: 'haproxy',
    command: HAPROXY,
    ports: options.ports ?? 1,
    files: ({ dir, ports }) => ({ ...options.files, 'haproxy.cfg': `${PREAMBLE}\n${options.config({ ports, dir })}\n` }),
    // -db: foreground, no daemon mode; -f: the config.
    args: ({ dir }) => ['-db', '-f', join(dir, 'haproxy.cfg')],
  });
}
