import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isReefError } from '../../src/errors.js';
import { defaultConfig, loadConfig, loadInstance, redactConfig, saveConfig, updateConfig } from '../../src/tentacle/config.js';
import { createInstance, deleteInstance, listInstances, moveHome, resolveInstance } from '../../src/tentacle/instances.js';
import { defaultConfigPath, defaultHome, SYSTEM_ROOT, tentacleRoot, validateInstanceName } from '../../src/tentacle/paths.js';

let root: string;
beforeEach(async () => (root = await mkdtemp(join(tmpdir(), 'reef-instances-'))));
afterEach(() => rm(root, { recursive: true, force: true }));

describe('instance index', () => {
  test('create writes a default config and an index entry', async () => {
    const created = await createInstance('Tentacle', {}, root);
    const home = join(root, 'instances', 'Tentacle');
    assert.equal(created.configPath, join(home, 'tentacle.json'));
    assert.deepEqual(created.config, defaultConfig('Tentacle', home));
    assert.deepEqual(await loadConfig('Tentacle', root), created.config);
    assert.deepEqual(JSON.parse(await readFile(join(root, 'instances.json'), 'utf8')), {
      version: 1,
      instances: { Tentacle: created.configPath },
    });
    assert.equal((await stat(created.configPath)).mode & 0o777, 0o600);
    assert.equal((await stat(home)).mode & 0o777, 0o700);
    assert.deepEqual((await readdir(home)).sort(), ['Applications', 'logs', 'tentacle.json', 'workspace']);
  });

  test('concurrent creates all land in the index', async () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    await Promise.all(names.map((n) => createInstance(n, {}, root)));
    assert.deepEqual((await listInstances(root)).map((i) => i.name), names);
    const leftovers = (await readdir(root)).filter((f) => f.includes('.tmp') || f.endsWith('.lock'));
    assert.deepEqual(leftovers, []);
  });

  test('unknown instances name the known ones and how to create', async () => {
    await createInstance('One', {}, root);
    await assert.rejects(resolveInstance('Two', root), (err: Error) => {
      assert.ok(isReefError(err, 'REEF_NOT_FOUND'));
      assert.match(err.message, /Known instances: One\..*create-instance --instance Two/);
      return true;
    });
  });

  test('instance names are checked', () => {
    for (const bad of ['', 'has space', '../up', '-dash', 'x'.repeat(65), 'a/b']) {
      assert.throws(() => validateInstanceName(bad), { code: 'REEF_INVALID_ARGUMENT' });
    }
    for (const good of ['Tentacle', 'web-01', 'a.b_c']) assert.equal(validateInstanceName(good), good);
  });

  test('a config file already used by another instance is refused', async () => {
    const config = join(root, 'shared.json');
    await createInstance('One', { config }, root);
    await assert.rejects(createInstance('Two', { config }, root), { code: 'REEF_CONFLICT' });
  });

  test('delete keeps files unless purged; purge keeps deployed applications', async () => {
    const { configPath, config } = await createInstance('Gone', {}, root);
    await deleteInstance('Gone', {}, root);
    await stat(configPath);
    assert.deepEqual(await listInstances(root), []);

    await createInstance('Gone', { config: configPath }, root);
    await writeFile(join(config.app, 'deployed.txt'), 'keep me');
    await writeFile(join(config.home, 'logs', 'x.log'), 'log');
    await deleteInstance('Gone', { purge: true }, root);
    await assert.rejects(stat(configPath), { code: 'ENOENT' });
    await assert.rejects(stat(join(config.home, 'logs')), { code: 'ENOENT' });
    assert.equal(await readFile(join(config.app, 'deployed.txt'), 'utf8'), 'keep me');
  });

  test('the root follows REEF_TENTACLE_ROOT, then root/user defaults', () => {
    assert.equal(tentacleRoot({ REEF_TENTACLE_ROOT: '/x/y' }), '/x/y');
    const fallback = tentacleRoot({ XDG_CONFIG_HOME: '/xdg' });
    assert.equal(fallback, process.getuid?.() === 0 ? '/etc/reef/tentacle' : '/xdg/reef/tentacle');
  });

  test('system instances keep configuration in /etc and data in /var/lib; others keep both together', () => {
    assert.equal(defaultConfigPath('web', SYSTEM_ROOT), '/etc/reef/tentacle/instances/web/tentacle.json');
    assert.equal(defaultHome('web', SYSTEM_ROOT), '/var/lib/reef-tentacle/web');
    assert.equal(defaultHome('web', '/x/y'), '/x/y/instances/web');
  });
});

