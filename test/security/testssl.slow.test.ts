/**
 * What Debian's testssl.sh says about both TLS ports of a real server node (the HTTPS port,
 * and the comms port, which asks for a client certificate: testssl offers none and still
 * sees every handshake parameter). It runs offline (no DNS, no revocation or other lookups)
 * with the checks that judge a TLS set-up: protocols, cipher categories, forward secrecy,
 * the server's defaults and certificate, and every known vulnerability. Its flat JSON
 * report is read finding by finding.
 *
 * testssl is a bash script that forks thousands of openssl, awk and printf processes: one
 * port takes 1.5 to 3 minutes on a busy two-core machine (about 25 s of it start-up), so
 * this file is in the slow suite; nmap and sslscan grade the same ports in the main one
 * (scanners.test.ts). .ci/run installs testssl.sh; see debian-tools.ts for a missing one.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runTracked, stopAll, trackedTempDir } from '../support/processes.js';
import { requireTool, unavailable } from './debian-tools.js';
import { startSecurityServer, type SecurityServer } from './server.js';

const TESTSSL = '/usr/bin/testssl';
const PACKAGE = 'testssl.sh';

/** One entry of testssl's flat JSON report (`--jsonfile`). */
interface Finding {
  id: string;
  severity: 'OK' | 'INFO' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL' | 'WARN' | 'FATAL' | 'DEBUG';
  finding: string;
  cve?: string;
}

/**
 * Findings testssl rates as a problem that are Reef's design, each with the reason (see
 * docs/security.md, "The two identities, and why"). Every other LOW to CRITICAL, WARN or
 * FATAL finding fails the test.
 */
const BY_DESIGN: Record<string, string> = {
  cert_chain_of_trust: 'the pinned identity is self-signed: no CA can vouch for an impostor',
  cert_validityPeriod: 'the pinned identity is valid for 100 years: pinning ignores dates',
  cert_revocation: 'no CRL or OCSP: a pinned certificate is distrusted by removing its thumbprint',
  engine_problem: "a note about this machine's openssl (no GOST engine), not about the server",
};

/** The vulnerability checks of `--vulnerable` in testssl 3.0 (3.2 adds some): each must run and pass. */
const VULNERABILITIES = ['heartbleed', 'CCS', 'ticketbleed', 'ROBOT', 'secure_renego', 'secure_client_renego', 'CRIME_TLS', 'BREACH', 'POODLE_SSL', 'fallback_SCSV', 'SWEET32', 'FREAK', 'DROWN', 'LOGJAM', 'BEAST', 'LUCKY13', 'RC4'];

/**
 * testssl 3.0's own races, not the server's: it tests TLS 1.3 ticket resumption with
 * `openssl s_client -sess_out FILE </dev/null`, which quits as soon as the handshake is done,
 * often before the server's NewSessionTicket arrives (17 times in 20 against
 * `openssl s_server`), and then reports "check failed because of connect problem".
 */
const TESTSSL_RACES = (entry: Finding) => entry.severity === 'WARN' && /^sessionresumption_/.test(entry.id) && /connect problem/.test(entry.finding);

