import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isReefError } from '../../src/errors.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import {
  identityFiles,
  loadIdentity,
  loadOrCreateIdentity,
  saveIdentity,
} from '../../src/pki/identity-files.js';

const posix = process.platform !== 'win32';
let root: string;
let identity: CertificateIdentity;
let n = 0;
const freshDir = () => join(root, `case-${++n}`, 'certs');

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'reef-identity-'));
  identity = await generateCertificate('files-test');
});
after(() => rm(root, { recursive: true, force: true }));

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** Runs `fn` with a loose umask, as on a carelessly configured host. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(previous);
  }
}

test('saveIdentity writes <base>.cert.pem and <base>.key.pem, and loadIdentity reads them back', async () => {
  const dir = freshDir();
  const files = await saveIdentity(dir, identity);
  assert.deepEqual(files, { certFile: join(dir, 'comms.cert.pem'), keyFile: join(dir, 'comms.key.pem') });
  assert.deepEqual(files, identityFiles(dir));
  assert.equal(await readFile(files.certFile, 'utf8'), identity.certPem);
  assert.equal(await readFile(files.keyFile, 'utf8'), identity.keyPem);
  assert.deepEqual(await loadIdentity(dir), identity);
  assert.deepEqual((await readdir(dir)).sort(), ['comms.cert.pem', 'comms.key.pem'], 'no temporary files left');
});

test('a base name other than comms', async () => {
  const dir = freshDir();
  await saveIdentity(dir, identity, 'server');
  assert.deepEqual((await readdir(dir)).sort(), ['server.cert.pem', 'server.key.pem']);
  assert.deepEqual(await loadIdentity(dir, 'server'), identity);
});

test('files are 0600 and a new folder 0700, even with a loose umask', { skip: !posix }, async () => {
  const dir = freshDir();
  const files = await withUmask(0o000, () => saveIdentity(dir, identity));
  assert.equal(await mode(files.certFile), 0o600);
  assert.equal(await mode(files.keyFile), 0o600);
  assert.equal(await mode(dir), 0o700);
});

test('files are 0600 with a umask that would remove the owner write bit', { skip: !posix }, async () => {
  const files = await withUmask(0o277, () => saveIdentity(freshDir(), identity));
  assert.equal(await mode(files.keyFile), 0o600);
});

test('overwriting world-readable files leaves them 0600 with the new contents', { skip: !posix }, async () => {
  const dir = freshDir();
  const files = await saveIdentity(dir, identity);
  await writeFile(files.keyFile, 'old key');
  await chmod(files.keyFile, 0o644);
  await chmod(files.certFile, 0o666);
  const other = await generateCertificate('replacement');
  await withUmask(0o000, () => saveIdentity(dir, other));
  assert.equal(await mode(files.keyFile), 0o600);
  assert.equal(await mode(files.certFile), 0o600);
  assert.deepEqual(await loadIdentity(dir), other);
});

test('an existing folder keeps its mode', { skip: !posix }, async () => {
  const dir = freshDir();
  await saveIdentity(dir, identity);
  await chmod(dir, 0o750);
  await saveIdentity(dir, identity);
  assert.equal(await mode(dir), 0o750);
});

test('a missing identity is REEF_IDENTITY_MISSING, naming the path and the caller\'s hint', async () => {
  const dir = freshDir();
  await assert.rejects(loadIdentity(dir, 'comms', 'Run `tentacle new-certificate` to create one.'), (err) => {
    assert.ok(isReefError(err, 'REEF_IDENTITY_MISSING'));
    assert.ok(err.message.includes(join(dir, 'comms.cert.pem')), err.message);
    assert.ok(err.message.includes('Run `tentacle new-certificate`'), err.message);
    return true;
  });
  // Only the key missing: the message names the key file.
  await saveIdentity(dir, identity);
  await rm(identityFiles(dir).keyFile);
  await assert.rejects(loadIdentity(dir), (err) => {
    assert.ok(isReefError(err, 'REEF_IDENTITY_MISSING'));
    assert.ok(err.message.includes('comms.key.pem'), err.message);
    return true;
  });
});

test('files that no longer belong together are refused, naming the files', async () => {
  const dir = freshDir();
  const files = await saveIdentity(dir, identity);
  await writeFile(files.keyFile, (await generateCertificate('other')).keyPem);
  await assert.rejects(loadIdentity(dir), (err) => {
    assert.ok(isReefError(err, 'REEF_KEY_MISMATCH'));
    assert.ok(err.message.includes(files.keyFile), err.message);
    return true;
  });
  await writeFile(files.certFile, 'damaged');
  await assert.rejects(loadIdentity(dir), (err) => isReefError(err, 'REEF_BAD_CERTIFICATE'));
});

test('loadOrCreateIdentity creates once, then loads the same identity', async () => {
  const dir = freshDir();
  const first = await loadOrCreateIdentity(dir, 'comms', 'tentacle-01');
  assert.equal(first.created, true);
  assert.match(first.certPem, /BEGIN CERTIFICATE/);
  const second = await loadOrCreateIdentity(dir, 'comms', 'ignored-now');
  assert.equal(second.created, false);
  assert.equal(second.thumbprint, first.thumbprint);
  assert.deepEqual(await loadIdentity(dir), { certPem: first.certPem, keyPem: first.keyPem, thumbprint: first.thumbprint });
  if (posix) assert.equal(await mode(identityFiles(dir).keyFile), 0o600);
});

test('loadOrCreateIdentity will not replace half an identity', async () => {
  const dir = freshDir();
  await saveIdentity(dir, identity);
  await rm(identityFiles(dir).keyFile);
  await assert.rejects(loadOrCreateIdentity(dir, 'comms', 'x'), (err) => {
    assert.ok(isReefError(err, 'REEF_IDENTITY_INCOMPLETE'));
    assert.ok(err.message.includes('comms.key.pem'), err.message);
    return true;
  });
  assert.equal(await readFile(identityFiles(dir).certFile, 'utf8'), identity.certPem, 'the certificate is untouched');
});

test('an unwritable location is a clear REEF_IDENTITY_UNWRITABLE', async () => {
  const file = join(root, 'a-file');
  await writeFile(file, '');
  // A folder path that runs through a regular file cannot be created, even by root.
  await assert.rejects(saveIdentity(join(file, 'certs'), identity), (err) => {
    assert.ok(isReefError(err, 'REEF_IDENTITY_UNWRITABLE'));
    assert.match(err.message, /a-file/);
    return true;
  });
});
