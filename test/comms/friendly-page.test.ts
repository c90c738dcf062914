import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import tls from 'node:tls';
import { startServer } from './harness.js';

test('a browser-like client trickling its request headers on the comms port is cut at handshakeTimeoutMs', async () => {
  // Long enough for the TLS handshake itself on a busy machine (the same limit bounds it), short
  // enough that the trickle (a byte every 100 ms, never a whole request) is what gets cut.
  const { server, port } = await startServer(new Set(), { handshakeTimeoutMs: 1500 });
  const slow = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  slow.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    await once(slow, 'secureConnect');
    slow.write('GET / HTTP/1.1\r\nX-Slow: ');
    timer = setInterval(() => slow.writable && slow.write('a'), 100);
    const started = Date.now();
    // Cut means closed, with or without a reset (a reset is an 'error' first, which would make
    // events.once reject), so wait on 'close' alone.
    const closed = new Promise<string>((resolve) => slow.once('close', () => resolve('closed')));
    const outcome = await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
    assert.equal(outcome, 'closed');
    assert.ok(Date.now() - started < 5000, `closed after ${Date.now() - started} ms`);
  } finally {
    clearInterval(timer);
    slow.destroy();
    await server.close();
  }
});
