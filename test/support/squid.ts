/**
 * Debian's squid as a corporate proxy inside a network namespace (see ./netns.ts): basic
 * authentication against an htpasswd file (squid's basic_ncsa_auth helper) and CONNECT
 * allowed to port 443 only, as squid's default configuration (SSL_ports) has it. Its
 * config, password file and logs live in a temp folder; nothing of the host's squid
 * (/etc/squid, /var/log/squid, /run/squid.pid) is read or written, so a squid the package
 * started as a service does not get in the way.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Namespace } from './netns.js';
import { runTracked, stopProcess, trackedTempDir } from './processes.js';

const SQUID = '/usr/sbin/squid';
const NCSA_AUTH = '/usr/lib/squid/basic_ncsa_auth';
const HTPASSWD = '/usr/bin/htpasswd';
/** Squid refuses to run as root; started by root it switches to this user (Debian's default). */
const SQUID_USER = 'proxy';

/** Why squid cannot run here, or undefined when it can. */
export function squidUnavailable(): string | undefined {
  if (!existsSync(SQUID) || !existsSync(NCSA_AUTH)) return 'squid is missing (apt-get install squid)';
  if (!existsSync(HTPASSWD)) return 'htpasswd is missing (apt-get install apache2-utils)';
  if (spawnSync('id', ['-u', SQUID_USER]).status !== 0) return `the user "${SQUID_USER}" squid runs as does not exist`;
  return undefined;
}

export interface SquidOptions {
  /** The address it listens on, inside `ns`. */
  address: string;
  port: number;
  /** user -> password: the only ones allowed through. */
  users: Record<string, string>;
}

/** One line of squid's native access.log. */
export interface AccessLogLine {
  /** e.g. TCP_TUNNEL/200, TCP_DENIED/407, TCP_DENIED/403. */
  result: string;
  method: string;
  /** For CONNECT, host:port. */
  url: string;
  /** The user the request named ("-" when none). */
  user: string;
}

export interface Squid {
  readonly address: string;
  readonly port: number;
  /** Its temp folder: config, password file, logs. */
  readonly dir: string;
  /** What squid has logged to access.log so far (blank and malformed lines skipped). */
  accessLog(): Promise<AccessLogLine[]>;
  /** What it printed so far (its cache.log at debug level 1), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts squid in the foreground inside `ns`; resolves once it accepts connections. */
export async function startSquid(ns: Namespace, options: SquidOptions): Promise<Squid> {
  const dir = await trackedTempDir('reef-squid-');
  const passwords = join(dir, 'passwd');
  for (const [user, password] of Object.entries(options.users)) {
    const made = await runTracked(HTPASSWD, ['-b', '-m', ...(existsSync(passwords) ? [] : ['-c']), passwords, user, password], { timeoutMs: 10_000 });
    if (made.code !== 0) throw new Error(`htpasswd exited ${made.code}: ${made.stderr.trim()}`);
  }
  const config = join(dir, 'squid.conf');
  await writeFile(
    config,
    [
      `http_port ${options.address}:${options.port}`,
      `pid_filename ${join(dir, 'squid.pid')}`,
      `access_log stdio:${join(dir, 'access.log')}`,
      `cache_log ${join(dir, 'cache.log')}`,
      'cache_store_log none',
      `coredump_dir ${dir}`,
      'cache deny all',
      'cache_mem 8 MB',
      // No ICMP pinger helper: nothing here measures round trips to peers.
      'pinger_enable off',
      // Stopping is the end of a test, not of anybody's download.
      'shutdown_lifetime 1 seconds',
      `auth_param basic program ${NCSA_AUTH} ${passwords}`,
      'auth_param basic children 2',
      'auth_param basic realm branch office proxy',
      // As squid's default squid.conf: CONNECT to anything but 443 is denied before any login.
      'acl SSL_ports port 443',
      'acl CONNECT method CONNECT',
      'acl authenticated proxy_auth REQUIRED',
      'http_access deny CONNECT !SSL_ports',
      'http_access allow authenticated',
      'http_access deny all',
      '',
    ].join('\n'),
  );
  const uid = Number(spawnSync('id', ['-u', SQUID_USER], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', SQUID_USER], { encoding: 'utf8' }).stdout.trim());
  // Squid writes its logs and pid file here, and its helper reads the passwords, as that user.
  for (const path of [dir, passwords, config]) await chown(path, uid, gid);

  // -N: foreground, no workers; -d 1: its cache.log on stderr too, which says when it listens.
  const child = ns.spawn(SQUID, ['-N', '-d', '1', '-f', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-64 * 1024);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  await listening(child, () => output, `${options.address}:${options.port}`);

  let stopped: Promise<void> | undefined;
  return {
    address: options.address,
    port: options.port,
    dir,
    output: () => output,
    accessLog: async () => parseAccessLog(await readFile(join(dir, 'access.log'), 'utf8').catch(() => '')),
    stop() {
      stopped ??= stopProcess(child, 'SIGTERM', 5000);
      return stopped;
    },
  };
}

/** Native format: time elapsed client result/status bytes method url user hierarchy/peer type. */
export function parseAccessLog(text: string): AccessLogLine[] {
  const lines: AccessLogLine[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    lines.push({ result: fields[3]!, method: fields[5]!, url: fields[6]!, user: fields[7]! });
  }
  return lines;
}

function listening(child: ChildProcess, output: () => string, at: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`squid did not listen on ${at} within 15 s:\n${output()}`)), 15_000);
    const check = () => {
      if (output().includes(`Accepting HTTP Socket connections at`) && output().includes(`local=${at} `)) done();
    };
    const exited = (code: number | null) => done(new Error(`squid exited (${code}) before listening on ${at}:\n${output()}`));
    function done(err?: Error) {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.stderr!.off('data', check);
      child.off('exit', exited);
      if (err) reject(err);
      else resolve();
    }
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', exited);
  });
}
