import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ScriptStatus, ScriptSummary, UploadResult } from '../../src/api/tentacle/index.js';
import { CommsServer, type TentacleAddress } from '../../src/comms/index.js';
import { isReefError, type ErrorCode } from '../../src/errors.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { startAgent, type Agent } from '../../src/tentacle/agent.js';
import { defaultConfig, writeConfigFile, type TentacleConfig } from '../../src/tentacle/config.js';

/**
 * The agent in-process against a real CommsServer on 127.0.0.1: the server calls the
 * Tentacle's RPC methods exactly as the task engine will.
 */

let serverId: CertificateIdentity;
let tentacleId: CertificateIdentity;
let dir: string;

before(async () => {
  [serverId, tentacleId] = await Promise.all([generateCertificate('Reef Server'), generateCertificate('Tentacle')]);
  dir = await mkdtemp(join(tmpdir(), 'reef-agent-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function instanceConfig(name: string, change: (config: TentacleConfig) => void): Promise<{ config: TentacleConfig; configPath: string }> {
  const home = join(dir, name);
  await mkdir(home, { recursive: true });
  // Transfers go outside home: the Tentacle refuses its own files.
  await mkdir(join(dir, `${name}-files`), { recursive: true });
  const config = defaultConfig(name, home);
  config.allowedRoots.push(join(dir, `${name}-files`));
  config.trust = [serverId.thumbprint];
  change(config);
  const configPath = join(home, 'tentacle.json');
  await writeConfigFile(configPath, config);
  return { config, configPath };
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isReefError(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${(err as Error).message}`);
    if (pattern) assert.match((err as Error).message, pattern);
    return err as Error;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

async function sha256Of(body: Readable): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(body, new Writable({ write(chunk: Buffer, _e, done) { hash.update(chunk); done(); } }));
  return hash.digest('hex');
}

describe('a polling agent', () => {
  let server: CommsServer;
  let agent: Agent;
  let configPath: string;
  let config: TentacleConfig;
  let files: string;
  let target: TentacleAddress;

  before(async () => {
    server = new CommsServer({ identity: serverId, trust: (tp) => tp === tentacleId.thumbprint });
    const port = await server.listen(0, '127.0.0.1');
    ({ config, configPath } = await instanceConfig('polling', (c) => {
      c.servers = [{ thumbprint: serverId.thumbprint, address: `tcp://127.0.0.1:${port}` }];
    }));
    files = join(dir, 'polling-files');
    agent = await startAgent({ config, identity: tentacleId, configPath, configPollMs: 50 });
    target = { thumbprint: tentacleId.thumbprint, name: 'polling' };
  });

  after(async () => {
    await agent.close();
    await server.close();
  });

  test('health.ping and capabilities.get', async () => {
    const ping = (await server.call(target, 'health.ping', {})) as { time: string };
    assert.ok(Math.abs(Date.parse(ping.time) - Date.now()) < 5000);
    const caps = (await server.call(target, 'capabilities.get', null)) as { hostname: string; shells: Record<string, string | null> };
    assert.equal(typeof caps.hostname, 'string');
    assert.match(caps.shells.bash ?? '', /bash$/);
  });

  test('a script runs: start, long-poll status until Complete, exit code and every line', async () => {
    const ticket = 'agent-run-1';
    const start = (await server.call(target, 'scripts.start', {
      ticket,
      syntax: 'bash',
      body: 'echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; exit 3',
    })) as ScriptSummary;
    assert.equal(start.state, 'Running');
    const lines: string[] = [];
    let afterSeq = 0;
    let status: ScriptStatus;
    let calls = 0;
    do {
      status = (await server.call(target, 'scripts.status', { ticket, afterSeq, waitMs: 10_000 })) as ScriptStatus;
      calls++;
      lines.push(...status.lines.map((l) => `${l.stream}:${l.text}`));
      afterSeq = status.nextSeq - 1;
      // A long poll never comes back empty-handed while the script runs (it waits for news).
      if (status.state === 'Running') assert.ok(status.lines.length > 0);
    } while (status.state === 'Running' || status.more);
    assert.equal(status.state, 'Complete');
    assert.equal(status.exitCode, 3);
    assert.deepEqual(lines.filter((l) => !l.startsWith('system:')), ['stdout:one', 'stderr:two', 'stdout:three']);
    assert.ok(calls <= 6, `long polling needed ${calls} calls`);
    assert.deepEqual(await server.call(target, 'scripts.complete', { ticket }), { ticket });
  });

  test('a long poll with nothing new answers after waitMs', async () => {
    const ticket = 'agent-quiet';
    await server.call(target, 'scripts.start', { ticket, syntax: 'sh', body: 'sleep 5' });
    const started = Date.now();
    const status = (await server.call(target, 'scripts.status', { ticket, afterSeq: 0, waitMs: 300 })) as ScriptStatus;
    const took = Date.now() - started;
    assert.equal(status.state, 'Running');
    assert.deepEqual(status.lines, []);
    assert.ok(took >= 250 && took < 3000, `took ${took} ms`);
    const cancelled = (await server.call(target, 'scripts.cancel', { ticket })) as ScriptSummary;
    assert.equal(cancelled.state, 'Complete');
    assert.equal(cancelled.cancelled, true);
  });

  test('cancel stops a running script', async () => {
    const ticket = 'agent-cancel';
    await server.call(target, 'scripts.start', { ticket, syntax: 'bash', body: 'echo started; sleep 30' });
    const first = (await server.call(target, 'scripts.status', { ticket, afterSeq: 0, waitMs: 5000 })) as ScriptStatus;
    assert.deepEqual(first.lines.map((l) => l.text), ['started']);
    const summary = (await server.call(target, 'scripts.cancel', { ticket })) as ScriptSummary;
    assert.equal(summary.state, 'Complete');
    assert.equal(summary.cancelled, true);
    await server.call(target, 'scripts.complete', { ticket });
  });

  test('upload with a streamed body (hash checked), stat, then download', async () => {
    const data = randomBytes(300 * 1024 + 7);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const path = join(files, 'sub', 'blob.bin');
    assert.deepEqual(await server.call(target, 'files.beginUpload', { path, size: data.length, sha256 }), { offset: 0 });
    const result = (await server.call(target, 'files.upload', { path, size: data.length, sha256, offset: 0 }, { body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]) })) as UploadResult;
    assert.deepEqual(result, { path, size: data.length, sha256 });
    assert.ok((await readFile(path)).equals(data));

    const stat = (await server.call(target, 'files.stat', { path })) as { exists: boolean; size: number; type: string };
    assert.equal(stat.exists, true);
    assert.equal(stat.size, data.length);
    assert.equal(stat.type, 'file');

    const { result: head, body } = await server.callForBody(target, 'files.download', { path, sha256: true });
    assert.deepEqual(head, { path, size: data.length, offset: 0, sha256 });
    assert.equal(await sha256Of(body), sha256);

    const tail = await server.callForBody(target, 'files.download', { path, offset: data.length - 7 });
    assert.equal(await sha256Of(tail.body), createHash('sha256').update(data.subarray(-7)).digest('hex'));
  });

  test('an upload whose bytes do not match its hash is refused', async () => {
    const data = Buffer.from('the wrong bytes');
    const path = join(files, 'wrong.txt');
    const sha256 = createHash('sha256').update('other bytes').digest('hex');
    await rejectsWith(server.call(target, 'files.upload', { path, size: data.length, sha256, offset: 0 }, { body: Readable.from([data]) }), 'REEF_HASH_MISMATCH');
  });

  test('invalid arguments are refused with REEF_INVALID_ARGUMENT naming the field', async () => {
    await rejectsWith(server.call(target, 'scripts.status', { ticket: 'x', afterSeq: -1 }), 'REEF_INVALID_ARGUMENT', /scripts\.status: afterSeq must be >= 0/);
    await rejectsWith(server.call(target, 'scripts.start', { ticket: 'bad ticket!', body: 'true' }), 'REEF_INVALID_ARGUMENT', /ticket must be .*; syntax/);
    await rejectsWith(server.call(target, 'scripts.start', 'echo hi'), 'REEF_INVALID_ARGUMENT', /arguments must be an object \(got string\)/);
    await rejectsWith(server.call(target, 'files.download', { path: 'relative/file' }), 'REEF_INVALID_ARGUMENT', /path must be an absolute path/);
    await rejectsWith(server.call(target, 'files.beginUpload', { path: join(files, 'x'), size: 1.5, sha256: 'ab' }), 'REEF_INVALID_ARGUMENT', /size must be a whole number of bytes; sha256 must be 64 hexadecimal digits/);
    await rejectsWith(
      server.call(target, 'files.upload', { path: join(files, 'x'), size: 1, sha256: '0'.repeat(64), offset: 0 }),
      'REEF_INVALID_ARGUMENT',
      /streamed body/,
    );
    // Service-level refusals still come through with their own codes.
    await rejectsWith(server.call(target, 'files.stat', { path: '/etc/passwd' }), 'REEF_PATH_NOT_ALLOWED');
  });

  test('removing the server from trust closes its link; trusting it again reconnects', async () => {
    assert.ok(server.links.pick(tentacleId.thumbprint), 'connected to begin with');
    const gone = once(server, 'disconnected');
    await writeConfigFile(configPath, { ...config, trust: [] });
    await gone;
    await sleep(300);
    assert.equal(server.links.pick(tentacleId.thumbprint), undefined, 'does not reconnect while untrusted');

    const back = once(server, 'connected');
    await writeConfigFile(configPath, config);
    await back;
    assert.equal(((await server.call(target, 'health.ping', {})) as { time: string }).time.length > 0, true);
  });

  test('a server added to the config file is polled without a restart', async () => {
    const second = new CommsServer({ identity: serverId, trust: (tp) => tp === tentacleId.thumbprint });
    try {
      const port = await second.listen(0, '127.0.0.1');
      const connected = once(second, 'connected');
      const address = `tcp://127.0.0.1:${port}`;
      await writeConfigFile(configPath, { ...config, servers: [...config.servers, { thumbprint: serverId.thumbprint, address }] });
      await connected;
      assert.ok(agent.pollers.has(address));
      await second.call(target, 'health.ping', {});
      await writeConfigFile(configPath, config);
      await agent.reload();
      assert.equal(agent.pollers.has(address), false);
    } finally {
      await second.close();
    }
  });
});

