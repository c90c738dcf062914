import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { silentLogger } from '../../src/logging.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { identityFiles, saveIdentity } from '../../src/pki/identity-files.js';
import { CertificateRotationService, loadTentacleIdentity } from '../../src/tentacle/certificate-rotation.js';

let home: string;
let original: CertificateIdentity;
let switched: CertificateIdentity[];
let service: CertificateRotationService;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'tcert-home-'));
  original = await generateCertificate('original');
  await saveIdentity(home, original, 'comms');
  switched = [];
  service = new CertificateRotationService({ home, commonName: 'Reef Tentacle test', onSwitch: (identity) => switched.push(identity), logger: silentLogger });
});
afterEach(() => rm(home, { recursive: true, force: true }));

const mode = async (file: string) => (await stat(file)).mode & 0o777;

test('prepareNext makes one next certificate, 0600, and answers the same one when asked again', async () => {
  const first = await service.prepareNext();
  assert.equal(first.current, original.thumbprint);
  assert.notEqual(first.next, original.thumbprint);
  assert.deepEqual(await service.prepareNext(), first, 'no third certificate');
  const files = identityFiles(home, 'comms-next');
  assert.deepEqual([await mode(files.certFile), await mode(files.keyFile)], [0o600, 0o600]);
  assert.deepEqual(await service.state(), { current: original.thumbprint, next: first.next, previous: null });
  assert.equal((await loadTentacleIdentity(home)).thumbprint, original.thumbprint, 'still the current one until the switch');
});

test('switch makes the next one current and keeps the previous until forgotten; a repeat changes nothing', async () => {
  const { next } = await service.prepareNext();
  const after = await service.switchTo(next);
  assert.deepEqual(after, { current: next, next: null, previous: original.thumbprint });
  assert.deepEqual(switched.map((i) => i.thumbprint), [next]);
  assert.equal((await loadTentacleIdentity(home)).thumbprint, next);
  assert.equal(await mode(identityFiles(home, 'comms').keyFile), 0o600);
  assert.deepEqual(await service.switchTo(next), after, 'switching again to the current one is a no-op');
  assert.equal(switched.length, 1);
  // Only the previous one can be forgotten, never the current one.
  assert.deepEqual(await service.forgetPrevious(next), after);
  assert.deepEqual(await service.forgetPrevious(original.thumbprint), { ...after, previous: null });
  await assert.rejects(stat(identityFiles(home, 'comms-previous').certFile));
});

test('a switch to a certificate that is not the pending next one is refused, and nothing changes', async () => {
  await assert.rejects(service.switchTo((await generateCertificate('other')).thumbprint), (err: Error & { code?: string }) => err.code === 'REEF_CERTIFICATE_SWITCH_REFUSED');
  const { next } = await service.prepareNext();
  await assert.rejects(service.switchTo((await generateCertificate('other')).thumbprint), /the next one it made is/);
  assert.deepEqual(await service.state(), { current: original.thumbprint, next, previous: null });
  assert.equal(switched.length, 0);
});

test('a switch cut off between the new key and its certificate is finished when the identity is loaded', async () => {
  const { next } = await service.prepareNext();
  // What a crash inside switchTo can leave: the next key written over the current one, the old certificate beside it.
  await writeFile(identityFiles(home, 'comms').keyFile, await readFile(identityFiles(home, 'comms-next').keyFile, 'utf8'), { mode: 0o600 });
  const loaded = await loadTentacleIdentity(home);
  assert.equal(loaded.thumbprint, next, 'finished: the new pair');
  assert.deepEqual((await service.state()).next, null);
});

test('a switch cut off after the current files were written reads as done', async () => {
  const { next } = await service.prepareNext();
  // The current files are the next ones, but the next files were not removed yet.
  await writeFile(identityFiles(home, 'comms').keyFile, await readFile(identityFiles(home, 'comms-next').keyFile, 'utf8'), { mode: 0o600 });
  await writeFile(identityFiles(home, 'comms').certFile, await readFile(identityFiles(home, 'comms-next').certFile, 'utf8'), { mode: 0o600 });
  assert.deepEqual(await service.state(), { current: next, next: null, previous: null });
  await assert.rejects(stat(identityFiles(home, 'comms-next').certFile));
});
