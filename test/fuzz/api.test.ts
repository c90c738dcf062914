import { after, before, describe, test } from 'node:test';
import type { Harness } from '../server/http/harness.js';
import { apiGarbageConnections, apiHostileBodies, startApiTarget } from './api.props.js';
import { TEST_RUNS } from './util.js';

describe('fuzz: REST API bodies against a running server', () => {
  let h: Harness;
  before(async () => {
    h = await startApiTarget();
  });
  after(() => h.close());

  test('hostile bodies to POST /api/tasks, /api/machines, /api/files: never a 500, the server keeps serving', () => apiHostileBodies(h, TEST_RUNS * 2).then(() => {}));
  test('garbage and cut-off HTTP on the API port: the server keeps serving', () => apiGarbageConnections(h, Math.min(TEST_RUNS, 50)));
});