describe('a listening agent', () => {
  let server: CommsServer;
  let agent: Agent;
  let configPath: string;
  let config: TentacleConfig;

  before(async () => {
    server = new CommsServer({ identity: serverId, trust: () => false });
    ({ config, configPath } = await instanceConfig('listening', (c) => (c.listen = { enabled: true, host: '127.0.0.1', port: 10933 })));
    // The file needs a real port; the agent gets port 0 so the test never collides.
    config = { ...config, listen: { ...config.listen, port: 0 } };
    agent = await startAgent({ config, identity: tentacleId, configPath, configPollMs: 50 });
  });

  after(async () => {
    await agent.close();
    await server.close();
  });

  test('the server dials the agent and calls it', async () => {
    assert.ok(agent.listeningPort && agent.listeningPort > 0);
    const target: TentacleAddress = { thumbprint: tentacleId.thumbprint, listening: { host: '127.0.0.1', port: agent.listeningPort } };
    const ping = (await server.call(target, 'health.ping', {})) as { time: string };
    assert.ok(ping.time);
    const ticket = 'listen-run';
    await server.call(target, 'scripts.start', { ticket, syntax: 'sh', body: 'echo over listening' });
    let status: ScriptStatus;
    do status = (await server.call(target, 'scripts.status', { ticket, afterSeq: 0, waitMs: 5000 })) as ScriptStatus;
    while (status.state === 'Running');
    assert.equal(status.exitCode, 0);
    assert.ok(status.lines.some((l) => l.text === 'over listening'));

    // Trust removed: the live link ends and a new dial is refused by the agent.
    const gone = once(server, 'disconnected');
    await writeConfigFile(configPath, { ...config, listen: { ...config.listen, port: 10933 }, trust: [] });
    await gone;
    await rejectsWith(server.call(target, 'health.ping', {}), 'REEF_UNTRUSTED_CERTIFICATE', /does not trust the server certificate/);
  });
});
