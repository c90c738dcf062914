/**
 * Certificates for people, pinning for machines, with real processes: `reef server run
 * --https-certificate` presents a certificate from a throwaway CA (leaf and intermediate;
 * clients hold only the root) for the portal and API, while the comms port, the polling
 * hostname and ALPN `reef-comms` on the shared port keep the pinned self-signed identity.
 * The certificate is swapped by SIGHUP and by a change of its file (a PKCS#12 file opened by
 * REEF_HTTPS_CERTIFICATE_PASSWORD), a bad file is refused with the old one kept, and two
 * Tentacles registered by --ca-file (one on a WebSocket through the portal's own TLS, one on
 * the comms port) stay connected throughout and still run a script.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { ApiClient } from '../../src/api/client.js';
import { isBusyAlert } from '../../src/comms/busy.js';
import type { MachineView } from '../../src/api/contract.js';
import { spkiPinOfPem } from '../../src/pki/spki-pin.js';
import { thumbprintOfDer } from '../../src/pki/thumbprint.js';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/test-ca.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const run = promisify(execFile);
const PORTAL_NAME = 'reef.test';
const POLLING_NAME = 'polling.reef.test';
const PFX_PASSWORD = 'pfx-secret';
/** PEM files are padded to one size, so a SIGHUP test can rewrite one unseen by the file watch. */
const PEM_FILE_BYTES = 8192;
/** A whole second, so the file's mtime can be put back exactly. */
const FIXED_MTIME = Math.floor(Date.now() / 1000) - 3600;

interface Presented {
  thumbprint: string;
  /** Verified against the given CA and the name. */
  authorized: boolean;
  authorizationError?: string;
  subjectaltname?: string;
  /** Subjects of the chain as sent, leaf first. */
  chain: string[];
}

/** How long `presented` keeps coming back when comms turns it away as busy. */
const BUSY_RETRY_LIMIT_MS = 15_000;

/**
 * A real TLS handshake: what the port presents for this SNI and ALPN. Comms refuses new
 * connections with the busy alert while the server's event loop lags (admission control:
 * a PKCS#12 reload on a loaded machine can stall it past the bound); like a Tentacle, this
 * comes back after a moment, within a bound.
 */
