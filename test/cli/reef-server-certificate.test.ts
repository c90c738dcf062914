/**
 * `reef server run --https-certificate`: the flag, its REEF_* variables and config file keys
 * resolve like every other setting, and a file that cannot be used stops the start with a
 * message naming it (the running server's reloads are in test/e2e/portal-certificate.test.ts).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { resolveServerSettings } from '../../src/cli/reef-server.js';
import { freePort } from '../e2e/harness.js';
import { REEF_BIN } from '../support/built.js';
import { runTracked, stopAll, trackedTempDir } from '../support/processes.js';
import { createTestCa } from '../support/test-ca.js';

after(stopAll);

test('--https-certificate, its key and password: flags, then the config file; paths made absolute', async () => {
  const dir = await trackedTempDir('reef-server-cert-');
  const config = join(dir, 'server.json');
  await writeFile(config, JSON.stringify({ httpsCertificate: 'file.pfx', httpsCertificatePassword: 'from-file' }));
  assert.equal((await resolveServerSettings({})).httpsCertificate, undefined);
  assert.deepEqual((await resolveServerSettings({ config })).httpsCertificate, { file: resolve('file.pfx'), password: 'from-file' });
  assert.deepEqual((await resolveServerSettings({ config, httpsCertificate: '/etc/reef/fullchain.pem', httpsCertificateKey: 'privkey.pem', httpsCertificatePassword: '' })).httpsCertificate, {
    file: '/etc/reef/fullchain.pem',
    keyFile: resolve('privkey.pem'),
    password: '',
  });
  await assert.rejects(resolveServerSettings({ httpsCertificateKey: 'privkey.pem' }), /--https-certificate-key needs --https-certificate/);
  await writeFile(config, JSON.stringify({ httpsCertificate: 42 }));
  await assert.rejects(resolveServerSettings({ config }), /httpsCertificate/);
});

test('a certificate file that cannot be used stops the start, naming the file and why', async () => {
  const dir = await trackedTempDir('reef-server-cert-');
  const ca = await createTestCa();
  const [good, other] = await Promise.all([ca.issue({ dns: ['reef.test'] }), ca.issue({ dns: ['reef.test'] })]);
  const mismatched = join(dir, 'mismatched.pem');
  await writeFile(mismatched, good.certPem + other.keyPem);
  const cases: Array<[string, string[], NodeJS.ProcessEnv, RegExp]> = [
    ['a missing file', ['--https-certificate', join(dir, 'missing.pem')], {}, /HTTPS certificate .*missing\.pem cannot be used: .*does not exist/],
    ['a key of another certificate', [], { REEF_HTTPS_CERTIFICATE: mismatched }, /HTTPS certificate .*mismatched\.pem cannot be used: The private key does not belong to the certificate/],
  ];
  for (const [what, args, env, message] of cases) {
    const args0 = ['server', 'run', '--data', join(dir, 'data'), '--host', '127.0.0.1', '--https-port', String(await freePort()), '--comms-port', String(await freePort()), ...args];
    const result = await runTracked(process.execPath, [REEF_BIN, ...args0], { env: { ...process.env, REEF_LOG_LEVEL: 'warn', ...env }, timeoutMs: 60_000 });
    assert.equal(result.code, 1, `${what}: ${result.stdout}${result.stderr}`);
    assert.match(result.stderr, message, what);
    assert.doesNotMatch(result.stdout, /Stop it with Ctrl\+C/, what);
  }
});
