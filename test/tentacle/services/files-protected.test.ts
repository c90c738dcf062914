/**
 * The Tentacle protects its own files from push-file: home, configuration, keys,
 * certificates, workspace, logs and its program are refused whatever the allowed roots
 * ("/" included), also through symlinks, and nothing on disk changes when they are.
 */
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isReefError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging.js';
import { defaultConfig, writeConfigFile, type TentacleConfig } from '../../../src/tentacle/config.js';
import { tentacleOwnPaths } from '../../../src/tentacle/own-paths.js';
import { installPath, instanceIndexPath } from '../../../src/tentacle/paths.js';
import { FileService } from '../../../src/tentacle/services/files.js';

let dir: string;
let root: string;
let home: string;
let configPath: string;
let config: TentacleConfig;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-files-protected-'));
  root = join(dir, 'tentacle-root');
  home = join(root, 'instances', 'Tentacle');
  configPath = join(home, 'tentacle.json');
  config = defaultConfig('Tentacle', home);
  await mkdir(join(home, 'workspace'), { recursive: true });
  await mkdir(join(home, 'logs'));
  await mkdir(config.app);
  await writeConfigFile(configPath, config); // mode 0600
  await writeFile(join(home, 'comms.key.pem'), 'PRIVATE KEY', { mode: 0o600 });
  await writeFile(join(home, 'comms.cert.pem'), 'CERTIFICATE');
  await writeFile(join(home, 'logs', 'tentacle.log'), 'log line\n');
  await writeFile(instanceIndexPath(root), JSON.stringify({ Tentacle: configPath }));
});

afterEach(() => rm(dir, { recursive: true, force: true }));

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function service(allowedRoots: string[]): FileService {
  return new FileService({ allowedRoots, protect: tentacleOwnPaths(config, configPath, root), logger: silentLogger });
}

/** Every file under `folder` with its bytes and mode, to prove nothing changed. */
async function snapshot(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    const file = join(entry.parentPath ?? entry.path, entry.name);
    const st = await stat(file);
    out[file] = st.isFile() ? `${(st.mode & 0o777).toString(8)} ${sha256(await readFile(file))}` : 'dir';
  }
  return out;
}

/** beginUpload and a whole upload() of `data`, each of which must be refused as protected. */
async function assertRefused(files: FileService, path: string, data = Buffer.from('{"trust":["EVIL"]}')): Promise<void> {
  const request = { path, size: data.length, sha256: sha256(data) };
  const protectedError = (e: unknown) => {
    assert.ok(isReefError(e, 'REEF_PATH_PROTECTED'), `${path}: ${String(e)}`);
    assert.match((e as Error).message, /own files .* whatever the allowed roots/);
    return true;
  };
  await assert.rejects(files.beginUpload(request), protectedError);
  await assert.rejects(files.upload({ ...request, offset: 0 }, Readable.from([data])), protectedError);
}

test('by default only the app folder is an allowed root, and the configuration is refused', async () => {
  assert.deepEqual(config.allowedRoots, [config.app]);
  const before = await snapshot(root);
  await assertRefused(service(config.allowedRoots), configPath);
  assert.deepEqual(await snapshot(root), before);
});

test('with "/" as the root, config, keys, certificates, workspace, logs, home, index and program are all refused; nothing changes', async () => {
  const files = service(['/']);
  const before = await snapshot(root);
  for (const target of [
    configPath,
    join(home, 'comms.key.pem'),
    join(home, 'comms.cert.pem'),
    join(home, 'workspace', 'script.sh'),
    join(home, 'logs', 'tentacle.log'),
    join(home, 'tentacle.pid'),
    join(home, 'anything-new.txt'),
    instanceIndexPath(root),
    join(root, 'instances', 'Other', 'tentacle.json'),
    join(installPath, 'package.json'),
    join(`${home}/Applications/../`, 'tentacle.json'),
  ]) {
    await assertRefused(files, target);
  }
  assert.deepEqual(await snapshot(root), before, 'no file, partial or sidecar written, no mode changed');
  await assert.rejects(files.download({ path: join(home, 'comms.key.pem') }), (e) => isReefError(e, 'REEF_PATH_PROTECTED'));
  assert.equal((await stat(configPath)).mode & 0o777, 0o600);
});

test('symlinks inside an allowed root that point into the home are refused too', async () => {
  const drop = join(dir, 'drop');
  await mkdir(drop);
  await symlink(home, join(drop, 'into-home'));
  await symlink(configPath, join(drop, 'config-link'));
  await symlink(join(home, 'logs'), join(config.app, 'logs-link'));
  const files = service([drop, config.app]);
  const before = await snapshot(root);
  await assertRefused(files, join(drop, 'into-home', 'tentacle.json'));
  await assertRefused(files, join(drop, 'into-home', 'new-dir', 'file'));
  await assertRefused(files, join(drop, 'config-link'));
  await assertRefused(files, join(config.app, 'logs-link', 'tentacle.log'));
  assert.deepEqual(await snapshot(root), before);
});

test('a normal push still works, inside the app folder in home or anywhere under "/", and keeps the mode of a file it replaces', async () => {
  const files = service(['/']);
  const data = Buffer.from('new settings');
  const inApp = join(config.app, 'site', 'app.conf');
  const result = await files.upload({ path: inApp, size: data.length, sha256: sha256(data), offset: 0 }, Readable.from([data]));
  assert.equal(result.path, inApp);
  assert.ok((await readFile(inApp)).equals(data));

  const elsewhere = join(dir, 'srv', 'secret.conf');
  await mkdir(join(dir, 'srv'));
  await writeFile(elsewhere, 'old');
  await chmod(elsewhere, 0o600);
  await files.upload({ path: elsewhere, size: data.length, sha256: sha256(data), offset: 0 }, Readable.from([data]));
  assert.ok((await readFile(elsewhere)).equals(data));
  assert.equal((await stat(elsewhere)).mode & 0o7777, 0o600, 'the replaced file keeps 0600');

  await chmod(inApp, 0o640);
  const next = Buffer.from('newer settings');
  await files.upload({ path: inApp, size: next.length, sha256: sha256(next), offset: 0 }, Readable.from([next]));
  assert.equal((await stat(inApp)).mode & 0o7777, 0o640);
});