async function presented(port: number, options: { servername?: string; alpn?: string[]; ca?: string } = {}): Promise<Presented> {
  const deadline = Date.now() + BUSY_RETRY_LIMIT_MS;
  for (;;) {
    try {
      return await handshake(port, options);
    } catch (err) {
      if (!isBusyAlert(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function handshake(port: number, options: { servername?: string; alpn?: string[]; ca?: string }): Promise<Presented> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ...(options.servername ? { servername: options.servername } : {}),
    ALPNProtocols: options.alpn ?? ['http/1.1'],
    rejectUnauthorized: false,
    ...(options.ca ? { ca: [options.ca] } : {}),
    checkServerIdentity: () => undefined,
  });
  try {
    await Promise.race([once(socket, 'secureConnect'), once(socket, 'error').then(([err]) => Promise.reject(err))]);
    const peer = socket.getPeerCertificate(true);
    const chain: string[] = [];
    for (let cert: tls.DetailedPeerCertificate | undefined = peer; cert && chain.length < 5; cert = cert.issuerCertificate === cert ? undefined : cert.issuerCertificate) {
      chain.push(cert.subject.CN as string);
    }
    return {
      thumbprint: thumbprintOfDer(peer.raw),
      authorized: socket.authorized,
      ...(socket.authorizationError ? { authorizationError: String(socket.authorizationError) } : {}),
      subjectaltname: peer.subjectaltname,
      chain,
    };
  } finally {
    socket.destroy();
  }
}

function padded(text: string): string {
  assert.ok(text.length <= PEM_FILE_BYTES);
  return text + '\n'.repeat(PEM_FILE_BYTES - text.length);
}

describe('a CA certificate for the portal, the pinned one for comms', () => {
  let ca: TestCa;
  let dir: string;
  let certFile: string;
  let rootFile: string;
  let server: ServerProcess;
  let apiKey: string;
  let root: string;
  let log = '';
  const issued: Record<'first' | 'second' | 'third', IssuedCertificate> = {} as never;
  /** Each machine's connectedAt before any reload. */
  const connectedAt = new Map<string, string>();

  const reefEnv = () => ({ REEF_SERVER: server.url, REEF_API_KEY: apiKey });
  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
  /** Puts a file in place the way renewal tools do: written beside it, renamed over it. */
  const replace = (content: string | Buffer) => {
    writeFileSync(`${certFile}.new`, content);
    renameSync(`${certFile}.new`, certFile);
  };
  const logLines = (pattern: RegExp) => log.split('\n').filter((line) => pattern.test(line));

  before(async () => {
    ca = await createTestCa();
    dir = await tempDir('portal-cert');
    const names = { dns: [PORTAL_NAME], ip: ['127.0.0.1'] };
    [issued.first, issued.second, issued.third] = await Promise.all([ca.issue(names), ca.issue(names), ca.issue(names)]);
    rootFile = join(dir, 'root.pem');
    writeFileSync(rootFile, ca.rootPem);
    // Intermediate first, then the key, then the leaf: the server orders the chain itself.
    certFile = join(dir, 'portal.pem');
    writeFileSync(certFile, padded(ca.intermediatePem + issued.first.keyPem + issued.first.certPem));
    utimesSync(certFile, FIXED_MTIME, FIXED_MTIME);

    const httpsPort = await freePort();
    const commsPort = await freePort();
    server = await startServer({
      dataDir: await tempDir('portal-cert-data'),
      httpsPort,
      commsPort,
      extraArgs: ['--https-certificate', certFile, '--polling-hostname', POLLING_NAME],
      env: { REEF_HTTPS_CERTIFICATE_PASSWORD: PFX_PASSWORD },
    });
    server.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    apiKey = server.adminKey!;

    root = await tempDir('portal-cert-tentacles');
    const resolve = ['--resolve', `${PORTAL_NAME}:${httpsPort}:127.0.0.1`];
    const fleet: Array<[string, string[]]> = [
      ['ws-1', ['--server-web-socket', `wss://${PORTAL_NAME}:${httpsPort}/reef/comms`, ...resolve]],
      ['tcp-1', ['--server-comms-port', String(commsPort)]],
    ];
    await Promise.all(
      fleet.map(async ([name, carrierArgs]) => {
        const instance = name.replace(/[^a-z0-9]/g, '');
        await tentacle(['create-instance', '--instance', instance]);
        await tentacle(['new-certificate', '--instance', instance]);
        // No --server-thumbprint: the portal is trusted by the CA; comms by what the server answers.
        await tentacle(['register-with', '--instance', instance, '--server', server.url, '--ca-file', rootFile, '--apiKey', apiKey,
          '--environment', 'Certs', '--role', 'web', '--name', name, ...carrierArgs]);
        await startAgent(root, instance);
      }),
    );
    const api = new ApiClient({ server: server.url, apiKey, trustedCas: [ca.rootPem] });
    const machines = await waitFor('both Tentacles to connect', async () => {
      const { items } = await api.json<{ items: MachineView[] }>('GET', '/api/machines?environment=Certs');
      return items.length === 2 && items.every((m) => m.connections.length === 1) ? items : undefined;
    }, 60_000);
    for (const m of machines) connectedAt.set(m.name, m.connections[0]!.connectedAt);
    assert.deepEqual(Object.fromEntries(machines.map((m) => [m.name, m.connections[0]!.carrier])), { 'ws-1': 'websocket', 'tcp-1': 'tcp' });
  });

  after(() => stopAll());

  test('the HTTPS port presents the CA certificate with its chain; comms presents the pinned one everywhere', async () => {
    assert.match(server.banner, /HTTPS certificate: CN=reef\.test, issued by CN=Reef Test Issuing CA, valid until \d{4}-\d\d-\d\d/);
    for (const servername of [PORTAL_NAME, undefined]) {
      const portal = await presented(server.httpsPort, { servername, ca: ca.rootPem });
      assert.equal(portal.thumbprint, issued.first.thumbprint, `SNI ${servername}`);
      assert.ok(portal.authorized, `the chain verifies with the root alone: ${portal.authorizationError}`);
      assert.deepEqual(portal.chain, ['reef.test', 'Reef Test Issuing CA', 'Reef Test Root CA']);
    }
    const routes: Array<[string, number, { servername?: string; alpn?: string[] }]> = [
      ['comms port', server.commsPort, {}],
      ['comms port with reef-comms', server.commsPort, { alpn: ['reef-comms'] }],
      ['polling hostname by SNI on the HTTPS port', server.httpsPort, { servername: POLLING_NAME }],
      ['ALPN reef-comms on the HTTPS port', server.httpsPort, { servername: PORTAL_NAME, alpn: ['reef-comms'] }],
    ];
    for (const [what, port, options] of routes) {
      const comms = await presented(port, { ...options, ca: ca.rootPem });
      assert.equal(comms.thumbprint, server.thumbprint, what);
      assert.equal(comms.authorized, false, `${what}: the pinned certificate is self-signed`);
      // The generated identity names what it serves, for clients that check names.
      for (const name of ['DNS:localhost', `DNS:${POLLING_NAME}`, 'IP Address:127.0.0.1']) assert.ok(comms.subjectaltname?.includes(name), `${what}: ${comms.subjectaltname}`);
    }
  });

  test('HSTS on API, portal and downloads; the downloads command pins the presented key', async () => {
    const api = new ApiClient({ server: server.url, apiKey, trustedCas: [ca.rootPem] });
    for (const path of ['/api', '/', '/downloads/']) {
      const res = await api.request('GET', path, { headers: { accept: 'text/html' } });
      res.resume();
      assert.equal(res.headers['strict-transport-security'], 'max-age=31536000', path);
    }
    const page = await api.request('GET', '/downloads/', { headers: { accept: 'text/html' } });
    let html = '';
    for await (const chunk of page) html += chunk;
    assert.ok(html.includes(spkiPinOfPem(issued.first.certPem)), 'the page pins the CA certificate the port presents');
  });

  test('reef trusts the portal by --ca-file or REEF_CA_FILE, without a thumbprint', async () => {
    const byFlag = await ok('reef', ['machines', 'list', '--ca-file', rootFile], reefEnv());
    assert.match(byFlag, /ws-1/);
    assert.match(await ok('reef', ['machines', 'list'], { ...reefEnv(), REEF_CA_FILE: rootFile }), /tcp-1/);

    const untrusted = await cli('reef', ['machines', 'list'], reefEnv());
    assert.notEqual(untrusted.code, 0);
    assert.match(untrusted.stderr, /presented a certificate that the public CAs do not vouch for \(unable to get local issuer certificate\); nothing was sent\..*--ca-file/);
    const otherCa = join(dir, 'other-root.pem');
    writeFileSync(otherCa, (await createTestCa('Other')).rootPem);
    const wrongCa = await cli('reef', ['machines', 'list', '--ca-file', otherCa], reefEnv());
    assert.notEqual(wrongCa.code, 0, 'a certificate from another CA is not trusted');
    assert.match(wrongCa.stderr, /the public CAs or the given CA file do not vouch for/);
    const both = await cli('reef', ['machines', 'list', '--ca-file', rootFile, '--server-thumbprint', server.thumbprint], reefEnv());
    assert.equal(both.code, 1);
    assert.match(both.stderr, /not both/);
    const missing = await cli('reef', ['machines', 'list', '--ca-file', join(dir, 'nope.pem')], reefEnv());
    assert.match(missing.stderr, /--ca-file .*nope\.pem does not exist/);
  });

  test('Tentacles registered by --ca-file trust the pinned comms certificate only', async () => {
    for (const instance of ['ws1', 'tcp1']) {
      const config = JSON.parse(await tentacle(['show-configuration', '--instance', instance])) as { trust: string[] };
      assert.deepEqual(config.trust, [server.thumbprint], instance);
    }
    const unregistered = await cli('tentacle', ['poll-server', '--instance', 'ws1', '--server', server.url, '--apiKey', apiKey], { REEF_TENTACLE_ROOT: root });
    assert.notEqual(unregistered.code, 0, 'without --ca-file the CA certificate is not trusted');
    assert.match(unregistered.stderr, /--ca-file/);
  });

  test('SIGHUP swaps the certificate', async () => {
    // In place, same size and mtime: the file watch cannot see it, only the signal tells.
    writeFileSync(certFile, padded(issued.second.certPem + ca.intermediatePem + issued.second.keyPem));
    utimesSync(certFile, FIXED_MTIME, FIXED_MTIME);
    server.child.kill('SIGHUP');
    await waitFor('the SIGHUP reload to be logged', async () => logLines(/HTTPS certificate reloaded \(SIGHUP\)/).length === 1, 15_000);
    const now = await presented(server.httpsPort, { servername: PORTAL_NAME, ca: ca.rootPem });
    assert.equal(now.thumbprint, issued.second.thumbprint);
    assert.ok(now.authorized);
  });

  test('a changed file is read again: a PKCS#12 file opened with REEF_HTTPS_CERTIFICATE_PASSWORD', async () => {
    writeFileSync(join(dir, 'third.pem'), issued.third.certPem);
    writeFileSync(join(dir, 'third.key'), issued.third.keyPem);
    writeFileSync(join(dir, 'chain.pem'), ca.intermediatePem);
    await run('openssl', ['pkcs12', '-export', '-in', 'third.pem', '-inkey', 'third.key', '-certfile', 'chain.pem', '-passout', `pass:${PFX_PASSWORD}`, '-out', 'third.pfx'], { cwd: dir });
    replace(readFileSync(join(dir, 'third.pfx')));
    await waitFor('the new certificate on the HTTPS port', async () => (await presented(server.httpsPort, { servername: PORTAL_NAME })).thumbprint === issued.third.thumbprint, 15_000);
    assert.equal(logLines(/HTTPS certificate reloaded \(file change\)/).length, 1);
    const now = await presented(server.httpsPort, { servername: PORTAL_NAME, ca: ca.rootPem });
    assert.ok(now.authorized, 'the intermediate from the PKCS#12 file is sent');
    assert.equal((await presented(server.commsPort)).thumbprint, server.thumbprint, 'comms is untouched');
  });

  test('a bad new file is refused with a clear error and the old certificate stays', async () => {
    const expired = await ca.issue({ dns: [PORTAL_NAME] }, { notBefore: new Date(Date.now() - 100 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
    const bad: Array<[string, string | Buffer, RegExp]> = [
      ['a key that is not the certificate\'s', issued.second.certPem + issued.first.keyPem, /does not belong to the certificate/],
      ['an expired certificate', expired.certPem + expired.keyPem, /expired on/],
      ['half a file', issued.second.certPem.slice(0, 300), /No certificate was found|could not be read/],
    ];
    for (const [what, content, reason] of bad) {
      const before = logLines(/HTTPS certificate not reloaded \(file change\)/).length;
      replace(content);
      await waitFor(`the refusal of ${what}`, async () => logLines(/HTTPS certificate not reloaded \(file change\)/).length > before, 15_000);
      const line = logLines(/HTTPS certificate not reloaded \(file change\)/).at(-1)!;
      assert.match(line, reason, what);
      assert.match(line, new RegExp(`previous certificate \\(thumbprint ${issued.third.thumbprint}`), what);
      assert.equal((await presented(server.httpsPort, { servername: PORTAL_NAME })).thumbprint, issued.third.thumbprint, `${what}: the old certificate stays`);
    }
    // A SIGHUP with the bad file in place says so too, and changes nothing.
    server.child.kill('SIGHUP');
    await waitFor('the SIGHUP refusal', async () => logLines(/HTTPS certificate not reloaded \(SIGHUP\)/).length === 1, 15_000);
    assert.equal((await presented(server.httpsPort, { servername: PORTAL_NAME })).thumbprint, issued.third.thumbprint);
  });

  test('no Tentacle was dropped by the reloads, and both still run a script', async () => {
    const api = new ApiClient({ server: server.url, apiKey, trustedCas: [ca.rootPem] });
    const { items } = await api.json<{ items: MachineView[] }>('GET', '/api/machines?environment=Certs');
    for (const m of items) {
      assert.equal(m.connections.length, 1, m.name);
      assert.equal(m.connections[0]!.connectedAt, connectedAt.get(m.name), `${m.name} kept its connection`);
    }
    const result = await cli('reef', ['tasks', 'run-script', '--environment', 'Certs', '--role', 'web', '--script', 'echo "certs ok"', '--follow', '--ca-file', rootFile], reefEnv());
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.match(/certs ok/g)?.length, 2, result.stdout);
  });
});
