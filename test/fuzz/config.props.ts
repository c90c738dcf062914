/**
 * Properties of the two config file parsers: the Tentacle's (src/tentacle/config.ts) and
 * the server's `--config` file (src/cli/reef-server.ts resolveServerSettings). Any JSON,
 * any object, any field replaced by junk: a config, or REEF_CONFIG_INVALID naming the
 * file and the field; never another exception. What they accept must be usable.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { resolveServerSettings } from '../../src/cli/reef-server.js';
import { resolveLimits } from '../../src/comms/limits.js';
import { parseConfig, readConfigFile, writeConfigFile, type TentacleConfig } from '../../src/tentacle/config.js';
import { expectReefError } from './util.js';

const hex64 = fc.stringMatching(/^[0-9A-F]{64}$/);
const absPath = fc.array(fc.stringMatching(/^[a-zA-Z0-9._-]{1,12}$/), { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const hostArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}(\.[a-z][a-z0-9-]{0,10}){0,2}$/)
  // Labels like xn--... are punycode, and invalid ones are not host names at all.
  .filter((h) => !/(^|\.)..--/.test(h));
const portArb = fc.integer({ min: 1, max: 65535 });
const proxyArb = fc.option(
  fc.oneof(
    fc.record({ enabled: fc.boolean() }, { requiredKeys: [], noNullPrototype: true }),
    fc.record({ enabled: fc.boolean(), host: hostArb, port: portArb, username: fc.string(), password: fc.string() }, { requiredKeys: ['host', 'port'], noNullPrototype: true }),
  ),
  { nil: null },
);

/** Valid Tentacle configs, as JSON would hold them. */
export const tentacleConfigArb: fc.Arbitrary<TentacleConfig> = fc.record(
  {
    version: fc.constant(1 as const),
    instance: fc.string({ minLength: 1, maxLength: 20 }),
    home: absPath,
    app: absPath,
    listen: fc.record({ enabled: fc.boolean(), host: fc.constantFrom('0.0.0.0', '127.0.0.1', '::'), port: portArb }, { noNullPrototype: true }),
    trust: fc.array(hex64, { maxLength: 3 }),
    servers: fc.array(
      fc.record(
        {
          thumbprint: hex64,
          address: fc.tuple(fc.constantFrom('tcp', 'https', 'wss'), hostArb, portArb).map(([s, h, p]) => `${s}://${h}:${p}`),
          apiUrl: hostArb.map((h) => `https://${h}:8443`),
        },
        { requiredKeys: ['thumbprint', 'address'], noNullPrototype: true },
      ),
      { maxLength: 3 },
    ),
    allowedRoots: fc.array(absPath, { maxLength: 3 }),
    proxy: proxyArb,
    pollingProxy: proxyArb,
    resolve: fc.dictionary(fc.tuple(hostArb, portArb).map(([h, p]) => `${h}:${p}`), fc.constantFrom('10.0.0.5', '127.0.0.1', '::1'), { maxKeys: 3, noNullPrototype: true }),
    registration: fc.option(
      fc.record(
        { serverUrl: hostArb.map((h) => `https://${h}:8443`), machineName: fc.string({ minLength: 1, maxLength: 20 }), kind: fc.constantFrom('target' as const, 'worker' as const), apiThumbprint: hex64 },
        { requiredKeys: ['serverUrl', 'machineName', 'kind'], noNullPrototype: true },
      ),
      { nil: null },
    ),
  },
  { requiredKeys: ['version', 'instance', 'home', 'app', 'listen', 'trust', 'servers', 'allowedRoots', 'proxy', 'pollingProxy', 'registration'], noNullPrototype: true },
) as fc.Arbitrary<TentacleConfig>;

/** Junk of every JSON shape, plus a few near misses. */
const junk = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('', 'relative/path', 'not a url', '12:34', -1, 0, 65536, 1.5, 1e309, true, null, [], {}, 'http://x', 'ftp://x'),
);

