import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, testIdentities } from './harness.js';

test('closing the server ends calls waiting for a polling tentacle at once, and refuses new ones', async () => {
  const ids = await testIdentities();
  // A pickup timeout far longer than the test: only the close may end the wait.
  const { server } = await startServer(new Set([ids.tentacle.thumbprint]), { pickupTimeoutMs: 10 * 60_000 });
  const target = { thumbprint: ids.tentacle.thumbprint, name: 'web-01' };
  const waiting = server.call(target, 'echo', 1);
  const started = Date.now();
  await server.close();
  const expected = (err: Error & { code: string }) => {
    assert.equal(err.code, 'REEF_SHUTTING_DOWN');
    assert.match(err.message, /shutting down; the call to Tentacle "web-01"/);
    return true;
  };
  await assert.rejects(waiting, expected);
  await assert.rejects(server.call(target, 'echo', 1), expected);
  assert.ok(Date.now() - started < 5000, 'the wait ended with the close, not the pickup timeout');
});
