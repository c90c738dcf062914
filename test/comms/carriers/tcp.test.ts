import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectTcp, TcpConnectError } from '../../../src/comms/carriers/tcp.js';
import { closed, readBytes, startEchoServer, type EchoServer } from '../../support/net.js';
import { freePort } from '../../support/tinyproxy.js';

describe('connectTcp', () => {
  let echo: EchoServer;
  before(async () => {
    echo = await startEchoServer();
  });
  after(() => echo.close());

  it('connects to host:port', async () => {
    const socket = await connectTcp('127.0.0.1', echo.port, { timeoutMs: 5000 });
    socket.write('ping');
    assert.equal((await readBytes(socket, 4)).toString(), 'ping');
    socket.destroy();
    await closed(socket);
  });

  it('with resolveTo, dials that address and never resolves the name', async () => {
    // .invalid never resolves (RFC 6761): only resolveTo can make this work.
    const socket = await connectTcp('comms.reef.invalid', echo.port, { resolveTo: '127.0.0.1', timeoutMs: 5000 });
    socket.write('pong');
    assert.equal((await readBytes(socket, 4)).toString(), 'pong');
    socket.destroy();
    await closed(socket);
  });

  it('names host:port and the resolveTo address when refused', async () => {
    const port = await freePort();
    await assert.rejects(connectTcp('comms.reef.invalid', port, { resolveTo: '127.0.0.1', timeoutMs: 5000 }), (err: any) => {
      assert.equal(err.code, 'REEF_CONNECT_FAILED');
      assert.match(err.message, new RegExp(`comms\\.reef\\.invalid:${port} \\(at address 127\\.0\\.0\\.1\\)`));
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
  });

  it('says what the network answered: a refusal, with the address a name resolved to', async () => {
    const port = await freePort();
    await assert.rejects(connectTcp('localhost', port, { timeoutMs: 5000 }), (err: any) => {
      assert.ok(err instanceof TcpConnectError);
      assert.equal(err.code, 'REEF_CONNECT_FAILED');
      assert.equal(err.kind, 'refused');
      assert.equal(err.errno, 'ECONNREFUSED');
      assert.ok(err.addresses.length >= 1 && err.addresses.every((a: string) => a === '127.0.0.1' || a === '::1'), String(err.addresses));
      assert.match(err.message, new RegExp(`localhost:${port} \\(at address (127\\.0\\.0\\.1|::1)`));
      return true;
    });
  });

  it('names host:port when the name does not resolve', async () => {
    await assert.rejects(connectTcp('comms.reef.invalid', 443, { timeoutMs: 5000 }), (err: any) => {
      assert.equal(err.code, 'REEF_CONNECT_FAILED');
      assert.match(err.message, /comms\.reef\.invalid:443/);
      assert.equal(err.kind, 'unresolved');
      return true;
    });
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(connectTcp('127.0.0.1', echo.port, { timeoutMs: 5000, signal: controller.signal }), { code: 'REEF_CALL_CANCELLED' });
  });
});
