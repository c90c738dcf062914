/**
 * `reef server run` lists its downloads at start, and the command it prints for machines
 * works as printed: curl with the server's public key pinned fetches the file and
 * SHA256SUMS, and sha256sum -c passes. A wrong pin is refused before a byte is written; a
 * cut-off download resumes with `curl -C -`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTracked } from '../support/processes.js';
import { freePort, startServer, stopAll, tempDir } from './harness.js';

after(stopAll);

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const bash = (script: string, cwd: string) => runTracked('bash', ['-c', `cd "$1" && ${script}`, 'bash', cwd], { timeoutMs: 60_000 });

test('the start-up banner lists each download; its curl command fetches and verifies one over the pinned key', async () => {
  const root = await tempDir('downloads-cli');
  const downloads = join(root, 'packages');
  await mkdir(downloads);
  const tentacle = randomBytes(3 * 1024 * 1024 + 7);
  const deb = randomBytes(5000);
  await writeFile(join(downloads, 'reef-tentacle-0.1.0-linux-x64'), tentacle);
  await writeFile(join(downloads, 'reef-tentacle_0.1.0_amd64.deb'), deb);

  const [served, empty] = await Promise.all([
    startServer({ dataDir: join(root, 'data'), httpsPort: await freePort(), commsPort: await freePort(), name: 'downloads', extraArgs: ['--downloads-dir', downloads] }),
    startServer({ dataDir: join(root, 'data-empty'), httpsPort: await freePort(), commsPort: await freePort(), name: 'downloads-empty' }),
  ]);

  const base = `https://127.0.0.1:${served.httpsPort}`;
  const lines = served.banner.split('\n');
  assert.ok(lines.includes(`  Downloads:       2 files from ${downloads} at ${base}/downloads/`), served.banner);
  assert.ok(lines.includes(`    reef-tentacle-0.1.0-linux-x64  3.0 MiB  sha256 ${sha256(tentacle)}`), served.banner);
  assert.ok(lines.includes(`    reef-tentacle_0.1.0_amd64.deb  4.9 KiB  sha256 ${sha256(deb)}`), served.banner);
  const command = /^ {4}(curl --pinnedpubkey .*)$/m.exec(served.banner)?.[1];
  assert.ok(command, served.banner);
  assert.ok(command.includes(`${base}/downloads/reef-tentacle-0.1.0-linux-x64`));
  // The default folder, missing: one line says so and what to put there.
  const emptyDir = join(root, 'data-empty', 'downloads');
  assert.match(empty.banner, new RegExp(`^  Downloads: {7}none \\(${emptyDir} does not exist\\); put reef-tentacle-<version>-linux-<arch> files and \\.deb packages there`, 'm'));

  // As printed, in an empty folder on the "machine".
  const machine = await tempDir('downloads-machine');
  const run = await bash(command, machine);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /^reef-tentacle-0\.1\.0-linux-x64: OK$/m);
  assert.deepEqual(await readFile(join(machine, 'reef-tentacle-0.1.0-linux-x64')), tentacle);

  // Any other key is refused before the request is sent: curl exits 90 and writes nothing.
  const pin = /--pinnedpubkey '(sha256\/\/[A-Za-z0-9+/=]+)'/.exec(command)![1]!;
  const wrongPin = `sha256//${createHash('sha256').update('another key').digest('base64')}`;
  const elsewhere = await tempDir('downloads-wrong-pin');
  const refused = await bash(command.replace(pin, wrongPin), elsewhere);
  assert.equal(refused.code, 90, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /public key does not match pinned public key/);
  assert.deepEqual(await readdir(elsewhere), []);

  // A download cut off after 1 MiB resumes where it stopped (206), and then checks out.
  const resumed = await tempDir('downloads-resume');
  await writeFile(join(resumed, 'reef-tentacle-0.1.0-linux-x64'), tentacle.subarray(0, 1024 * 1024));
  const resume = await bash(`curl --pinnedpubkey '${pin}' --insecure -fsS -C - -O -w '%{http_code} %{size_download}\\n' ${base}/downloads/reef-tentacle-0.1.0-linux-x64`, resumed);
  assert.equal(resume.code, 0, resume.stderr);
  assert.equal(resume.stdout.trim(), `206 ${tentacle.length - 1024 * 1024}`);
  assert.deepEqual(await readFile(join(resumed, 'reef-tentacle-0.1.0-linux-x64')), tentacle);
});
