/**
 * /downloads on a real server (startReefServer, in-process) over real HTTPS on port 0: what
 * it serves, with which headers; conditional and range requests; the three index forms;
 * files added, replaced and rewritten while the server runs; every way out of the folder
 * refused, with a secret file beside the folder that must never leak.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, rename, symlink, writeFile, link } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import pino from 'pino';
import { createUser } from '../../../src/server/auth/users.js';
import { SESSION_COOKIE, startSession } from '../../../src/server/auth/sessions.js';
import { startReefServer, type RunningServer } from '../../../src/server/runtime.js';
import { runTracked, stopAll, trackedTempDir } from '../../support/processes.js';

after(stopAll);

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A request through Node's client; the server's self-signed certificate is not checked here (curl's pin is, below). */
function request(port: number, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, rejectUnauthorized: false, agent: false, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} within 20 s`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Sends a request target byte for byte over TLS (Node's client would refuse or normalise
 * some of them) and reads the whole answer; `Connection: close` ends it.
 */
function rawRequest(port: number, target: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      socket.write(Buffer.concat([Buffer.from('GET '), Buffer.from(target, 'latin1'), Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')]));
    });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no end of the answer to ${JSON.stringify(target)} within 10 s`)), 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
  });
}

/** Info lines the server logs, to see what it hashed and when. */
function capturingLogger() {
  const lines: { msg: string; file?: string; sha256?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines, hashed: (file: string) => lines.filter((l) => l.msg === 'downloads: serving a new file' && l.file === file) };
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const TENTACLE = 'reef-tentacle-0.1.0-linux-x64';
const DEB = 'reef-tentacle_0.1.0_amd64.deb';
const TARBALL = 'reef-server-0.1.0-linux-x64.tar.gz';

describe('downloads served by a running server', () => {
  let root: string;
  let dir: string;
  let running: RunningServer;
  let port: number;
  let log: ReturnType<typeof capturingLogger>;
  const secret = `TOP-SECRET-${randomBytes(8).toString('hex')}`;
  // Larger than the 1 MiB read chunk, and not a multiple of it.
  const tentacle = randomBytes(2 * 1024 * 1024 + 12345);
  const deb = Buffer.from('a Debian package, in a test\n');
  const tarball = randomBytes(70_000);

  before(async () => {
    root = await trackedTempDir('reef-downloads-');
    dir = join(root, 'downloads');
    await mkdir(dir);
    await writeFile(join(dir, TENTACLE), tentacle);
    await writeFile(join(dir, DEB), deb);
    await writeFile(join(dir, TARBALL), tarball);
    // Everything below must stay unreachable; each holds the secret.
    await writeFile(join(root, 'secret.txt'), secret);
    await writeFile(join(dir, '.hidden'), secret);
    await writeFile(join(dir, 'index.json'), secret); // a file cannot stand in for the generated index
    await symlink('../secret.txt', join(dir, 'escape'));
    await symlink(join(root, 'secret.txt'), join(dir, 'escape-absolute'));
    await symlink('.hidden', join(dir, 'alias-of-dotfile'));
    await symlink('..', join(dir, 'up'));
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'inner'), secret);
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    // Allowed: a symlink to another file of the folder.
    await symlink(TENTACLE, join(dir, 'reef-tentacle-latest-linux-x64'));
    log = capturingLogger();
    running = await startReefServer({ dataDir: join(root, 'data'), downloadsDir: dir, httpsPort: 0, commsPort: 0, host: '127.0.0.1', logger: log.logger });
    port = running.httpsPort;
  });

  after(async () => {
    await running?.close();
  });

  test('GET sends the whole file with its SHA-256 in the ETag, Repr-Digest and X-Checksum-Sha256', async () => {
    const res = await request(port, `/downloads/${TENTACLE}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.length, tentacle.length);
    const hex = sha256(res.body);
    assert.equal(hex, sha256(tentacle));
    assert.equal(res.headers['content-length'], String(tentacle.length));
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.headers['content-disposition'], `attachment; filename="${TENTACLE}"`);
    assert.equal(res.headers['etag'], `"${hex}"`);
    assert.equal(res.headers['x-checksum-sha256'], hex);
    assert.equal(res.headers['repr-digest'], `sha-256=:${Buffer.from(hex, 'hex').toString('base64')}:`);
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['cache-control'], 'no-cache');
    // The alias is served under its own name, with the same bytes.
    const alias = await request(port, '/downloads/reef-tentacle-latest-linux-x64');
    assert.equal(alias.status, 200);
    assert.equal(sha256(alias.body), hex);
  });

  test('the hashes were computed once, at start-up, not on each request', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await request(port, `/downloads/${DEB}`)).status, 200);
    await request(port, '/downloads/SHA256SUMS');
    assert.equal(log.hashed(DEB).length, 1, JSON.stringify(log.lines));
    // The alias is the same file (same inode): hashed once for both names.
    assert.equal(log.hashed(TENTACLE).length + log.hashed('reef-tentacle-latest-linux-x64').length, 1);
  });

  test('HEAD gives the same headers and no body', async () => {
    const res = await request(port, `/downloads/${DEB}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['content-length'], String(deb.length));
    assert.equal(res.headers['x-checksum-sha256'], sha256(deb));
    assert.equal(res.headers['etag'], `"${sha256(deb)}"`);
  });

  test('If-None-Match with the ETag (or *) gives 304; another ETag gives the file; If-Modified-Since too', async () => {
    const etag = `"${sha256(deb)}"`;
    for (const value of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await request(port, `/downloads/${DEB}`, { headers: { 'if-none-match': value } });
      assert.equal(res.status, 304, value);
      assert.equal(res.body.length, 0);
      assert.equal(res.headers['etag'], etag);
    }
    const changed = await request(port, `/downloads/${DEB}`, { headers: { 'if-none-match': `"${sha256('older')}"` } });
    assert.equal(changed.status, 200);
    assert.deepEqual(changed.body, deb);
    const lastModified = changed.headers['last-modified'] as string;
    assert.equal((await request(port, `/downloads/${DEB}`, { headers: { 'if-modified-since': lastModified } })).status, 304);
    assert.equal((await request(port, `/downloads/${DEB}`, { headers: { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' } })).status, 200);
  });

  test('a single Range gives 206 with Content-Range; beyond the end 416; a stale If-Range the whole file', async () => {
    const size = tentacle.length;
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      ['bytes=1048570-1048600', 1048570, 1048600],
      [`bytes=${size - 10}-`, size - 10, size - 1],
      ['bytes=-300', size - 300, size - 1],
      [`bytes=100-${size + 5000}`, 100, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await request(port, `/downloads/${TENTACLE}`, { headers: { range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${size}`);
      assert.equal(res.headers['content-length'], String(end - start + 1));
      assert.deepEqual(res.body, tentacle.subarray(start, end + 1), range);
      // The digest is the whole file's, so the client can check what it assembles.
      assert.equal(res.headers['x-checksum-sha256'], sha256(tentacle));
    }
    for (const range of [`bytes=${size}-`, `bytes=${size + 1}-${size + 9}`, 'bytes=-0']) {
      const res = await request(port, `/downloads/${TENTACLE}`, { headers: { range } });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers['content-range'], `bytes */${size}`);
      assert.equal(res.body.length, 0);
    }
    // Several ranges, another unit, nonsense: the whole file (RFC 9110 lets a server ignore Range).
    for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-2', 'bytes=x-']) {
      const res = await request(port, `/downloads/${TENTACLE}`, { headers: { range } });
      assert.equal(res.status, 200, range);
      assert.equal(res.body.length, size);
    }
    const current = await request(port, `/downloads/${TENTACLE}`, { headers: { range: 'bytes=10-19', 'if-range': `"${sha256(tentacle)}"` } });
    assert.equal(current.status, 206);
    const stale = await request(port, `/downloads/${TENTACLE}`, { headers: { range: 'bytes=10-19', 'if-range': `"${sha256('an older build')}"` } });
    assert.equal(stale.status, 200);
    assert.equal(stale.body.length, size);
    const head = await request(port, `/downloads/${TENTACLE}`, { method: 'HEAD', headers: { range: 'bytes=0-9' } });
    assert.equal(head.status, 206);
    assert.equal(head.headers['content-length'], '10');
    assert.equal(head.body.length, 0);
  });

  test('no request target reaches anything outside the folder, a dotfile, a directory or a FIFO', async () => {
    const names = ['escape', 'escape-absolute', 'alias-of-dotfile', 'up', 'sub', 'pipe', '.hidden', 'missing'];
    const encodings = (path: string) => [path, path.replace(/\./g, '%2e'), path.replace(/\//g, '%2f'), path.replace(/\//g, '%2F').replace(/\./g, '%2E'), path.replace(/\//g, '\\'), path.replace(/\//g, '%5c'), path.replace(/\./g, '%252e').replace(/\//g, '%252f')];
    const targets = [
      ...names.map((n) => `/downloads/${n}`),
      '/downloads/up/secret.txt',
      '/downloads/up/downloads/.hidden',
      '/downloads/sub/inner',
      '/downloads/./.hidden',
      '/downloads/%2ehidden',
      ...encodings('/downloads/../secret.txt'),
      ...encodings('/downloads/../../../../../../etc/passwd'),
      '/downloads/..%2f..%2fsecret.txt',
      '/downloads/%2e%2e%2fsecret.txt',
      '/downloads/..%c0%afsecret.txt',
      '/downloads/..%ef%bc%8fsecret.txt',
      `/downloads/${DEB}%00`,
      `/downloads/${DEB}%00.txt`,
      '/downloads/%00',
      `/downloads/${DEB}/`,
      `/downloads/${DEB}/..`,
      '/downloads//etc/passwd',
      '/downloads/%',
      '/downloads/%zz',
      `/downloads/${join(root, 'secret.txt')}`,
      `/downloads/${encodeURIComponent(join(root, 'secret.txt'))}`,
      `https://127.0.0.1/downloads/..%2fsecret.txt`,
    ];
    for (const target of targets) {
      const res = await rawRequest(port, target);
      assert.ok([400, 404].includes(res.status), `${target}: ${res.status}\n${res.text.slice(0, 300)}`);
      assert.ok(!res.text.includes(secret), `${target} leaked the secret`);
    }
    // Targets the downloads route does not claim still never reach the folder's neighbours.
    for (const target of ['/downloads/../secret.txt', '/downloads%2f..%2fsecret.txt', '/secret.txt', '/downloads\\..\\secret.txt', `/downloads/${DEB}\0`]) {
      const res = await rawRequest(port, target).catch(() => ({ status: 0, text: '' }));
      assert.ok(!res.text.includes(secret), `${target} leaked the secret`);
      assert.notEqual(res.status, 200, target);
    }
    // A generated index.json, not the file of that name in the folder.
    const index = await request(port, '/downloads/index.json');
    assert.ok(!index.body.toString().includes(secret));
  });

  test('only GET and HEAD: other methods get 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of [`/downloads/${DEB}`, '/downloads/', '/downloads/index.json', '/downloads/escape']) {
        const res = await request(port, path, { method });
        assert.equal(res.status, 405, `${method} ${path}`);
        assert.equal(res.headers['allow'], 'GET, HEAD');
      }
    }
  });

  test('the index as a page, as index.json and as SHA256SUMS that sha256sum -c accepts', async () => {
    const served = [TARBALL, TENTACLE, 'reef-tentacle-latest-linux-x64', DEB].sort();
    const json = JSON.parse((await request(port, '/downloads/index.json')).body.toString());
    assert.deepEqual(json.files.map((f: { name: string }) => f.name), served);
    const byName = new Map<string, Buffer>([[TENTACLE, tentacle], ['reef-tentacle-latest-linux-x64', tentacle], [DEB, deb], [TARBALL, tarball]]);
    for (const f of json.files) {
      assert.equal(f.sha256, sha256(byName.get(f.name)!));
      assert.equal(f.size, byName.get(f.name)!.length);
      assert.equal(f.url, `/downloads/${f.name}`);
      assert.ok(!Number.isNaN(Date.parse(f.modified)));
    }

    const sums = await request(port, '/downloads/SHA256SUMS');
    assert.equal(sums.status, 200);
    assert.match(String(sums.headers['content-type']), /^text\/plain/);
    const text = sums.body.toString();
    assert.equal(text, served.map((n) => `${sha256(byName.get(n)!)}  ${n}\n`).join(''));
    // The real tool, on the files as downloaded.
    const work = await trackedTempDir('reef-downloads-check-');
    await writeFile(join(work, 'SHA256SUMS'), sums.body);
    for (const name of served) await writeFile(join(work, name), (await request(port, `/downloads/${name}`)).body);
    const check = await runTracked('bash', ['-c', 'cd "$1" && sha256sum --strict -c SHA256SUMS', 'check', work], { timeoutMs: 30_000 });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.equal(check.stdout.trim().split('\n').length, served.length);
    // ...and it notices a corrupted one.
    await writeFile(join(work, DEB), 'tampered');
    assert.equal((await runTracked('bash', ['-c', 'cd "$1" && sha256sum -c SHA256SUMS', 'check', work], { timeoutMs: 30_000 })).code, 1);

    const page = await request(port, '/downloads/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const html = page.body.toString();
    for (const name of served) {
      assert.ok(html.includes(`href="/downloads/${name}"`), name);
      assert.ok(html.includes(sha256(byName.get(name)!)), name);
    }
    assert.ok(html.includes('2.0 MiB'), 'sizes are shown');
    assert.ok(html.includes(`--pinnedpubkey &#39;${running.publicKeyPin}&#39;`), 'the command carries the pin');
    assert.deepEqual([...html.matchAll(/data-file="([^"]*)"/g)].map((m) => m[1]), served, 'the table lists what is served, nothing else');
    assert.ok(!html.includes('.hidden') && !html.includes('escape') && !html.includes(secret));
    // Anonymous: no portal navigation, and not where the folder is on the server.
    assert.ok(!html.includes('Sign out') && !html.includes(dir));
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    const bare = await request(port, '/downloads');
    assert.equal(bare.status, 301);
    assert.equal(bare.headers['location'], '/downloads/');
  });

  test('a signed-in portal user sees the page inside the portal, with Downloads in the navigation', async () => {
    const user = await createUser(running.store, 'downloads-ops', 'a long enough password 1234');
    const { id } = await startSession(running.store, user);
    const html = (await request(port, '/downloads/', { headers: { cookie: `${SESSION_COOKIE}=${id}` } })).body.toString();
    assert.match(html, /<a href="\/downloads\/" aria-current="page">Downloads<\/a>/);
    assert.ok(html.includes('Sign out'));
    // Every portal page links to it.
    const dashboard = (await request(port, '/', { headers: { cookie: `${SESSION_COOKIE}=${id}` } })).body.toString();
    assert.match(dashboard, /<a href="\/downloads\/">Downloads<\/a>/);
  });

  test('a file added later is hashed in the background and listed without a restart', async () => {
    const name = 'reef-tentacle-0.2.0-linux-arm64';
    const bytes = randomBytes(300_000);
    // Copied in under a dot name (never served), then renamed into place: the recommended way.
    await writeFile(join(dir, `.${name}.partial`), bytes);
    await rename(join(dir, `.${name}.partial`), join(dir, name));
    // The watch hashes it before anyone asks.
    const logged = await waitFor('the background hash of the new file', () => log.hashed(name)[0]);
    assert.equal(logged.sha256, sha256(bytes));
    const json = JSON.parse((await request(port, '/downloads/index.json')).body.toString());
    assert.equal(json.files.find((f: { name: string }) => f.name === name)?.sha256, sha256(bytes));
    assert.equal((await request(port, `/downloads/${name}`)).headers['x-checksum-sha256'], sha256(bytes));
    assert.equal(log.hashed(name).length, 1);
  });

  test('a file replaced (renamed over, or rewritten in place at the same size) gets its new hash, never the old one', async () => {
    const name = 'reef-tentacle-0.3.0-linux-x64';
    const first = randomBytes(200_000);
    await writeFile(join(dir, name), first);
    assert.equal((await request(port, `/downloads/${name}`)).headers['x-checksum-sha256'], sha256(first));

    const second = randomBytes(200_000);
    await writeFile(join(dir, '.next'), second);
    await rename(join(dir, '.next'), join(dir, name));
    const afterRename = await request(port, `/downloads/${name}`);
    assert.equal(sha256(afterRename.body), sha256(second));
    assert.equal(afterRename.headers['x-checksum-sha256'], sha256(second));

    // In place, same size, at once: only the times tell; they are part of the cache key.
    const third = randomBytes(200_000);
    await writeFile(join(dir, name), third);
    const afterRewrite = await request(port, `/downloads/${name}`);
    assert.equal(sha256(afterRewrite.body), sha256(third));
    assert.equal(afterRewrite.headers['x-checksum-sha256'], sha256(third));
    assert.ok((await request(port, '/downloads/SHA256SUMS')).body.toString().includes(`${sha256(third)}  ${name}\n`));

    // A hard link keeps the inode but a new link changes ctime: still right.
    await link(join(dir, name), join(dir, 'reef-tentacle-hardlink'));
    assert.equal((await request(port, '/downloads/reef-tentacle-hardlink')).headers['x-checksum-sha256'], sha256(third));
  });

  test('a download under way when its file is renamed over finishes with the bytes its headers describe', async () => {
    const name = 'reef-tentacle-0.4.0-linux-x64';
    const before = randomBytes(4 * 1024 * 1024);
    await writeFile(join(dir, name), before);
    const done = new Promise<Res>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: `/downloads/${name}`, rejectUnauthorized: false, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.once('data', async (c: Buffer) => {
          chunks.push(c);
          // Paused after the first bytes: the server is held by backpressure mid-file.
          res.pause();
          await writeFile(join(dir, '.swap'), randomBytes(before.length));
          await rename(join(dir, '.swap'), join(dir, name));
          res.on('data', (more: Buffer) => chunks.push(more));
          res.resume();
        });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    const res = await done;
    assert.equal(res.status, 200);
    assert.equal(sha256(res.body), sha256(before));
    assert.equal(res.headers['x-checksum-sha256'], sha256(before));
    const next = await request(port, `/downloads/${name}`);
    assert.notEqual(next.headers['x-checksum-sha256'], sha256(before));
    assert.equal(next.headers['x-checksum-sha256'], sha256(next.body));
  });
});

describe('a downloads folder that does not exist', () => {
  let root: string;
  let running: RunningServer;

  before(async () => {
    root = await trackedTempDir('reef-downloads-missing-');
    running = await startReefServer({ dataDir: join(root, 'data'), httpsPort: 0, commsPort: 0, host: '127.0.0.1' });
  });

  after(async () => {
    await running?.close();
  });

  test('defaults to <data>/downloads, gives an empty index, not a crash, and serves files once it is made', async () => {
    const dir = join(root, 'data', 'downloads');
    assert.equal(running.downloads.dir, dir);
    const port = running.httpsPort;
    assert.deepEqual(JSON.parse((await request(port, '/downloads/index.json')).body.toString()), { files: [] });
    const sums = await request(port, '/downloads/SHA256SUMS');
    assert.equal(sums.status, 200);
    assert.equal(sums.body.length, 0);
    const page = await request(port, '/downloads/');
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /This server holds no downloads yet\./);
    assert.equal((await request(port, `/downloads/${DEB}`)).status, 404);
    assert.deepEqual(await running.downloads.list(), { dir, exists: false, files: [] });

    // An operator sees where to put them.
    const user = await createUser(running.store, 'ops', 'a long enough password 1234');
    const { id } = await startSession(running.store, user);
    const signedIn = (await request(port, '/downloads/', { headers: { cookie: `${SESSION_COOKIE}=${id}` } })).body.toString();
    assert.ok(signedIn.includes(`<code>${dir}</code> (it does not exist yet)`), signedIn);

    await mkdir(dir);
    await writeFile(join(dir, DEB), 'late');
    const json = JSON.parse((await request(port, '/downloads/index.json')).body.toString());
    assert.deepEqual(json.files.map((f: { name: string }) => f.name), [DEB]);
    assert.equal((await request(port, `/downloads/${DEB}`)).body.toString(), 'late');
  });
});