type Path = Array<string | number>;

/** Every path to a value inside `value` (objects and arrays), the root excluded. */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
}

function setAt(root: any, path: Path, replacement: unknown, remove: boolean): void {
  let node = root;
  for (const key of path.slice(0, -1)) node = node[key];
  const last = path.at(-1)!;
  if (remove && !Array.isArray(node)) delete node[last];
  else node[last] = replacement;
}

/** parseConfig of any JSON value: a config or REEF_CONFIG_INVALID naming the file. */
export function tentacleConfigRandomJson(runs: number): void {
  fc.assert(
    fc.property(fc.jsonValue(), (json) => {
      try {
        parseConfig(json, '/etc/fuzz/tentacle.json');
      } catch (err) {
        const e = expectReefError(err, ['REEF_CONFIG_INVALID']);
        assert.match(e.message, /^Config file \/etc\/fuzz\/tentacle\.json is invalid: /);
      }
    }),
    { numRuns: runs },
  );
}

/**
 * A valid config parses to itself; with one field replaced by junk, removed, or an unknown
 * key added, it either still parses or the error names exactly that field.
 */
export function tentacleConfigMutations(runs: number): void {
  fc.assert(
    fc.property(tentacleConfigArb, (config) => {
      assert.deepEqual(parseConfig(structuredClone(config), 'c.json'), config);
    }),
    { numRuns: runs },
  );
  fc.assert(
    fc.property(tentacleConfigArb, fc.nat(), junk, fc.constantFrom('replace', 'remove', 'add'), fc.stringMatching(/^[a-zA-Z_]{1,10}$/), (config, pick, value, how, newKey) => {
      const copy: any = structuredClone(config);
      const paths = pathsOf(copy);
      const path = paths[pick % paths.length]!;
      let named: string;
      if (how === 'add') {
        const parent = path.slice(0, -1).reduce((n: any, k) => n[k], copy);
        fc.pre(parent !== null && typeof parent === 'object' && !Array.isArray(parent) && !(newKey in parent) && newKey !== 'resolve');
        // Record keys (resolve) are free-form; everywhere else unknown keys are refused.
        fc.pre(path[0] !== 'resolve');
        parent[newKey] = value;
        named = newKey;
      } else {
        setAt(copy, path, value, how === 'remove');
        named = path.join('.');
      }
      try {
        parseConfig(copy, 'c.json');
      } catch (err) {
        const e = expectReefError(err, ['REEF_CONFIG_INVALID']);
        // A check on a whole object (proxy: "host and port go together") names the object and the key.
        const parent = path.slice(0, -1).join('.');
        const ok = e.message.includes(named) || (how !== 'add' && parent !== '' && e.message.includes(`${parent}: `) && e.message.includes(String(path.at(-1))));
        assert.ok(ok, `the error should name "${named}": ${e.message}`);
      }
    }),
    { numRuns: runs },
  );
}

