import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { ReefError } from '../errors.js';
import { normalizeThumbprint } from '../pki/thumbprint.js';
import { writeFileAtomic } from '../durable-fs.js';
import { withFileLock } from './file-lock.js';
import { resolveInstance } from './instance-index.js';
import { defaultAppDir, tentacleRoot } from './paths.js';

/** One Tentacle instance's settings: `<config path>` (default `<root>/instances/<name>/tentacle.json`). */
export interface TentacleConfig {
  version: 1;
  instance: string;
  /** Holds the certificate (comms.cert.pem/comms.key.pem), workspace/, logs/, the service pid file. */
  home: string;
  /** Where packages are deployed; default `<home>/Applications`. */
  app: string;
  /** Listening mode. Off by default (Reef is polling first); `configure --port` turns it on. */
  listen: { enabled: boolean; host: string; port: number };
  /** Trusted server thumbprints, normalized (64 uppercase hex digits). */
  trust: string[];
  /** Polling targets, one per server node; filled by register-with / poll-server. */
  servers: PolledServer[];
  /**
   * Folders push-file may write into; default [app]. The Tentacle's own files (home,
   * config, keys, workspace, logs) stay refused even when a root covers them (own-paths.ts).
   */
  allowedRoots: string[];
  /** HTTP proxy for REST calls to the server (`tentacle proxy`). */
  proxy: ProxySettings | null;
  /** HTTP CONNECT proxy for polling connections (`tentacle polling-proxy`). */
  pollingProxy: ProxySettings | null;
  /**
   * Fixed addresses for host names, like curl's --resolve: `"polling.example.com:443":
   * "10.0.0.5"` connects there while TLS still uses the name (SNI). For split-horizon DNS,
   * and for tests without DNS. Applies to comms and to REST calls.
   */
  resolve?: Record<string, string>;
  /**
   * Days a finished script the server has not collected is kept (its lines and outcome),
   * so a server that lost contact for longer still gets them; default 7
   * (`tentacle configure --script-retention-days`).
   */
  scriptRetentionDays?: number;
  registration: { serverUrl: string; machineName: string; kind: 'target' | 'worker'; apiThumbprint?: string } | null;
}

export interface PolledServer {
  thumbprint: string;
  /** e.g. 'tcp://host:10943', 'https://polling.example.com:443', 'wss://host/reef/comms' */
  address: string;
  apiUrl?: string;
}

/**
 * null (not configured): HTTPS_PROXY / NO_PROXY from the environment apply. `enabled:
 * false`: never use a proxy. Enabled without a host: the environment's proxy.
 */
export interface ProxySettings {
  /** Absent means enabled. */
  enabled?: boolean;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
}

export const DEFAULT_LISTEN_PORT = 10933;
export const DEFAULT_LISTEN_HOST = '0.0.0.0';
/** The server's comms port polling Tentacles dial when none is named. */
export const DEFAULT_SERVER_COMMS_PORT = 10943;

const absolutePath = z.string().min(1).refine((p) => isAbsolute(p), { message: 'must be an absolute path' });

/** Accepts thumbprints as people paste them (hand-edited files), stores them normalized. */
const thumbprint = z.string().transform((value, ctx) => {
  try {
    return normalizeThumbprint(value);
  } catch {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${value}" is not a SHA-256 thumbprint (64 hex digits)` });
    return z.NEVER;
  }
});

