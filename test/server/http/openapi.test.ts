/**
 * The OpenAPI document against the server it describes. The document is generated from
 * the route table, so these tests check what generation cannot: that it is valid OpenAPI
 * 3.1, that it covers the table and docs/api.md, and above all that the real answers of a
 * real server (startReefServer in-process: front door, portal, downloads, real engine,
 * SQLite store) match it. Every route is called at least once for a success and once for
 * an error, and each answer's status, media type and body are checked against the
 * document's schema for that route, with every object closed (no field the contract does
 * not name), so a route whose answer changes without its contract fails here. Each JSON
 * body the server accepts must pass the document's request schema too.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { z } from 'zod';
import type { TaskView, UploadedFile } from '../../../src/api/contract.js';
import { silentLogger } from '../../../src/logging.js';
import { createUser } from '../../../src/server/auth/users.js';
import { CSRF_HEADER, SESSION_COOKIE, startSession } from '../../../src/server/auth/sessions.js';
import { EVENTS_EXTENSION, openApiPath } from '../../../src/server/http/openapi.js';
import { route } from '../../../src/server/http/route.js';
import { DOWNLOADS_OPENAPI } from '../../../src/server/downloads/openapi.js';
import { METRICS_OPENAPI } from '../../../src/server/metrics/openapi.js';
import { API_ROUTES } from '../../../src/server/http/routes/index.js';
import { startReefServer, type RunningServer } from '../../../src/server/runtime.js';
import { VERSION } from '../../../src/version.js';
import { stopAll, trackedTempDir } from '../../support/processes.js';
import { ok, startAgent } from '../../e2e/harness.js';
import { eventually, rawRequest, thumbprint, type RawOptions, type RawResponse } from './harness.js';

// ajv-formats is CommonJS: its default export arrives wrapped under tsx and plain node alike.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv2020) => void;

const REPO = resolve(import.meta.dirname, '../../..');

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

const METHODS = ['get', 'post', 'put', 'delete', 'patch', 'head', 'options', 'trace'];

/** Every object schema that names its properties admits no others, unless it says what others may be. */
function closeObjects(node: Json): Json {
  if (Array.isArray(node)) return node.map(closeObjects);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) out[key] = closeObjects(value);
  const isObject = out.type === 'object' || (Array.isArray(out.type) && out.type.includes('object'));
  if (isObject && out.properties && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

/** `text/event-stream` text to its events. */
function parseEvents(text: string): Array<{ event: string; data: string }> {
  const events: Array<{ event: string; data: string }> = [];
  for (const block of text.split('\n\n')) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) events.push({ event, data: data.join('\n') });
  }
  return events;
}

/** Checks answers against the document and records which statuses each operation gave. */
class ContractCheck {
  readonly seen = new Map<string, Set<number>>();
  private readonly doc: Json;
  private readonly ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(document: Json) {
    // Components become $defs, so each schema compiles on its own with everything it refers to.
    this.doc = JSON.parse(JSON.stringify(closeObjects(document)).replaceAll('"#/components/schemas/', '"#/$defs/'));
    addFormats(this.ajv);
    // OpenAPI's own keywords in schema objects (JSON Schema 2020-12 has no such vocabulary).
    this.ajv.addKeyword('example');
    this.ajv.addKeyword('discriminator');
  }

  /** `GET /api/machines/{idOrName}` and its operation for a concrete method and path. */
  operation(method: string, path: string): { key: string; op: Json } | undefined {
    let best: { key: string; op: Json; literals: number } | undefined;
    for (const [template, item] of Object.entries<Json>(this.doc.paths)) {
      const op = item[method.toLowerCase()];
      if (!op) continue;
      const want = template.split('/');
      const got = path.split('/');
      if (want.length !== got.length) continue;
      if (!want.every((w, i) => /^\{.+\}$/.test(w) ? got[i] !== '' : w === got[i])) continue;
      const literals = want.filter((w) => !w.startsWith('{')).length;
      if (!best || literals > best.literals) best = { key: `${method} ${template}`, op, literals };
    }
    return best;
  }

  validate(schema: Json, value: unknown, what: string): void {
    const source = JSON.stringify(schema);
    let check = this.compiled.get(source);
    if (!check) {
      check = this.ajv.compile({ ...schema, $defs: this.doc.components.schemas });
      this.compiled.set(source, check);
    }
    if (!check(value)) {
      assert.fail(`${what} does not match the document: ${this.ajv.errorsText(check.errors)}\n${JSON.stringify(value).slice(0, 600)}`);
    }
  }

