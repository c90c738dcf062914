/**
 * The script store under concurrent use, as a server reconnecting after an outage uses it:
 * status reads (also of tickets only on disk, which load them), completions by the
 * scripts' own exits, completion and collection by the server, and listing, all at once
 * on many tickets. Each call either answers truthfully or refuses with the code that
 * says why; nothing else (a raw ENOENT, a resurrected ticket, files written into a
 * tombstone) may happen.
 */
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isReefError } from '../../../../src/errors.js';
import { silentLogger } from '../../../../src/logging.js';
import type { ScriptStatus } from '../../../../src/api/tentacle/index.js';
import { ScriptService } from '../../../../src/tentacle/services/scripts/index.js';

let dir: string;
let workspaceDir: string;
const services: ScriptService[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-scripts-race-'));
  workspaceDir = join(dir, 'work');
});

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

function service(): ScriptService {
  const s = new ScriptService({ workspaceDir, logger: silentLogger, pollIntervalMs: 5, cancelGraceMs: 1000 });
  services.push(s);
  return s;
}

const TICKETS = 24;
const ROUNDS = 40;
const ticketOf = (i: number) => `race-${String(i).padStart(3, '0')}`;
const EXPECTED = ['one', 'two', 'three'];

/** Errors a call may legitimately end with while another call completes the ticket. */
function allowed(err: unknown, codes: string[]): boolean {
  return isReefError(err) && codes.includes(err.code);
}

/** Checks one status answer: a finished state comes with its whole log. */
function checkStatus(status: ScriptStatus): void {
  if (status.state === 'Running') return;
  assert.equal(status.state, 'Complete', JSON.stringify(status));
  assert.equal(status.exitCode, 0);
  assert.deepEqual(
    status.lines.map((l) => l.text),
    EXPECTED,
  );
}

/**
 * Hammers one ticket: status reads, listing, and completions, until completed. Returns
 * the unexpected errors seen.
 */
async function hammer(s: ScriptService, ticket: string, completeAfterFinish: boolean): Promise<unknown[]> {
  const unexpected: unknown[] = [];
  const record = (codes: string[]) => (err: unknown) => {
    if (!allowed(err, codes)) unexpected.push(err);
  };
  let done = false;
  const readers = Array.from({ length: 3 }, async () => {
    for (let i = 0; i < ROUNDS && !done; i++) {
      await s
        .status({ ticket, afterSeq: 0, maxLines: 100 })
        .then(checkStatus)
        .catch(record(['REEF_TICKET_COMPLETED']));
      await s.list().catch(record([]));
      await sleep(Math.random() * 3);
    }
  });
  const completers = Array.from({ length: 2 }, async () => {
    for (let i = 0; i < ROUNDS * 4; i++) {
      if (completeAfterFinish) {
        const status = await s.status({ ticket, afterSeq: 0, maxLines: 1 }).catch((err: unknown) => err);
        if (!(status instanceof Error) && (status as ScriptStatus).state === 'Running') {
          await sleep(Math.random() * 5);
          continue;
        }
      }
      try {
        await s.complete({ ticket });
        done = true;
        return;
      } catch (err) {
        record(['REEF_TICKET_RUNNING'])(err);
        await sleep(Math.random() * 5);
      }
    }
    unexpected.push(new Error(`${ticket} was never completed`));
  });
  await Promise.all([...readers, ...completers]);
  return unexpected;
}

async function assertTombstones(): Promise<void> {
  for (let i = 0; i < TICKETS; i++) {
    assert.deepEqual(await readdir(join(workspaceDir, ticketOf(i))), ['completed'], `${ticketOf(i)} is a bare tombstone`);
  }
}

test('status, list and complete at once on many tickets while their scripts finish', async () => {
  const s = service();
  for (let i = 0; i < TICKETS; i++) {
    await s.start({ ticket: ticketOf(i), syntax: 'sh', body: `sleep 0.0${i % 10}; echo one; echo two; echo three` });
  }
  const results = await Promise.all(Array.from({ length: TICKETS }, (_, i) => hammer(s, ticketOf(i), i % 2 === 0)));
  const unexpected = results.flat();
  assert.deepEqual(unexpected.map(String), [], 'no call failed for a reason other than completion');
  await assertTombstones();
  // Completed tickets are gone from the service, also from a new one over the same workspace.
  assert.deepEqual(await s.list(), []);
  assert.deepEqual(await service().list(), []);
});

test('tickets only on disk are loaded, read and completed at once without a resurrection', async () => {
  const first = service();
  for (let i = 0; i < TICKETS; i++) await first.start({ ticket: ticketOf(i), syntax: 'sh', body: 'echo one; echo two; echo three' });
  for (let i = 0; i < TICKETS; i++) {
    for (;;) {
      if ((await first.status({ ticket: ticketOf(i), maxLines: 1 })).state !== 'Running') break;
      await sleep(10);
    }
  }
  await first.close();
  // A new service knows these finished tickets only from disk: every call below loads them.
  const s = service();
  const results = await Promise.all(Array.from({ length: TICKETS }, (_, i) => hammer(s, ticketOf(i), false)));
  assert.deepEqual(results.flat().map(String), []);
  await assertTombstones();
  for (let i = 0; i < TICKETS; i++) {
    await assert.rejects(s.status({ ticket: ticketOf(i) }), (err: unknown) => allowed(err, ['REEF_TICKET_COMPLETED']));
  }
});

test('a finished ticket the server never collected is kept for the retention period, then removed', async () => {
  const s = new ScriptService({ workspaceDir, logger: silentLogger, pollIntervalMs: 5, retentionMs: 60_000 });
  services.push(s);
  await s.start({ ticket: 'kept', syntax: 'sh', body: 'echo late' });
  await s.start({ ticket: 'collected', syntax: 'sh', body: 'echo early' });
  await s.start({ ticket: 'running', syntax: 'sh', body: 'sleep 30' });
  for (const ticket of ['kept', 'collected']) {
    while ((await s.status({ ticket, maxLines: 1 })).state === 'Running') await sleep(10);
  }
  await s.complete({ ticket: 'collected' });
  assert.deepEqual(await readdir(join(workspaceDir, 'collected')), ['completed'], 'a collected ticket is removed at once');

  // Within the retention period the uncollected ticket keeps its lines and outcome.
  assert.deepEqual(await s.sweep(Date.now() + 30_000), []);
  const kept = await s.status({ ticket: 'kept' });
  assert.equal(kept.exitCode, 0);
  assert.deepEqual(kept.lines.map((l) => l.text), ['late']);

  // Past it, the ticket is removed; a running script is never touched.
  assert.deepEqual(await s.sweep(Date.now() + 61_000), ['kept']);
  assert.deepEqual(await readdir(join(workspaceDir, 'kept')), ['completed']);
  await assert.rejects(s.status({ ticket: 'kept' }), (err: unknown) => allowed(err, ['REEF_TICKET_EXPIRED']) && /retention period/.test(String(err)));
  await assert.rejects(s.start({ ticket: 'kept', syntax: 'sh', body: 'echo again' }), (err: unknown) => allowed(err, ['REEF_TICKET_EXPIRED']));
  assert.equal((await s.status({ ticket: 'running', maxLines: 1 })).state, 'Running');
  await s.cancel({ ticket: 'running' });
});