const PROBLEM_SEVERITIES = new Set(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL', 'WARN', 'FATAL']);

/** Runs testssl against 127.0.0.1:port and returns its findings by id. */
async function testssl(port: number, dir: string): Promise<Map<string, Finding>> {
  const json = join(dir, `testssl-${port}.json`);
  const args = [
    '--quiet', '--color', '0', '--warnings', 'off',
    // Offline: the address is given, no DNS at all (rDNS, CAA), no revocation look-ups.
    '--ip', '127.0.0.1', '--nodns', 'none',
    '--connect-timeout', '10', '--openssl-timeout', '10',
    '--jsonfile', json,
    '--protocols', '--std', '--fs', '--server-defaults', '--vulnerable',
    `127.0.0.1:${port}`,
  ];
  const result = await runTracked(TESTSSL, args, { cwd: dir, env: { ...process.env, TMPDIR: dir }, timeoutMs: 600_000 });
  const transcript = `testssl ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`;
  assert.notEqual(result.code, null, `testssl did not finish in 10 minutes\n${transcript}`);
  const findings = new Map<string, Finding>();
  for (const entry of JSON.parse(await readFile(json, 'utf8')) as Finding[]) findings.set(entry.id, entry);
  assert.ok(findings.size > 0, `testssl reported nothing\n${transcript}`);
  return findings;
}

function finding(report: Map<string, Finding>, ...ids: string[]): Finding {
  const entry = ids.map((id) => report.get(id)).find(Boolean);
  assert.ok(entry, `testssl reported no ${ids.join(' or ')}`);
  return entry;
}

/** A suite with forward secrecy and authenticated encryption, in OpenSSL's or IANA's names. */
const forwardSecretAead = (suite: string) => /^TLS_(AES_\d+_GCM|CHACHA20_POLY1305)_SHA\d+$/.test(suite) || /^ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/.test(suite);

describe('security: testssl.sh on both TLS ports', { skip: unavailable(PACKAGE, TESTSSL) }, () => {
  let s: SecurityServer;
  let dir: string;
  const reports = new Map<string, Map<string, Finding>>();

  before(async () => {
    requireTool(PACKAGE, TESTSSL);
    [s, dir] = await Promise.all([startSecurityServer(), trackedTempDir('reef-testssl-')]);
    // Both ports at once: each run spends most of its time forking, not waiting on the server.
    const ports = [['HTTPS port', s.running.httpsPort], ['comms port', s.running.commsPort]] as const;
    const found = await Promise.all(ports.map(([, port]) => testssl(port, dir)));
    ports.forEach(([name], i) => reports.set(name, found[i]!));
  });
  after(async () => {
    await s?.close();
    await stopAll(); // a testssl still running (a timeout) with its group, and the temp folder
  });

  for (const name of ['HTTPS port', 'comms port']) {
    test(`${name}: TLS 1.2 and 1.3 only, strong AEAD suites only, all forward secret`, () => {
      const report = reports.get(name)!;
      for (const old of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) assert.match(finding(report, old).finding, /^not offered/, `${name} offers ${old}`);
      for (const current of ['TLS1_2', 'TLS1_3']) assert.match(finding(report, current).finding, /^offered/, `${name} does not offer ${current}`);
      for (const weak of ['cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA', 'cipherlist_AVERAGE']) {
        assert.match(finding(report, weak).finding, /^not offered/, `${name}: ${weak}`);
      }
      assert.match(finding(report, 'cipherlist_STRONG').finding, /^offered/, `${name}: no strong (AEAD) suite`);
      // 3.0 names forward secrecy PFS, 3.1 and later FS.
      assert.match(finding(report, 'FS', 'PFS').finding, /^offered/, `${name}: no forward secrecy`);
      const suites = finding(report, 'FS_ciphers', 'PFS_ciphers').finding.split(/\s+/).filter(Boolean);
      assert.ok(suites.length > 0, `${name}: no forward-secret suite listed`);
      assert.deepEqual(suites.filter((suite) => !forwardSecretAead(suite)), [], `${name} accepts suites without forward secrecy or AEAD`);
    });

    test(`${name}: no known vulnerability, and no problem beyond the pinned certificate's by-design ones`, () => {
      const report = reports.get(name)!;
      for (const id of VULNERABILITIES) {
        const entry = finding(report, id);
        assert.ok(entry.severity === 'OK' || entry.severity === 'INFO', `${name}: ${id} is ${entry.severity}: ${entry.finding}`);
      }
      const problems = [...report.values()].filter((entry) => PROBLEM_SEVERITIES.has(entry.severity) && !(entry.id in BY_DESIGN) && !TESTSSL_RACES(entry));
      assert.deepEqual(problems.map((entry) => `${entry.id} ${entry.severity}: ${entry.finding}`), [], `${name}: testssl found problems`);
    });

    test(`${name}: the overall grade, where this testssl version gives one, is A but for the self-signed pinned certificate`, (t) => {
      const report = reports.get(name)!;
      const grade = report.get('overall_grade');
      if (!grade) return t.skip(`testssl ${report.get('version')?.finding ?? '3.0'} gives no overall grade (3.1 and later do)`);
      // A self-signed certificate caps the grade to T ("trust"), and no HSTS header caps it to
      // A; the score beneath the caps must still be an A's (80 or more).
      const caps = [...report.values()].filter((entry) => entry.id.startsWith('grade_cap_reason'));
      const acceptedCaps = caps.every((cap) => /chain of trust|self.signed|HSTS/i.test(cap.finding));
      assert.ok(/^A/.test(grade.finding) || (grade.finding === 'T' && acceptedCaps), `${name} is graded ${grade.finding}: ${caps.map((cap) => cap.finding).join('; ')}`);
      const score = Number(report.get('final_score')?.finding);
      assert.ok(score >= 80, `${name} scores ${score} (an A needs 80)`);
    });
  }
});
