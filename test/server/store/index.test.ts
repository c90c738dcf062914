import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createStore, parseStoreLocation } from '../../../src/server/store/index.js';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.js';

describe('createStore', () => {
  let dir: string;
  let db: TestDatabase;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-store-index-'));
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads file paths and sqlite: URLs as SQLite, postgres URLs as PostgreSQL', () => {
    assert.deepEqual(parseStoreLocation('reef.db'), { kind: 'sqlite', path: 'reef.db' });
    assert.deepEqual(parseStoreLocation('/var/lib/reef/reef.db'), { kind: 'sqlite', path: '/var/lib/reef/reef.db' });
    assert.deepEqual(parseStoreLocation('sqlite:data/reef.db'), { kind: 'sqlite', path: 'data/reef.db' });
    assert.deepEqual(parseStoreLocation('sqlite:///var/lib/reef/reef.db'), { kind: 'sqlite', path: '/var/lib/reef/reef.db' });
    assert.deepEqual(parseStoreLocation('file:///var/lib/reef/reef.db'), { kind: 'sqlite', path: '/var/lib/reef/reef.db' });
    assert.deepEqual(parseStoreLocation('postgres://u@h/db'), { kind: 'postgres', url: 'postgres://u@h/db' });
    assert.deepEqual(parseStoreLocation('PostgreSQL://u@h:5433/db?sslmode=require'), {
      kind: 'postgres',
      url: 'PostgreSQL://u@h:5433/db?sslmode=require',
    });
  });

  it('refuses anything else, saying what it expected and hiding a password', () => {
    for (const bad of ['', 'sqlite:', 'mysql://root:hunter2@db/reef', 'http://example.com/reef.db']) {
      assert.throws(() => parseStoreLocation(bad), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'REEF_INVALID_ARGUMENT');
        assert.match(err.message, /postgres:\/\/user:password@host:5432\/database/);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      });
    }
  });

  it('opens a working store of either kind', async () => {
    for (const location of [join(dir, 'a.db'), `sqlite://${join(dir, 'b.db')}`, pathToFileURL(join(dir, 'c.db')).href, db.url]) {
      const store = await createStore(location);
      try {
        const env = await store.ensureEnvironment('Production');
        assert.deepEqual(await store.listEnvironments(), [env], location);
      } finally {
        await store.close();
      }
    }
  });
});
