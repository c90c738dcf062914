// The store work every new Tentacle connection causes (the trust lookup's fallback, the
// late-report lookup, the certificate-rotation check, presence and last-contact writes
// in batches of one or several, the claim check) builds no temporary b-tree on SQLite.
// Each such b-tree allocates, writes and frees a page cache of its own (about 85 KiB);
// freed once per connection, that memory ends up under the next connections' 64 KiB TLS
// read buffers, which then count in full instead of a page or two: about 50 KiB more per
// idle Tentacle (docs/performance.md, "fleet"). Checked on the plans of the statements
// the store ran (EXPLAIN), so no data is needed to make them run the expensive way.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql, type Database, type Db, type Sql } from '../../../src/server/store/sql.js';
import { openSqlite } from '../../../src/server/store/sqlite/database.js';
import { storeOn } from '../../../src/server/store/store.js';
import type { Machine, Store } from '../../../src/server/store/types.js';
import { target } from './helpers.js';

/** Opcodes that open a temporary b-tree (an ephemeral table, an automatic index). */
const TEMPORARY_BTREE = new Set(['OpenEphemeral', 'OpenAutoindex']);

/** `database` with every query it runs (in a transaction or not) recorded in `ran`. */
function recording(database: Database, ran: Sql[]): Database {
  const record = <D extends Db>(db: D): Db => ({
    dialect: db.dialect,
    all: (query) => (ran.push(query), db.all(query)),
    one: (query) => (ran.push(query), db.one(query)),
    run: (query) => (ran.push(query), db.run(query)),
    script: (text) => db.script(text),
  });
  return { ...record(database), transaction: (fn) => database.transaction((db) => fn(record(db))), close: () => database.close() };
}

describe('SQLite store: the work of a new Tentacle connection', () => {
  let dir: string;
  let database: Database;
  let store: Store;
  let machines: Machine[];
  const ran: Sql[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-connection-work-'));
    database = await openSqlite(join(dir, 'reef.db'));
    store = storeOn(recording(database, ran));
    machines = [];
    for (const name of ['conn-1', 'conn-2', 'conn-3']) machines.push(await store.createMachine(target(name)));
    await store.coordination.joinNode({ name: 'node-a', incarnation: 'node-a-1', info: {} });
  });

  after(async () => {
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('builds no temporary b-tree, for one Tentacle or a batch of several', async () => {
    const [m] = machines;
    const thumbprints = machines.map((machine) => machine.thumbprint);
    ran.length = 0;
    // runtime.ts ('connected'), tasks/late-reports.ts, machine-certificates.ts, trust-cache.ts,
    // cluster/presence.ts and the scheduler's claim pass, as a connection and a disconnection run them.
    await store.getMachineByThumbprint(m!.thumbprint);
    await store.getMachineByNextThumbprint(m!.thumbprint);
    await store.listLostContact(m!.id);
    for (const batch of [thumbprints.slice(0, 1), thumbprints]) {
      await store.touchMachines(batch.map((thumbprint) => ({ thumbprint, carrier: 'tcp' })), new Date());
      await store.touchMachines(batch.map((thumbprint) => ({ thumbprint })), new Date());
      await store.coordination.addLinks('node-a', batch.map((thumbprint) => ({ thumbprint, carrier: 'tcp' })));
      await store.coordination.removeLinks('node-a', batch);
    }
    await store.coordination.claimWork('node-a', { leaseMs: 60_000, staleAfterMs: 15_000, limit: 100 });
    assert.ok(ran.length >= 10, `the store ran ${ran.length} statements`);

    const building: string[] = [];
    for (const query of ran) {
      const plan = await database.all<{ opcode: string }>(sql`EXPLAIN ${query}`);
      const opcodes = plan.map((step) => step.opcode).filter((opcode) => TEMPORARY_BTREE.has(opcode));
      if (opcodes.length > 0) building.push(`${opcodes.join(', ')}: ${query.render(() => '?').replace(/\s+/g, ' ')}`);
    }
    assert.deepEqual(building, []);
  });
});