  /** The answer to `method path` as the document describes it: status listed, media type and body as declared. */
  check(method: string, target: string, r: RawResponse): void {
    const path = target.split('?')[0]!;
    const found = this.operation(method, path);
    assert.ok(found, `${method} ${path} is not in the document`);
    const { key, op } = found;
    let response = op.responses[String(r.status)];
    if (response?.$ref) response = this.doc.components.responses[String(response.$ref).replace('#/components/responses/', '')];
    assert.ok(response, `${key} answered ${r.status}, which the document does not list (it lists ${Object.keys(op.responses).join(', ')}): ${r.text.slice(0, 300)}`);
    const what = `${method} ${target} -> ${r.status}`;
    if (method === 'head') {
      assert.equal(r.text, '', `${what}: HEAD has no body`);
    } else if (!response.content) {
      assert.equal(r.text, '', `${what} has a body, but the document says none`);
    } else {
      const [media, body] = Object.entries<Json>(response.content)[0]!;
      assert.ok(String(r.headers['content-type']).startsWith(media), `${what}: Content-Type ${String(r.headers['content-type'])}, the document says ${media}`);
      if (media === 'application/json') {
        this.validate(body.schema, r.json, what);
      } else if (media === 'text/event-stream') {
        const schemas = body[EVENTS_EXTENSION];
        const events = parseEvents(r.text);
        assert.ok(events.length > 0, `${what}: no events`);
        for (const e of events) {
          assert.ok(schemas[e.event], `${what}: event "${e.event}" is not in the document`);
          this.validate(schemas[e.event], JSON.parse(e.data), `${what} event ${e.event}`);
        }
      } else if (!['text/plain', 'text/html', 'application/octet-stream'].includes(media)) {
        assert.fail(`${what}: no check for ${media}`);
      }
    }
    const statuses = this.seen.get(key) ?? new Set<number>();
    statuses.add(r.status);
    this.seen.set(key, statuses);
  }

  /** A JSON body the server accepted must be one the document accepts too (a client generated from it could send it). */
  checkRequest(method: string, target: string, body: unknown): void {
    const found = this.operation(method, target.split('?')[0]!);
    const schema = found?.op.requestBody?.content?.['application/json']?.schema;
    assert.ok(schema, `${method} ${target} took a JSON body the document does not describe`);
    this.validate(schema, body, `the request body of ${method} ${target}`);
  }

  /** Every operation, as `get /api/machines/{idOrName}`. */
  operations(): Array<{ key: string; op: Json; template: string; method: string }> {
    return Object.entries<Json>(this.doc.paths).flatMap(([template, item]) =>
      METHODS.filter((m) => item[m]).map((method) => ({ key: `${method} ${template}`, op: item[method], template, method })),
    );
  }
}

after(stopAll);

/** The running server, and requests to it with its admin key unless `auth: false`. */
interface Server {
  running: RunningServer;
  adminKey: string;
  raw(method: string, path: string, options?: RawOptions): Promise<RawResponse>;
}

async function startServer(downloadsDir: string, dataDir: string): Promise<Server> {
  // A node name found nowhere else, so the document can be searched for it.
  const running = await startReefServer({ dataDir, downloadsDir, httpsPort: 0, commsPort: 0, host: '127.0.0.1', nodeName: 'node-5e1f9c', logger: silentLogger });
  const adminKey = running.initialAdminKey!;
  const raw = (method: string, path: string, options: RawOptions = {}): Promise<RawResponse> => rawRequest(running.httpsPort, adminKey, method, path, options);
  return { running, adminKey, raw };
}

const TENTACLE_FILE = 'reef-tentacle-1.0.0-linux-x64';
const TENTACLE_BYTES = Buffer.from('#!/bin/sh\necho a Tentacle\n');