/** Files: random bytes give REEF_CONFIG_INVALID; valid configs survive write + read and are written 0600. */
export async function tentacleConfigFiles(runs: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-fuzz-config-'));
  try {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v)))), async (bytes) => {
        const file = join(dir, `random-${n++}.json`);
        await writeFile(file, bytes);
        try {
          await readConfigFile(file);
        } catch (err) {
          const e = expectReefError(err, ['REEF_CONFIG_INVALID']);
          assert.ok(e.message.includes(file), e.message);
        }
      }),
      { numRuns: runs },
    );
    await fc.assert(
      fc.asyncProperty(tentacleConfigArb, async (config) => {
        const file = join(dir, `valid-${n++}.json`);
        await writeConfigFile(file, config);
        assert.equal((await stat(file)).mode & 0o777, 0o600);
        assert.deepEqual(await readConfigFile(file), config);
      }),
      { numRuns: Math.max(1, Math.floor(runs / 4)) },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const SERVER_KEYS = ['dataDir', 'store', 'httpsPort', 'commsPort', 'host', 'nodeName', 'pickupTimeoutSeconds', 'pollingHostnames', 'websocketPath', 'proxyProtocol', 'logQuotaMiB', 'metricsListen', 'apiRequestsPerMinute', 'anonymousRequestsPerMinute'] as const;

const serverValue = fc.oneof(
  junk,
  fc.integer({ min: -10, max: 70000 }),
  fc.double({ noNaN: true }),
  fc.constantFrom(1e7, 2_147_483, 2_147_484, 1e308, 0.001),
  fc.string({ maxLength: 12 }).map((s) => `/${s}`),
  fc.constantFrom('127.0.0.1:9464', '[::1]:0', 'localhost:65536', ':9464', '[::1]'),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
);
const serverConfigArb = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.dictionary(fc.constantFrom(...SERVER_KEYS, 'unknownKey'), serverValue, { maxKeys: 6 }).map((o) => JSON.stringify(o)),
  fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b).toString('latin1')),
  // JSON text that JSON.stringify cannot produce: 1e309 parses to Infinity.
  fc.constantFrom('{"pickupTimeoutSeconds": 1e309}', '{"httpsPort": 1e309}', '{"commsPort": -0}', '{"pickupTimeoutSeconds": 5e-324}'),
);

/**
 * resolveServerSettings({config}) on any file: settings a server can start with (ports
 * 0-65535, limits resolveLimits accepts, timers Node can set), or REEF_CONFIG_INVALID /
 * REEF_INVALID_ARGUMENT naming the field. Never a crash.
 */
export async function serverConfigFiles(runs: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-fuzz-server-config-'));
  try {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(serverConfigArb, async (text) => {
        const file = join(dir, `server-${n++}.json`);
        await writeFile(file, text);
        let parsedKeys: string[] = [];
        try {
          const json = JSON.parse(text);
          if (json && typeof json === 'object' && !Array.isArray(json)) parsedKeys = Object.keys(json);
        } catch {
          // not JSON
        }
        try {
          const settings = await resolveServerSettings({ config: file });
          for (const port of [settings.httpsPort, settings.commsPort]) assert.ok(Number.isInteger(port) && port >= 0 && port <= 65535, `port ${port}`);
          const limits = resolveLimits(settings.limits);
          assert.ok(limits.pickupTimeoutMs > 0 && limits.pickupTimeoutMs <= 0x7fffffff, `pickupTimeoutMs ${limits.pickupTimeoutMs} cannot be a Node timer`);
          assert.ok(typeof settings.dataDir === 'string' && settings.dataDir.startsWith('/'));
          const quota = settings.logQuotaBytes;
          assert.ok(quota === undefined || (Number.isSafeInteger(quota) && quota >= 1024 * 1024), `logQuotaBytes ${quota}`);
          for (const budget of Object.values(settings.apiLimits ?? {})) assert.ok(budget === undefined || (Number.isInteger(budget) && budget >= 1), `request budget ${budget}`);
          const metrics = settings.metricsListen;
          assert.ok(metrics === undefined || (metrics.host !== '' && Number.isInteger(metrics.port) && metrics.port <= 65535), `metricsListen ${JSON.stringify(metrics)}`);
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          const e = expectReefError(err, ['REEF_CONFIG_INVALID', 'REEF_INVALID_ARGUMENT'], text);
          if (e.code === 'REEF_CONFIG_INVALID') assert.ok(e.message.includes(file), e.message);
          if (e.code === 'REEF_INVALID_ARGUMENT') assert.match(e.message, /websocket-path|metrics-listen/);
          // A schema error names a field of the file, or "(top)".
          if (/is invalid: /.test(e.message)) {
            const names = [...parsedKeys, '(top)'];
            assert.ok(names.some((k) => e.message.includes(k)), `error names none of ${names.join(', ')}: ${e.message}`);
          }
        }
      }),
      { numRuns: runs },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
