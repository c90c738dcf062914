import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startReefServer } from '../../src/server/runtime.js';

async function holdPort(port = 0): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

async function release(server: net.Server): Promise<void> {
  await new Promise((resolve) => server.close(resolve));
}

/** Handles (sockets, servers, timers...) that would keep the process alive, by kind. */
function liveHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

test('a start-up that fails on a taken HTTPS port names the port and closes everything it had opened', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'reef-runtime-'));
  const taken = await holdPort();
  const httpsPort = portOf(taken);
  // A port that is free now, to see that the comms listener bound it and let it go again.
  const probe = await holdPort();
  const commsPort = portOf(probe);
  await release(probe);
  try {
    const before = liveHandles();
    await assert.rejects(startReefServer({ dataDir, httpsPort, commsPort, host: '127.0.0.1' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'REEF_PORT_IN_USE');
      assert.match(err.message, new RegExp(`HTTPS port ${httpsPort} at 127\\.0\\.0\\.1: another program already uses it`));
      assert.match(err.message, /--https-port/);
      // What holds it, from /proc: this test process.
      assert.match(err.message, new RegExp(`already uses it \\(held by node, pid ${process.pid}, user \\S+\\)\\.`));
      return true;
    });

    // The comms port was bound (it comes first) and is free again.
    await release(await holdPort(commsPort));
    // The SQLite store is closed: SQLite removes the WAL file when its last connection closes.
    assert.ok(existsSync(join(dataDir, 'reef.db')));
    assert.equal(existsSync(join(dataDir, 'reef.db-wal')), false, 'reef.db is still open');
    // Nothing opened by the attempt is left to keep the process alive (closed handles leave
    // the list on the next turns of the event loop, hence the short wait).
    const kinds = ['TCPServerWrap', 'TCPSocketWrap', 'Timeout'];
    const extra = () => kinds.filter((kind) => (liveHandles().get(kind) ?? 0) > (before.get(kind) ?? 0));
    for (let i = 0; i < 20 && extra().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(extra(), [], `left open: ${JSON.stringify([...liveHandles()])}, before: ${JSON.stringify([...before])}`);

    // The first successful start still shows the admin key and password: the failed one did not use them up.
    await release(taken);
    const running = await startReefServer({ dataDir, httpsPort: 0, commsPort: 0, host: '127.0.0.1' });
    try {
      assert.match(running.initialAdminKey ?? '', /^API-/);
      assert.ok(running.initialAdminPassword);
    } finally {
      await running.close();
    }
  } finally {
    if (taken.listening) await release(taken);
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a start-up that fails on a taken comms port closes the store it had opened', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'reef-runtime-'));
  const taken = await holdPort();
  try {
    await assert.rejects(startReefServer({ dataDir, httpsPort: 0, commsPort: portOf(taken), host: '127.0.0.1' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'REEF_PORT_IN_USE');
      assert.match(err.message, new RegExp(`comms port ${portOf(taken)} at 127\\.0\\.0\\.1`));
      assert.match(err.message, /--comms-port/);
      return true;
    });
    assert.equal(existsSync(join(dataDir, 'reef.db-wal')), false, 'reef.db is still open');
  } finally {
    await release(taken);
    await rm(dataDir, { recursive: true, force: true });
  }
});