describe('config file', () => {
  test('validation errors name the file and every bad field', async () => {
    const { configPath } = await createInstance('Bad', {}, root);
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    config.listen.port = 0;
    config.home = 'relative/home';
    config.surprise = true;
    await writeFile(configPath, JSON.stringify(config));
    await assert.rejects(loadConfig('Bad', root), (err: Error) => {
      assert.ok(isReefError(err, 'REEF_CONFIG_INVALID'));
      assert.ok(err.message.startsWith(`Config file ${configPath} is invalid: `), err.message);
      assert.match(err.message, /home: must be an absolute path/);
      assert.match(err.message, /listen\.port: /);
      assert.match(err.message, /Unrecognized key\(s\) in object: 'surprise'/);
      return true;
    });
    await writeFile(configPath, '{ not json');
    await assert.rejects(loadConfig('Bad', root), /Config file .* is not valid JSON/);
  });

  test('hand-written thumbprints are normalized on load; servers are validated', async () => {
    const { configPath, config } = await createInstance('Hand', {}, root);
    const tp = 'ab:'.repeat(31) + 'ab';
    await writeFile(configPath, JSON.stringify({ ...config, trust: [tp], servers: [{ thumbprint: tp, address: 'wss://h/reef/comms' }] }));
    const loaded = await loadConfig('Hand', root);
    assert.deepEqual(loaded.trust, ['AB'.repeat(32)]);
    assert.deepEqual(loaded.servers, [{ thumbprint: 'AB'.repeat(32), address: 'wss://h/reef/comms' }]);

    loaded.servers = [{ thumbprint: 'AB'.repeat(32), address: 'ftp://nope' }];
    await assert.rejects(saveConfig(loaded, root), /servers\.0\.address: must be a URL starting with tcp:\/\/, https:\/\/, wss:\/\//);
  });

  test('updateConfig is atomic and serialized', async () => {
    await createInstance('U', {}, root);
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        updateConfig('U', (c) => {
          c.allowedRoots.push(`/data/${i}`);
        }, root),
      ),
    );
    const { config, configPath } = await loadInstance('U', root);
    assert.equal(config.allowedRoots.length, 1 + 8, 'the default root (app) and all eight additions');
    assert.equal((await stat(configPath)).mode & 0o777, 0o600);
  });

  test('moveHome carries the default app folder and allowed roots', () => {
    const c = { ...defaultConfig('M', '/old'), allowedRoots: ['/old', '/old/Applications', '/data'] };
    const moved = moveHome(c, '/new');
    assert.equal(moved.app, '/new/Applications');
    assert.deepEqual(moved.allowedRoots, ['/new', '/new/Applications', '/data']);
    const custom = moveHome({ ...c, app: '/srv/apps', allowedRoots: ['/old', '/srv/apps'] }, '/new');
    assert.equal(custom.app, '/srv/apps');
    assert.deepEqual(custom.allowedRoots, ['/new', '/srv/apps']);
  });

  test('redactConfig hides proxy passwords only', () => {
    const c = { ...defaultConfig('R', '/h'), proxy: { host: 'p', port: 1, username: 'u', password: 'secret' }, pollingProxy: { host: 'q', port: 2 } };
    const shown = redactConfig(c);
    assert.equal(shown.proxy?.password, '********');
    assert.equal(shown.proxy?.username, 'u');
    assert.deepEqual(shown.pollingProxy, { host: 'q', port: 2 });
    assert.equal(c.proxy.password, 'secret', 'the original is untouched');
  });
});
