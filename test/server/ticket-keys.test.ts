/**
 * The comms session-ticket keys of one server: kept in its data directory (0600) across
 * restarts, so a restarted server resumes its Tentacles' sessions; rotated while it runs,
 * never at a start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TentacleComms } from '../../src/comms/index.js';
import { silentLogger } from '../../src/logging.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { LocalBus } from '../../src/server/cluster/bus.js';
import { startReefServer } from '../../src/server/runtime.js';
import { TICKET_KEYS_FILE, TicketKeeper } from '../../src/server/ticket-keys.js';

const DAY = 24 * 60 * 60 * 1000;

async function keeperIn(dataDir: string, now: () => Date, apply: (keys: Buffer) => void = () => {}) {
  return TicketKeeper.start({ dataDir, bus: new LocalBus(), logger: silentLogger, apply, now, rotateAfterMs: 7 * DAY, checkEveryMs: 60 * 60 * 1000 });
}

test('the keys are made once, stored 0600 in the data directory, and read back by the next start', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'resume-keys-'));
  try {
    const first = await keeperIn(dataDir, () => new Date('2026-12-01T00:00:00Z'));
    first.close();
    assert.equal(first.keys.length, 48);
    const file = join(dataDir, TICKET_KEYS_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const second = await keeperIn(dataDir, () => new Date('2026-12-05T00:00:00Z'));
    second.close();
    assert.ok(second.keys.equals(first.keys));
    assert.equal(second.createdAt.toISOString(), '2026-12-01T00:00:00.000Z');

    // A damaged file costs one round of full handshakes, not the start.
    await writeFile(file, 'not keys');
    const third = await keeperIn(dataDir, () => new Date('2026-12-05T00:00:00Z'));
    third.close();
    assert.equal(third.keys.length, 48);
    assert.ok(!third.keys.equals(first.keys));
    assert.match(await readFile(file, 'utf8'), /"version":1/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('keys older than the rotation age are kept at a start and rotated by the running check', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'resume-keys-'));
  let now = new Date('2026-12-01T00:00:00Z');
  try {
    (await keeperIn(dataDir, () => now)).close();
    now = new Date(now.getTime() + 8 * DAY);
    const applied: Buffer[] = [];
    const keeper = await keeperIn(dataDir, () => now, (keys) => applied.push(keys));
    try {
      const atStart = keeper.keys;
      assert.equal(keeper.createdAt.toISOString(), '2026-12-01T00:00:00.000Z', 'a start never rotates: the whole fleet is coming back then');
      await keeper.check();
      assert.equal(applied.length, 1);
      assert.ok(!applied[0]!.equals(atStart));
      assert.ok(keeper.keys.equals(applied[0]!));
      const stored = JSON.parse(await readFile(join(dataDir, TICKET_KEYS_FILE), 'utf8')) as { keys: string; createdAt: string };
      assert.equal(stored.createdAt, now.toISOString());
      assert.ok(Buffer.from(stored.keys, 'base64').equals(keeper.keys));
      await keeper.check(); // not due again
      assert.equal(applied.length, 1);
    } finally {
      keeper.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('keys deleted from the data directory are replaced with new ones by the running check, not with the ones in use', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'resume-keys-'));
  const applied: Buffer[] = [];
  const keeper = await keeperIn(dataDir, () => new Date('2026-12-01T00:00:00Z'), (keys) => applied.push(keys));
  try {
    const before = keeper.keys;
    await rm(join(dataDir, TICKET_KEYS_FILE));
    await keeper.check();
    assert.equal(applied.length, 1);
    assert.ok(!keeper.keys.equals(before));
    const stored = JSON.parse(await readFile(join(dataDir, TICKET_KEYS_FILE), 'utf8')) as { keys: string };
    assert.ok(Buffer.from(stored.keys, 'base64').equals(keeper.keys));
  } finally {
    keeper.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a restarted server resumes the session of a Tentacle that connected before the restart', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'resume-server-'));
  const tentacle = await generateCertificate('Tentacle');
  const start = (commsPort = 0) => startReefServer({ dataDir, httpsPort: 0, commsPort, host: '127.0.0.1', logger: silentLogger });
  const first = await start();
  await first.store.createMachine({ name: 'web-01', kind: 'target', thumbprint: tentacle.thumbprint, commsStyle: 'polling', environments: ['Test'], roles: ['web'] });
  const comms = new TentacleComms({ identity: tentacle, services: new Map() });
  const poller = comms.poll({ host: '127.0.0.1', port: first.commsPort, carrier: 'tcp', trusted: () => [first.info.commsThumbprint] });
  let second: Awaited<ReturnType<typeof start>> | undefined;
  try {
    assert.equal((await once(poller, 'connected'))[1], false);
    await first.close();
    second = await start(first.commsPort);
    assert.equal((await once(poller, 'connected'))[1], true);
    assert.equal(second.comms.links.pick(tentacle.thumbprint)?.peer.resumed, true);

    // The machine deleted: the next (resumed) attempt is refused, whatever the ticket says.
    await second.store.deleteMachine('web-01');
    second.comms.disconnect(tentacle.thumbprint, 'test: deleted');
    const [err] = (await once(poller, 'failed')) as [Error & { code: string }];
    assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
  } finally {
    await comms.close();
    await second?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