const port = z.number().int().min(1).max(65535);

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(', ')}` },
  );

const proxySchema = z
  .object({
    enabled: z.boolean().optional(),
    host: z.string().min(1).optional(),
    port: port.optional(),
    username: z.string().optional(),
    password: z.string().optional(),
  })
  .strict()
  .refine((p) => (p.host === undefined) === (p.port === undefined), { message: 'host and port go together' });

/** "host:port" -> IP address, as curl's --resolve. */
const resolveSchema = z.record(
  z.string().regex(/^[^\s:]+:\d{1,5}$/, 'keys are host:port'),
  z.string().refine((address) => isIP(address) !== 0, 'values are IP addresses'),
);

/** Unknown keys are rejected: in a hand-edited file they are nearly always typos. */
export const TentacleConfigSchema = z
  .object({
    version: z.literal(1),
    instance: z.string().min(1),
    home: absolutePath,
    app: absolutePath,
    listen: z.object({ enabled: z.boolean(), host: z.string().min(1), port }).strict(),
    trust: z.array(thumbprint),
    servers: z.array(
      z
        .object({
          thumbprint,
          address: url(['tcp:', 'https:', 'wss:']),
          apiUrl: url(['http:', 'https:']).optional(),
        })
        .strict(),
    ),
    allowedRoots: z.array(absolutePath),
    proxy: proxySchema.nullable(),
    pollingProxy: proxySchema.nullable(),
    resolve: resolveSchema.optional(),
    scriptRetentionDays: z.number().positive().max(3650).optional(),
    registration: z
      .object({
        serverUrl: url(['http:', 'https:']),
        machineName: z.string().min(1),
        kind: z.enum(['target', 'worker']),
        apiThumbprint: thumbprint.optional(),
      })
      .strict()
      .nullable(),
  })
  .strict();

// Keeps the schema and the interface from drifting apart: each must be assignable to the other.
type SchemaOutput = z.output<typeof TentacleConfigSchema>;
const _schemaMatchesInterface: [SchemaOutput] extends [TentacleConfig] ? ([TentacleConfig] extends [SchemaOutput] ? true : false) : false = true;
void _schemaMatchesInterface;

export function defaultConfig(instance: string, home: string, app = defaultAppDir(home)): TentacleConfig {
  return {
    version: 1,
    instance,
    home,
    app,
    listen: { enabled: false, host: DEFAULT_LISTEN_HOST, port: DEFAULT_LISTEN_PORT },
    trust: [],
    servers: [],
    allowedRoots: [app],
    proxy: null,
    pollingProxy: null,
    registration: null,
  };
}

/** Validates parsed JSON; errors name the file and every field that is wrong. */
export function parseConfig(json: unknown, source: string): TentacleConfig {
  const parsed = TentacleConfigSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`)
      .join('; ');
    throw new ReefError('REEF_CONFIG_INVALID', `Config file ${source} is invalid: ${problems}.`);
  }
  return parsed.data;
}

export async function readConfigFile(path: string): Promise<TentacleConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ReefError(
      code === 'ENOENT' ? 'REEF_FILE_NOT_FOUND' : 'REEF_FILE_UNREADABLE',
      code === 'ENOENT'
        ? `Config file ${path} does not exist. Recreate the instance with "tentacle create-instance --config ${path}".`
        : `Cannot read config file ${path}: ${(err as Error).message}.`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ReefError('REEF_CONFIG_INVALID', `Config file ${path} is not valid JSON: ${(err as Error).message}.`, { cause: err });
  }
  return parseConfig(json, path);
}

/** Validates, then writes atomically with mode 0600 (the file may hold proxy passwords). */
export async function writeConfigFile(path: string, config: TentacleConfig): Promise<void> {
  const valid = parseConfig(config, path);
  await writeFileAtomic(path, JSON.stringify(valid, null, 2) + '\n', { mode: 0o600 });
}

export interface LoadedInstance {
  name: string;
  configPath: string;
  config: TentacleConfig;
}

export async function loadInstance(name: string, root = tentacleRoot()): Promise<LoadedInstance> {
  const { configPath } = await resolveInstance(name, root);
  const config = await readConfigFile(configPath);
  if (config.instance !== name) {
    throw new ReefError(
      'REEF_CONFIG_INVALID',
      `Config file ${configPath} belongs to instance "${config.instance}", but the instance index lists it for "${name}". ` +
        `Fix the "instance" field or re-create the instance.`,
    );
  }
  return { name, configPath, config };
}

export async function loadConfig(instanceName: string, root = tentacleRoot()): Promise<TentacleConfig> {
  return (await loadInstance(instanceName, root)).config;
}

export async function saveConfig(config: TentacleConfig, root = tentacleRoot()): Promise<void> {
  const { configPath } = await resolveInstance(config.instance, root);
  await writeConfigFile(configPath, config);
}

/**
 * Load, change, save under a lock on the config file, so two commands changing the same
 * instance at once (say `configure --trust` and `poll-server`) do not lose either change.
 * `mutate` may change the object in place or return a new one.
 */
export async function updateConfig(
  instanceName: string,
  mutate: (config: TentacleConfig) => TentacleConfig | void | Promise<TentacleConfig | void>,
  root = tentacleRoot(),
): Promise<TentacleConfig> {
  const { configPath } = await resolveInstance(instanceName, root);
  return withFileLock(`${configPath}.lock`, async () => {
    const { config } = await loadInstance(instanceName, root);
    const next = (await mutate(config)) ?? config;
    await writeConfigFile(configPath, next);
    return next;
  });
}

/** A copy safe to print: proxy passwords are replaced by a marker. */
export function redactConfig(config: TentacleConfig): TentacleConfig {
  const redact = (proxy: ProxySettings | null): ProxySettings | null =>
    proxy && (proxy.password === undefined ? { ...proxy } : { ...proxy, password: '********' });
  return { ...config, proxy: redact(config.proxy), pollingProxy: redact(config.pollingProxy) };
}
