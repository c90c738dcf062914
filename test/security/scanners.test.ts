/**
 * What an operations team's scanners say about both TLS ports of a real server node:
 * Debian's nmap (`--script ssl-enum-ciphers`, which grades every suite a server accepts and
 * opens with a ClientHello in `03 00` records) must grade the HTTPS port and the comms port
 * A, and sslscan must find TLS 1.2 and 1.3 only, with forward-secret AEAD suites only.
 *
 * .ci/run installs both (apt-get install nmap sslscan); see debian-tools.ts for a missing one.
 * testssl.sh, which takes minutes, runs in the slow suite (testssl.slow.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { requireTool, unavailable } from './debian-tools.js';
import { startSecurityServer, type SecurityServer } from './server.js';

const run = promisify(execFile);

/** nmap's ssl-enum-ciphers report, per port: the protocol sections and the least strength. */
function parseNmap(out: string): Map<number, { leastStrength?: string; protocols: string[]; text: string }> {
  const ports = new Map<number, { leastStrength?: string; protocols: string[]; text: string }>();
  for (const section of out.split(/\n(?=\d+\/tcp\s)/)) {
    const port = /^(\d+)\/tcp\s/.exec(section.trim())?.[1];
    if (!port) continue;
    ports.set(Number(port), {
      leastStrength: /least strength:\s*([A-F])\b/.exec(section)?.[1],
      protocols: [...section.matchAll(/^\|\s+(TLSv1\.\d|SSLv\d):\s*$/gm)].map((m) => m[1]!),
      text: section,
    });
  }
  return ports;
}

describe('security: standard TLS scanners grade both ports', () => {
  let s: SecurityServer;
  before(async () => {
    s = await startSecurityServer();
  });
  after(() => s?.close());

  test('nmap --script ssl-enum-ciphers grades the HTTPS port and the comms port A', { skip: unavailable('nmap', '/usr/bin/nmap') }, async () => {
    requireTool('nmap', '/usr/bin/nmap');
    const ports = [s.running.httpsPort, s.running.commsPort];
    const { stdout } = await run('/usr/bin/nmap', ['-Pn', '-n', '--script', 'ssl-enum-ciphers', '-p', ports.join(','), '127.0.0.1'], { timeout: 150_000, maxBuffer: 8 * 1024 * 1024 });
    const report = parseNmap(stdout);
    for (const [name, port] of [['HTTPS port', s.running.httpsPort], ['comms port', s.running.commsPort]] as const) {
      const entry = report.get(port);
      assert.ok(entry, `nmap said nothing about the ${name} ${port}:\n${stdout}`);
      assert.equal(entry.leastStrength, 'A', `the ${name} is not graded A:\n${entry.text}`);
      assert.deepEqual(entry.protocols.sort(), ['TLSv1.2', 'TLSv1.3'], `the ${name} offers ${entry.protocols.join(', ')}:\n${entry.text}`);
    }
  });

  test('sslscan finds TLS 1.2 and 1.3 only, with forward-secret AEAD suites only, on both ports', { skip: unavailable('sslscan', '/usr/bin/sslscan') }, async () => {
    requireTool('sslscan', '/usr/bin/sslscan');
    for (const [name, port] of [['HTTPS port', s.running.httpsPort], ['comms port', s.running.commsPort]] as const) {
      const { stdout } = await run('/usr/bin/sslscan', ['--no-colour', `127.0.0.1:${port}`], { timeout: 120_000, maxBuffer: 8 * 1024 * 1024 });
      for (const old of ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1']) assert.match(stdout, new RegExp(`^${old.replace('.', '\\.')}\\s+disabled`, 'm'), `${name}: ${old}\n${stdout}`);
      for (const current of ['TLSv1.2', 'TLSv1.3']) assert.match(stdout, new RegExp(`^${current.replace('.', '\\.')}\\s+enabled`, 'm'), `${name}: ${current}\n${stdout}`);
      const accepted = [...stdout.matchAll(/^(?:Preferred|Accepted)\s+(TLSv1\.\d)\s+\d+ bits\s+(\S+)/gm)].map((m) => [m[1]!, m[2]!] as const);
      assert.ok(accepted.length > 0, `${name}: no suite listed\n${stdout}`);
      for (const [protocol, suite] of accepted) {
        const aead = /GCM|CHACHA20/.test(suite);
        const forwardSecret = protocol === 'TLSv1.3' || /^ECDHE-/.test(suite);
        assert.ok(aead && forwardSecret, `${name} accepts ${protocol} ${suite}`);
      }
    }
  });
});
