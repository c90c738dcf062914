/**
 * TLS settings on both ports of a real server node: TLS 1.0/1.1 and non-forward-secret or
 * CBC suites are refused at the handshake; TLS 1.2 with ECDHE + AES-GCM and TLS 1.3 are
 * accepted. Checked with OpenSSL's s_client and with Node's own client, each allowed to
 * offer the weak option (SECLEVEL=0), so the refusal is the server's.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startSecurityServer, type SecurityServer } from './server.js';

function sClient(port: number, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'reef.example.com', ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    child.stdin!.end();
  });
}

async function nodeHandshake(port: number, options: tls.ConnectionOptions): Promise<{ ok: true; protocol: string | null; cipher: string } | { ok: false; error: string }> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'reef.example.com', ...options });
  try {
    await Promise.race([once(socket, 'secureConnect'), once(socket, 'error').then(([e]) => Promise.reject(e))]);
    return { ok: true, protocol: socket.getProtocol(), cipher: socket.getCipher().standardName };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    socket.destroy();
  }
}

describe('security: TLS versions and cipher suites', () => {
  let s: SecurityServer;
  before(async () => {
    s = await startSecurityServer();
  });
  after(() => s?.close());

  const ports = () => [
    ['comms port', s.running.commsPort],
    ['HTTPS port (portal and front door)', s.running.httpsPort],
  ] as const;

  test('openssl s_client: TLS 1.0 and 1.1 are refused', async () => {
    for (const [name, port] of ports()) {
      for (const version of ['-tls1', '-tls1_1']) {
        const r = await sClient(port, [version, '-cipher', 'DEFAULT:@SECLEVEL=0']);
        assert.notEqual(r.code, 0, `${name} accepted ${version}:\n${r.out}`);
        assert.match(r.out, /alert protocol version|unsupported protocol|no protocols available/i, `${name} ${version}`);
        assert.doesNotMatch(r.out, /Cipher is (?!\(NONE\))/, `${name} ${version} negotiated a cipher`);
      }
    }
  });

  test('openssl s_client: weak TLS 1.2 suites (RSA key exchange, CBC) are refused', async () => {
    for (const [name, port] of ports()) {
      for (const cipher of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384']) {
        const r = await sClient(port, ['-tls1_2', '-cipher', `${cipher}:@SECLEVEL=0`]);
        assert.notEqual(r.code, 0, `${name} accepted ${cipher}:\n${r.out}`);
        assert.match(r.out, /handshake failure|no shared cipher|no cipher/i, `${name} ${cipher}`);
      }
    }
  });

  test('openssl s_client: TLS 1.2 with ECDHE-AES-GCM and TLS 1.3 succeed', async () => {
    for (const [name, port] of ports()) {
      const r12 = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256']);
      assert.match(r12.out, /Protocol\s*:\s*TLSv1\.2/, `${name}:\n${r12.out}`);
      assert.match(r12.out, /Cipher is ECDHE-(ECDSA|RSA)-AES128-GCM-SHA256/, name);
      const r13 = await sClient(port, ['-tls1_3']);
      assert.match(r13.out, /TLSv1\.3/, `${name}:\n${r13.out}`);
      assert.match(r13.out, /Cipher is TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)/, name);
    }
  });

  test('Node tls.connect: maxVersion TLSv1.1 fails the handshake; TLS 1.2 ECDHE-GCM and TLS 1.3 succeed', async () => {
    for (const [name, port] of ports()) {
      const old = await nodeHandshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
      assert.equal(old.ok, false, `${name} accepted TLS 1.1`);
      assert.match((old as { error: string }).error, /protocol version|unsupported protocol/i, name);
      const weak = await nodeHandshake(port, { maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:AES128-GCM-SHA256:@SECLEVEL=0' });
      assert.equal(weak.ok, false, `${name} accepted a non-ECDHE suite`);
      const tls12 = await nodeHandshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384' });
      assert.deepEqual(tls12.ok && [tls12.protocol, tls12.cipher.replace('_RSA_', '_ECDSA_')], ['TLSv1.2', 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'], name);
      const tls13 = await nodeHandshake(port, { minVersion: 'TLSv1.3' });
      assert.equal(tls13.ok && tls13.protocol, 'TLSv1.3', name);
    }
  });
});
