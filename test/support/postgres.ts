// A real PostgreSQL database per test file (or per store a test opens), cloned from a
// template that has Reef's migrations applied once. PostgreSQL is part of the machines Reef
// is tested on (127.0.0.1:5432, trust auth): when it cannot be reached the tests fail and
// say how to start it, rather than skip and pass.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { migrationsDir } from '../../src/server/store/migrate.js';
import { openPostgres } from '../../src/server/store/postgres/database.js';

/** A database on the server to connect to as a superuser; override with REEF_TEST_POSTGRES_URL. */
export const ADMIN_URL = process.env.REEF_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** How a test database's name starts; on a PostgreSQL server shared with others, set REEF_TEST_DATABASE_PREFIX to keep to names of your own. */
const DATABASE_PREFIX = process.env.REEF_TEST_DATABASE_PREFIX ?? 'reef_test_';

/** Serializes template creation and cloning across test files running at once: ("REEF", 2). */
const TEMPLATE_LOCK = [0x52454546, 2] as const;

export interface TestDatabase {
  name: string;
  /** ADMIN_URL with this database instead. */
  url: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Without Reef's schema (for migration tests). Default false. */
  empty?: boolean;
}

function urlFor(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** Named by a hash of the migration files, so changing one makes a fresh template. */
function templateName(): string {
  const dir = migrationsDir('postgres');
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) hash.update(file).update('\0').update(readFileSync(`${dir}/${file}`));
  return `reef_test_template_${hash.digest('hex').slice(0, 16)}`;
}

async function connectAdmin(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${ADMIN_URL} (${err instanceof Error ? err.message : String(err)}). ` +
        `The store tests need it: start it with ` +
        `\`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\`, ` +
        `or point REEF_TEST_POSTGRES_URL at a server with a superuser.`,
      { cause: err },
    );
  }
  return client;
}

async function ensureTemplate(admin: pg.Client, template: string): Promise<void> {
  const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
  if (rowCount) return;
  const building = `${template}_building`;
  // A run killed half-way leaves the building copy behind; start over from nothing.
  await admin.query(`DROP DATABASE IF EXISTS ${quote(building)} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${quote(building)} TEMPLATE template0 ENCODING 'UTF8'`);
  await (await openPostgres(urlFor(building), { poolSize: 1 })).close();
  // Renamed only once complete, and closed to connections: a clone needs it untouched.
  await admin.query(`ALTER DATABASE ${quote(building)} RENAME TO ${quote(template)}`);
  await admin.query(`ALTER DATABASE ${quote(template)} WITH ALLOW_CONNECTIONS false`);
  // Templates of older migrations are not needed again (a checkout that still has them
  // rebuilds its own, under this same lock).
  const { rows } = await admin.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname LIKE 'reef\\_test\\_template\\_%' AND datname NOT IN ($1, $2)`,
    [template, building],
  );
  for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS ${quote(datname)}`);
}

/** A new database with a unique name: a clone of the migrated template, or empty. */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const name = `${DATABASE_PREFIX}${process.pid}_${randomBytes(6).toString('hex')}`;
  const admin = await connectAdmin();
  try {
    if (options.empty) {
      await admin.query(`CREATE DATABASE ${quote(name)} TEMPLATE template0 ENCODING 'UTF8'`);
    } else {
      const template = templateName();
      // Session-level lock: several test files may find the template missing at once.
      await admin.query('SELECT pg_advisory_lock($1, $2)', [...TEMPLATE_LOCK]);
      try {
        await ensureTemplate(admin, template);
        await admin.query(`CREATE DATABASE ${quote(name)} TEMPLATE ${quote(template)}`);
      } finally {
        await admin.query('SELECT pg_advisory_unlock($1, $2)', [...TEMPLATE_LOCK]);
      }
    }
    // A test database is thrown away: it need not wait for the disk on every commit.
    await admin.query(`ALTER DATABASE ${quote(name)} SET synchronous_commit = off`);
  } finally {
    await admin.end();
  }
  let dropped = false;
  return {
    name,
    url: urlFor(name),
    async drop() {
      if (dropped) return;
      dropped = true;
      const client = await connectAdmin();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