describe('OpenAPI document', () => {
  let h: Server;
  let doc: Json;
  let contract: ContractCheck;

  /** A request to the server whose answer is checked against the document. */
  async function call(method: string, path: string, options: RawOptions & { json?: unknown } = {}): Promise<RawResponse> {
    const { json, ...raw } = options;
    if (json !== undefined) {
      raw.headers = { 'content-type': 'application/json', ...raw.headers };
      raw.body = JSON.stringify(json);
    }
    const r = await h.raw(method, path, raw);
    contract.check(method.toLowerCase(), path, r);
    if (json !== undefined && r.status < 300) contract.checkRequest(method.toLowerCase(), path, json);
    if (method === 'GET' && (path.startsWith('/api') || path === '/metrics')) {
      // HEAD answers every GET route with GET's status and no body.
      const head = await h.raw('HEAD', path, raw);
      contract.check('head', path, head);
      assert.equal(head.status, r.status, `HEAD ${path} -> ${head.status}, GET answered ${r.status}`);
    }
    return r;
  }
  async function expect(status: number, method: string, path: string, options: RawOptions & { json?: unknown } = {}): Promise<RawResponse> {
    const r = await call(method, path, options);
    assert.equal(r.status, status, `${method} ${path} -> ${r.status} ${r.text.slice(0, 300)}`);
    return r;
  }

  before(async () => {
    const root = await trackedTempDir('reef-openapi-');
    const downloads = join(root, 'downloads');
    await mkdir(downloads);
    await writeFile(join(downloads, TENTACLE_FILE), TENTACLE_BYTES);
    h = await startServer(downloads, join(root, 'data'));
    const served = await h.raw('GET', '/api/openapi.json', { auth: false });
    assert.equal(served.status, 200, served.text);
    doc = served.json;
    contract = new ContractCheck(doc);
    contract.check('get', '/api/openapi.json', served);
  });
  after(() => h?.running.close());

  it('is served without a key as valid OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.equal(validator.version, '3.1');
    assert.ok(result.valid, `the document is not valid OpenAPI 3.1: ${JSON.stringify(result.errors, null, 2)}`);
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.version, VERSION);
    // Public, so it must hold nothing of this installation.
    const text = JSON.stringify(doc);
    for (const secret of [h.running.info.nodeName, h.running.info.commsThumbprint, h.adminKey.slice(4, 12)]) {
      assert.ok(!text.includes(secret), `the document holds "${secret}"`);
    }
    const ids = contract.operations().map((o) => o.op.operationId);
    assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
  });

  it('describes the auth schemes as the server reads them', () => {
    assert.deepEqual(doc.components.securitySchemes.apiKey, { type: 'apiKey', in: 'header', name: 'x-reef-apikey', description: doc.components.securitySchemes.apiKey.description });
    assert.equal(doc.components.securitySchemes.bearer.scheme, 'bearer');
    assert.equal(doc.components.securitySchemes.portalSession.in, 'cookie');
    assert.equal(doc.components.securitySchemes.portalSession.name, SESSION_COOKIE);
    assert.equal(doc.components.securitySchemes.csrfToken.name, CSRF_HEADER);
    for (const { key, op, method } of contract.operations()) {
      const isPublic = ['/api/ping', '/api/openapi.json'].includes(key.split(' ')[1]!) || key.includes(' /downloads');
      if (isPublic) {
        assert.deepEqual(op.security, [], key);
        continue;
      }
      const session = method === 'get' || method === 'head' ? { portalSession: [] } : { portalSession: [], csrfToken: [] };
      assert.deepEqual(op.security, [{ apiKey: [] }, { bearer: [] }, session], key);
      assert.ok(op.responses['401'], `${key} lists 401`);
    }
  });

  it('covers every route of the table and /downloads, and docs/api.md names each API route', async () => {
    const fromTable = [
      ...API_ROUTES.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`),
      ...API_ROUTES.filter((r) => r.method === 'GET').map((r) => `head ${openApiPath(r.path)}`),
      ...DOWNLOADS_OPENAPI.map((r) => `${r.method} ${r.path}`),
      ...METRICS_OPENAPI.map((r) => `${r.method} ${r.path}`),
    ].sort();
    const fromDocument = contract.operations().map((o) => o.key).sort();
    assert.deepEqual(fromDocument, fromTable);
    const apiMd = await readFile(join(REPO, 'docs', 'api.md'), 'utf8');
    // docs/api.md describes worker pools as "the same routes" as environments.
    for (const r of API_ROUTES) {
      const named = `${r.method} ${r.path.replace('/api/worker-pools', '/api/environments')}`;
      assert.ok(apiMd.includes(`\`${named}`), `docs/api.md does not name ${named}`);
    }
  });

  it('refuses a route whose path and params schema disagree, when the table is built', () => {
    assert.throws(
      () => route({ method: 'GET', path: '/api/things/:id', tag: 'Server', summary: 'x', permission: 'server:read', params: z.object({ name: z.string() }), responses: {}, handler: async () => {} }),
      /the path has parameters \[id\] but params declares \[name\]/,
    );
    assert.throws(() => route({ method: 'GET', path: '/api/things/:id', tag: 'Server', summary: 'x', permission: 'server:read', responses: {}, handler: async () => {} }), /params declares \[\]/);
  });

  it('catches an answer the contract does not describe', () => {
    const machine = { id: 'm-1', name: 'web', kind: 'target', thumbprint: 'AB', nextThumbprint: null, commsStyle: 'polling', endpoint: null, environments: [], roles: [], workerPools: [], carrier: null, tentacleVersion: null, lastSeenAt: null, lastHealth: 'unknown', lastHealthAt: null, createdAt: '2026-01-01T00:00:00.000Z', connections: [], nodes: [], online: false, connectedSince: null };
    const answer = (status: number, json: unknown): RawResponse => ({ status, headers: { 'content-type': 'application/json; charset=utf-8' }, text: JSON.stringify(json), json });
    contract.check('get', '/api/machines/web', answer(200, machine));
    assert.throws(() => contract.check('get', '/api/machines/web', answer(200, { ...machine, secret: 'x' })), /must NOT have additional properties/);
    assert.throws(() => contract.check('get', '/api/machines/web', answer(200, { ...machine, online: 'yes' })), /online.*must be boolean/);
    assert.throws(() => contract.check('get', '/api/machines/web', answer(200, { ...machine, createdAt: 'yesterday' })), /format "date-time"/);
    assert.throws(() => contract.check('get', '/api/machines/web', answer(418, { error: { code: 'X', message: 'y' } })), /answered 418, which the document does not list/);
    assert.throws(() => contract.check('get', '/api/nowhere', answer(200, {})), /is not in the document/);
    contract.seen.clear();
  });

  it('matches every answer of the real server, a success and an error on every route', async () => {
    // Server
    await expect(200, 'GET', '/api/ping', { auth: false });
    await expect(200, 'GET', '/api/openapi.json', { auth: false });
    await expect(200, 'GET', '/api');
    await expect(200, 'GET', '/api/nodes');
    await expect(200, 'GET', '/metrics');
    await expect(401, 'GET', '/metrics', { auth: false });

    // Environments and worker pools
    for (const [path, name] of [['/api/environments', 'Production'], ['/api/worker-pools', 'Builders']] as const) {
      await expect(201, 'POST', path, { json: { name } });
      await expect(200, 'POST', path, { json: { name: name.toUpperCase() } });
      await expect(400, 'POST', path, { json: { name: '' } });
      await expect(400, 'POST', path, { headers: { 'content-type': 'application/json' }, body: '{"name":' });
      await expect(415, 'POST', path, { headers: { 'content-type': 'text/plain' }, body: name });
      await expect(200, 'GET', path);
      await expect(200, 'GET', `${path}/${name}`);
      await expect(404, 'GET', `${path}/Nowhere`);
    }

    // Machines
    const target = { name: 'web-01', kind: 'target', thumbprint: thumbprint(), commsStyle: 'polling', environments: ['Production'], roles: ['web'], tentacleVersion: '1.0.0' };
    await expect(201, 'POST', '/api/machines', { json: target });
    await expect(409, 'POST', '/api/machines', { json: target });
    await expect(200, 'POST', '/api/machines', { json: { ...target, force: true } });
    await expect(400, 'POST', '/api/machines', { json: { ...target, thumbprint: 'not-hex' } });
    const workerThumbprint = thumbprint();
    const worker = { name: 'builder-01', kind: 'worker', thumbprint: workerThumbprint, commsStyle: 'listening', endpoint: { host: 'builder.local', port: 10933 }, workerPools: ['Builders'] };
    await expect(201, 'POST', '/api/machines', { json: worker });
    await expect(200, 'GET', '/api/machines');
    await expect(200, 'GET', '/api/machines?kind=worker&workerPool=Builders');
    await expect(400, 'GET', '/api/machines?kind=robot');
    await expect(404, 'GET', '/api/machines?environment=Narnia');
    const machine = (await expect(200, 'GET', '/api/machines/web-01')).json;
    await expect(404, 'GET', '/api/machines/nope');
    await h.running.store.recordHealth(machine.id, { ok: true, details: { disk: 'ok', load: 0.5 } });
    await h.running.store.recordHealth(machine.id, { ok: false });
    const health = await expect(200, 'GET', '/api/machines/web-01/health');
    assert.equal(health.json.items.length, 2);
    const badLimit = await expect(400, 'GET', '/api/machines/web-01/health?limit=0');
    assert.equal(badLimit.json.error.message, 'The query parameter limit must be at least 1, not 0.');
    assert.deepEqual(badLimit.json.error.details, { problems: [{ path: 'limit', problem: 'must be at least 1, not 0' }] });
    await expect(404, 'GET', '/api/machines/nope/health');
    await expect(409, 'DELETE', '/api/environments/Production');
    await expect(409, 'DELETE', '/api/worker-pools/Builders');

    // Files
    const bytes = Buffer.from('the file to push\n');
    const uploaded = (await expect(201, 'POST', '/api/files', { headers: { 'content-type': 'application/octet-stream' }, body: bytes })).json as UploadedFile;
    await expect(415, 'POST', '/api/files', { headers: { 'content-type': 'application/json' }, body: '{}' });
    const badHeader = await expect(400, 'POST', '/api/files', { headers: { 'content-type': 'application/octet-stream', 'x-reef-sha256': 'abc' }, body: bytes });
    assert.equal(badHeader.json.error.message, 'The x-reef-sha256 header must be a SHA-256 (64 hexadecimal digits), not "abc".');
    await expect(400, 'POST', '/api/files', { headers: { 'content-type': 'application/octet-stream', 'x-reef-sha256': '0'.repeat(64) }, body: bytes });
    await expect(200, 'GET', `/api/files/${uploaded.sha256}`);
    await expect(400, 'GET', '/api/files/not-a-hash');
    await expect(404, 'GET', `/api/files/${'0'.repeat(64)}`);

    // Tasks and their logs
    const run = (await expect(201, 'POST', '/api/tasks', { json: { kind: 'run-script', target: { machines: ['web-01'] }, script: { body: 'echo hi' } } })).json as TaskView;
    await expect(201, 'POST', '/api/tasks', { json: { kind: 'health-check', target: { environment: 'Production', role: 'web' } } });
    const push = (await expect(201, 'POST', '/api/tasks', {
      json: { kind: 'push-file', target: { machines: ['web-01'] }, file: { sha256: uploaded.sha256, destination: '/opt/app/file.txt' } },
    })).json as TaskView;
    await expect(400, 'POST', '/api/tasks', { json: { kind: 'run-script', target: {}, script: { body: '' } } });
    await expect(404, 'POST', '/api/tasks', { json: { kind: 'health-check', target: { environment: 'Narnia' } } });
    await expect(422, 'POST', '/api/tasks', { json: { kind: 'health-check', target: { environment: 'Production', role: 'nothing' } } });
    await expect(200, 'GET', '/api/tasks');
    await expect(200, 'GET', '/api/tasks?state=Queued&limit=2');
    await expect(400, 'GET', '/api/tasks?state=Sleeping');
    assert.equal((await expect(400, 'GET', '/api/tasks?limit=abc')).json.error.message, 'The query parameter limit must be a whole number, not "abc".');
    await eventually(async () => (await h.running.store.getTask(run.id))?.machines[0]?.state === 'Running', `${run.id} to be claimed`);
    const view = (await expect(200, 'GET', `/api/tasks/${run.id}`)).json as TaskView;
    assert.equal(view.machines.length, 1);
    await expect(404, 'GET', '/api/tasks/T-999999');
    const machineId = view.machines[0]!.machineId;
    await h.running.store.appendTaskLog(run.id, machineId, 'stdout', 'hi');
    await h.running.store.appendTaskLog(run.id, machineId, 'stderr', 'a warning');
    await h.running.store.appendTaskLog(run.id, null, 'info', 'a note of the server');
    const page = (await expect(200, 'GET', `/api/tasks/${run.id}/log?after=0&limit=2`)).json;
    assert.equal(page.items.length, 2);
    await expect(400, 'GET', `/api/tasks/${run.id}/log?after=-1`);
    await expect(404, 'GET', '/api/tasks/T-999999/log');
    await expect(409, 'DELETE', `/api/files/${uploaded.sha256}`).then((r) => assert.deepEqual(r.json.error.details, { taskIds: [push.id] }));
    await expect(404, 'POST', '/api/tasks/T-999999/cancel');
    for (const id of [run.id, push.id]) {
      assert.ok((await expect(202, 'POST', `/api/tasks/${id}/cancel`)).json.cancelRequestedAt);
      // No Tentacle ever runs it here: record the end the engine would (a no-op if it did already).
      await h.running.store.finishTask(id, { state: 'Cancelled' });
      h.running.engine.events.emit('changed', id);
    }
    // A final task's stream: the stored lines after `after`, its state, `end`, then the server closes it.
    const stream = await expect(200, 'GET', `/api/tasks/${run.id}/log/stream?after=1`, { headers: { accept: 'text/event-stream' } });
    const events = parseEvents(stream.text).map((e) => e.event);
    assert.deepEqual(events.slice(0, 2), ['log', 'log']);
    assert.deepEqual(events.slice(-2), ['state', 'end']);
    await expect(404, 'GET', '/api/tasks/T-999999/log/stream');
    await expect(400, 'GET', `/api/tasks/${run.id}/log/stream?after=x`);
    await expect(204, 'DELETE', `/api/files/${uploaded.sha256}`);
    await expect(404, 'DELETE', `/api/files/${uploaded.sha256}`);
    await expect(400, 'DELETE', '/api/files/not-a-hash');

    // API keys
    await expect(200, 'GET', '/api/apikeys');
    const created = (await expect(201, 'POST', '/api/apikeys', { json: { name: 'ci' } })).json;
    await expect(400, 'POST', '/api/apikeys', { json: { name: 'ci', scope: 'all' } });
    await expect(204, 'DELETE', `/api/apikeys/${created.id}`);
    await expect(404, 'DELETE', `/api/apikeys/${created.id}`);
    const audit = (await expect(200, 'GET', '/api/audit?kind=apikey&limit=2')).json.items;
    assert.deepEqual(audit.map((e: { kind: string }) => e.kind), ['apikey.revoked', 'apikey.created']);
    await expect(400, 'GET', '/api/audit?kind=apikey.exploded');
    await expect(401, 'GET', '/api', { auth: false, headers: { 'x-reef-apikey': created.key } });
    const viewer = (await expect(201, 'POST', '/api/apikeys', { json: { name: 'dashboards', role: 'viewer' } })).json;
    await expect(404, 'POST', '/api/apikeys', { json: { name: 'test-ops', role: 'operator', environments: ['Narnia'] } });
    const refused = await expect(403, 'POST', '/api/tasks', { auth: false, headers: { 'x-reef-apikey': viewer.key }, json: { kind: 'health-check', target: { machines: ['web-01'] } } });
    assert.equal(refused.json.error.code, 'REEF_FORBIDDEN');
    contract.validate({ $ref: '#/$defs/Forbidden' }, refused.json.error.details, 'REEF_FORBIDDEN details');

    // Portal users
    await expect(201, 'POST', '/api/users', { json: { username: 'bob', role: 'operator' } });
    await expect(409, 'POST', '/api/users', { json: { username: 'BOB', role: 'viewer' } });
    await expect(200, 'GET', '/api/users');
    await expect(200, 'GET', '/api/users/bob');
    await expect(404, 'GET', '/api/users/nobody');
    await expect(200, 'POST', '/api/users/bob/password', { json: { password: 'a brand new password' } });
    await expect(404, 'POST', '/api/users/nobody/password', { json: {} });
    assert.equal((await expect(200, 'POST', '/api/users/bob/access', { json: { role: 'viewer', environments: ['Production'] } })).json.role, 'viewer');
    await expect(400, 'POST', '/api/users/bob/access', { json: { role: 'admin', environments: ['Production'] } });
    for (const action of ['disable', 'enable']) {
      await expect(200, 'POST', `/api/users/bob/${action}`);
      await expect(404, 'POST', `/api/users/nobody/${action}`);
    }

    // Join tokens: made (with an install line), refused outside their scope and on other routes, revoked
    await expect(200, 'GET', '/api/tokens');
    const joinToken = (await expect(201, 'POST', '/api/tokens', { json: { environments: ['Production'], roles: ['web'], install: { carrier: 'websocket' } } })).json;
    assert.match(joinToken.installCommand, /^curl --pinnedpubkey 'sha256\/\//);
    await expect(400, 'POST', '/api/tokens', { json: { environments: ['Production'] } });
    const outOfScope = { name: 'by-token', kind: 'worker', thumbprint: thumbprint(), commsStyle: 'polling', workerPools: ['Builders'] };
    await expect(403, 'POST', '/api/machines', { auth: false, headers: { 'x-reef-apikey': joinToken.token }, json: outOfScope });
    await expect(403, 'GET', '/api/machines', { auth: false, headers: { 'x-reef-apikey': joinToken.token } });
    await expect(204, 'DELETE', `/api/tokens/${joinToken.id}`);
    await expect(404, 'DELETE', `/api/tokens/${joinToken.id}`);

    // Deleting machines and groups
    await expect(204, 'DELETE', '/api/machines/web-01');
    await expect(404, 'DELETE', '/api/machines/web-01');
    await expect(400, 'DELETE', '/api/machines/by-thumbprint/not-a-thumbprint');
    await expect(404, 'DELETE', `/api/machines/by-thumbprint/${thumbprint()}`);
    await expect(204, 'DELETE', `/api/machines/by-thumbprint/${workerThumbprint.toLowerCase()}`);
    for (const [path, name] of [['/api/environments', 'Production'], ['/api/worker-pools', 'Builders']] as const) {
      await expect(204, 'DELETE', `${path}/${name}`);
      await expect(404, 'DELETE', `${path}/${name}`);
    }

    // The portal's session: a cookie, and its CSRF token on anything but GET.
    const user = await createUser(h.running.store, 'alice', 'a long enough password');
    const { id: cookie, session } = await startSession(h.running.store, user);
    const withCookie = { auth: false, headers: { cookie: `${SESSION_COOKIE}=${cookie}` } };
    await expect(200, 'GET', '/api/machines', withCookie);
    await expect(403, 'POST', '/api/environments', { ...withCookie, json: { name: 'Staging' } });
    await expect(201, 'POST', '/api/environments', { auth: false, headers: { ...withCookie.headers, [CSRF_HEADER]: session.csrfToken }, json: { name: 'Staging' } });
    await expect(401, 'GET', '/api/machines', { auth: false, headers: { cookie: `${SESSION_COOKIE}=${'x'.repeat(43)}` } });
    const withCsrf = { auth: false, headers: { ...withCookie.headers, [CSRF_HEADER]: session.csrfToken } };
    await expect(403, 'POST', '/api/account/password', { ...withCsrf, json: { currentPassword: 'not the password', newPassword: 'a new long password' } });
    await expect(204, 'POST', '/api/account/password', { ...withCsrf, json: { currentPassword: 'a long enough password', newPassword: 'a new long password' } });
    await expect(400, 'POST', '/api/account/password', { json: { currentPassword: 'a long enough password', newPassword: 'a new long password' } });

    // Without credentials every route but the public ones answers 401, before reading any body.
    for (const { template, method, op } of contract.operations()) {
      if (op.security.length === 0) continue;
      await expect(401, method.toUpperCase(), template.replace(/\{[^}]+\}/g, 'x'), { auth: false });
    }

    // Downloads: anonymous, GET and HEAD.
    const anonymous = { auth: false };
    await eventually(async () => (await h.raw('GET', '/downloads/index.json', anonymous)).json?.files?.length === 1, 'the download to be hashed', 20_000);
    const sha256 = createHash('sha256').update(TENTACLE_BYTES).digest('hex');
    for (const method of ['GET', 'HEAD']) {
      await expect(301, method, '/downloads', anonymous);
      await expect(200, method, '/downloads/', anonymous);
      await expect(200, method, '/downloads/index.json', anonymous);
      await expect(200, method, '/downloads/SHA256SUMS', anonymous);
      await expect(200, method, '/downloads/install-tentacle.sh', anonymous);
      await expect(200, method, `/downloads/${TENTACLE_FILE}`, anonymous);
      await expect(206, method, `/downloads/${TENTACLE_FILE}`, { auth: false, headers: { range: 'bytes=0-3' } });
      await expect(304, method, `/downloads/${TENTACLE_FILE}`, { auth: false, headers: { 'if-none-match': `"${sha256}"` } });
      await expect(416, method, `/downloads/${TENTACLE_FILE}`, { auth: false, headers: { range: 'bytes=999-' } });
      await expect(404, method, '/downloads/reef-nothing', anonymous);
      await expect(400, method, '/downloads/%zz', anonymous);
    }
    assert.equal((await h.raw('GET', `/downloads/${TENTACLE_FILE}`, anonymous)).text, TENTACLE_BYTES.toString('utf8'));
    assert.equal((await h.raw('GET', '/downloads/SHA256SUMS', anonymous)).text, `${sha256}  ${TENTACLE_FILE}\n`);

    // The router's own refusals are API errors too.
    const noRoute = await h.raw('GET', '/api/nowhere');
    assert.equal(noRoute.status, 404);
    contract.validate({ $ref: '#/$defs/ApiError' }, noRoute.json, 'GET /api/nowhere');
    const wrongMethod = await h.raw('PUT', '/api/machines');
    assert.equal(wrongMethod.status, 405);
    contract.validate({ $ref: '#/$defs/ApiError' }, wrongMethod.json, 'PUT /api/machines');

  });

  it('matches the answers about a real Tentacle: its connection, a script\'s output and exit code, a pushed file, its health', async () => {
    const root = await trackedTempDir('reef-openapi-tentacles-');
    const env = { REEF_TENTACLE_ROOT: root };
    const { info, httpsPort, commsPort } = h.running;
    await ok('tentacle', ['create-instance', '--instance', 'Web'], env);
    await ok('tentacle', ['new-certificate', '--instance', 'Web'], env);
    await ok('tentacle', ['register-with', '--instance', 'Web', '--server', `https://127.0.0.1:${httpsPort}`, '--server-thumbprint', info.commsThumbprint,
      '--apiKey', h.adminKey, '--server-comms-port', String(commsPort), '--environment', 'Production', '--role', 'web', '--name', 'tentacle-01'], env);
    await startAgent(root, 'Web');
    // Connected here, and recorded as linked to this node (the cluster's view), which follows.
    await eventually(async () => (await h.raw('GET', '/api/machines/tentacle-01')).json?.nodes?.length === 1, 'the Tentacle to connect', 30_000);

    const machine = (await expect(200, 'GET', '/api/machines/tentacle-01')).json;
    assert.equal(machine.connections.length, 1);
    assert.equal(machine.nodes.length, 1);
    await expect(200, 'GET', '/api/machines?environment=Production');
    assert.equal((await expect(200, 'GET', '/api/nodes')).json.items[0].connectedTentacles, 1);

    const finished = async (id: string): Promise<TaskView> => {
      let task: TaskView | undefined;
      await eventually(async () => ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes((task = (await h.raw('GET', `/api/tasks/${id}`)).json as TaskView).state), `${id} to finish`, 60_000);
      return (await expect(200, 'GET', `/api/tasks/${task!.id}`)).json as TaskView;
    };
    const script = (await expect(201, 'POST', '/api/tasks', { json: { kind: 'run-script', target: { machines: ['tentacle-01'] }, script: { body: 'echo out; echo err >&2; exit 3' } } })).json as TaskView;
    const failed = await finished(script.id);
    assert.deepEqual(failed.machines.map((m) => [m.state, m.exitCode]), [['Failed', 3]]);
    const lines = (await expect(200, 'GET', `/api/tasks/${script.id}/log?after=0`)).json.items as Array<{ stream: string; text: string }>;
    assert.ok(lines.some((l) => l.stream === 'stdout' && l.text === 'out') && lines.some((l) => l.stream === 'stderr' && l.text === 'err'), JSON.stringify(lines));
    await expect(200, 'GET', `/api/tasks/${script.id}/log/stream`);

    const bytes = Buffer.from('pushed by the OpenAPI test\n');
    const file = (await expect(201, 'POST', '/api/files', { headers: { 'content-type': 'application/octet-stream' }, body: bytes })).json as UploadedFile;
    const shown = JSON.parse(await ok('tentacle', ['show-configuration', '--instance', 'Web'], env)) as { app?: string; config?: { app: string } };
    const destination = join(shown.app ?? shown.config!.app, 'pushed.txt');
    const push = (await expect(201, 'POST', '/api/tasks', { json: { kind: 'push-file', target: { environment: 'Production' }, file: { sha256: file.sha256, destination } } })).json as TaskView;
    const pushed = await finished(push.id);
    assert.equal(pushed.state, 'Success', JSON.stringify(pushed));
    assert.equal(await readFile(destination, 'utf8'), bytes.toString('utf8'));

    const check = (await expect(201, 'POST', '/api/tasks', { json: { kind: 'health-check', target: { machines: ['tentacle-01'] } } })).json as TaskView;
    assert.equal((await finished(check.id)).state, 'Success');
    const health = (await expect(200, 'GET', '/api/machines/tentacle-01/health')).json.items;
    assert.equal(health[0].ok, true);
    assert.equal((await expect(200, 'GET', '/api/machines/tentacle-01')).json.lastHealth, 'healthy');
    await expect(204, 'DELETE', '/api/machines/tentacle-01');
  });

  it('rotates the server certificate: nothing to show or complete before a start, one rotation at a time', async () => {
    assert.equal((await expect(409, 'GET', '/api/server/certificate-rotation')).json.error.code, 'REEF_ROTATION_NOT_STARTED');
    assert.equal((await expect(409, 'POST', '/api/server/certificate-rotation/complete')).json.error.code, 'REEF_ROTATION_NOT_STARTED');
    await expect(400, 'POST', '/api/server/certificate-rotation', { json: { graceSeconds: -1 } });
    const started = (await expect(201, 'POST', '/api/server/certificate-rotation', { json: { graceSeconds: 60 } })).json;
    assert.equal(started.state, 'under-way');
    assert.equal(started.oldThumbprint, h.running.info.commsThumbprint);
    assert.equal((await expect(409, 'POST', '/api/server/certificate-rotation', { json: {} })).json.error.code, 'REEF_ROTATION_IN_PROGRESS');
    assert.equal((await expect(200, 'GET', '/api/server/certificate-rotation')).json.id, started.id);
    const completed = (await expect(200, 'POST', '/api/server/certificate-rotation/complete')).json;
    assert.equal(completed.state, 'completed');
    assert.equal(h.running.info.commsThumbprint, started.newThumbprint, 'the node presents the new certificate');
  });

  it('answers 503 while the server stops; every route was called for a success and an error', async () => {
    // A server that is stopping takes no new task, and says so (this was a 500).
    await h.running.engine.close();
    const stopping = await expect(503, 'POST', '/api/tasks', { json: { kind: 'health-check', target: { machines: ['web-01'] } } });
    assert.equal(stopping.json.error.code, 'REEF_SHUTTING_DOWN');

    for (const { key, op } of contract.operations()) {
      const statuses = [...(contract.seen.get(key) ?? [])];
      assert.ok(statuses.some((s) => s < 400), `${key} was never called successfully`);
      // 414 and 431 (an oversized request head) are listed on every route; standards.test.ts answers them.
      // So is 429 (request budgets); test/server/audit/audit.test.ts answers it.
      const documentsErrors = Object.keys(op.responses).some((s) => s.startsWith('4') && !['414', '429', '431'].includes(s));
      if (documentsErrors) assert.ok(statuses.some((s) => s >= 400 && s < 500), `${key} never answered an error`);
    }
  });
});
