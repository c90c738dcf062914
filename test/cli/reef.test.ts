import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LogLineView, MachineView, TaskMachineView, TaskState, TaskView } from '../../src/api/contract.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { REEF_BIN } from '../support/built.js';
import { runTracked, type RunResult } from '../support/processes.js';

/**
 * The `reef` admin commands, run as a user would (bin/reef.js in a child process) against a
 * small HTTPS stand-in for the REST API that implements only the routes each test needs
 * and records every request. The real server gets end-to-end tests of its own.
 */

const reefBin = REEF_BIN;
const API_KEY = 'reef-test-key-1234';

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

type Handler = (req: Recorded, res: ServerResponse) => void | Promise<void>;

interface StubServer {
  url: string;
  requests: Recorded[];
  close(): Promise<void>;
}

async function stubServer(identity: CertificateIdentity, routes: Array<[method: string, path: string | RegExp, handler: Handler]>): Promise<StubServer> {
  const requests: Recorded[] = [];
  const server = https.createServer({ cert: identity.certPem, key: identity.keyPem }, async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'https://stub');
    const recorded: Recorded = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body: Buffer.concat(chunks) };
    requests.push(recorded);
    const route = routes.find(([m, p]) => m === req.method && (typeof p === 'string' ? p === url.pathname : p.test(url.pathname)));
    if (!route) return sendJson(res, 404, { error: { code: 'REEF_NOT_FOUND', message: `stub has no route ${req.method} ${url.pathname}` } });
    await route[2](recorded, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sseHeaders(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write('retry: 2000\n\n');
}

function sseLine(line: LogLineView): string {
  return `id: ${line.seq}\nevent: log\ndata: ${JSON.stringify(line)}\n\n`;
}

function runReef(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const base = { ...process.env };
  for (const name of ['REEF_SERVER', 'REEF_API_KEY', 'REEF_SERVER_THUMBPRINT', 'REEF_DEBUG']) delete base[name];
  return runTracked(process.execPath, [reefBin, ...args], { env: { ...base, ...env }, timeoutMs: 60_000 });
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

function machineView(over: Partial<MachineView> & { name: string }): MachineView {
  return {
    id: `m-${over.name}`,
    kind: 'target',
    thumbprint: 'AB'.repeat(32),
    nextThumbprint: null,
    commsStyle: 'polling',
    endpoint: null,
    environments: [],
    roles: [],
    workerPools: [],
    carrier: null,
    tentacleVersion: null,
    lastSeenAt: null,
    lastHealth: 'unknown',
    lastHealthAt: null,
    createdAt: new Date().toISOString(),
    connections: [],
    nodes: [],
    online: false,
    connectedSince: null,
    ...over,
  };
}

function taskMachine(name: string, state: TaskMachineView['state'], exitCode: number | null = null, error: string | null = null): TaskMachineView {
  return { machineId: `m-${name}`, machineName: name, state, exitCode, error, startedAt: null, finishedAt: null, lostContactSince: null, lateReport: null };
}

function taskView(id: string, state: TaskState, machines: TaskMachineView[], over: Partial<TaskView> = {}): TaskView {
  return {
    id,
    kind: 'run-script',
    state,
    target: {},
    spec: {},
    createdAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    cancelRequestedAt: null,
    error: null,
    machineCount: machines.length,
    machines,
    ...over,
  };
}

function logLine(seq: number, machine: string | null, text: string, stream: LogLineView['stream'] = 'stdout'): LogLineView {
  return { seq, machineId: machine === null ? null : `m-${machine}`, at: new Date().toISOString(), stream, text };
}

describe('reef admin CLI', () => {
  let identity: CertificateIdentity;
  let other: CertificateIdentity;
  let tmp: string;
  before(async () => {
    [identity, other] = await Promise.all([generateCertificate('127.0.0.1'), generateCertificate('someone-else')]);
    tmp = await mkdtemp(join(tmpdir(), 'reef-cli-test-'));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  /** Runs reef against `server`, pinned to its certificate. */
  const reef = (server: StubServer, args: string[], env: NodeJS.ProcessEnv = {}) =>
    runReef([...args, '--server', server.url, '--api-key', API_KEY, '--server-thumbprint', identity.thumbprint], env);

  test('a missing server or API key is a clear error naming the flag and the variable', async () => {
    const noServer = await runReef(['machines', 'list']);
    assert.equal(noServer.code, 1);
    assert.deepEqual(lines(noServer.stderr), ['error: No Reef server given: pass --server https://host[:port] or set REEF_SERVER.']);

    const noKey = await runReef(['machines', 'list', '--server', 'https://127.0.0.1:1']);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /^error: No API key given: pass --api-key KEY or set REEF_API_KEY/);
    assert.equal(noKey.stdout, '');
  });

  test('server, key and thumbprint come from the environment too', async () => {
    const server = await stubServer(identity, [['GET', '/api/machines', (_req, res) => sendJson(res, 200, { items: [] })]]);
    try {
      const result = await runReef(['machines', 'list', '--json'], {
        REEF_SERVER: server.url,
        REEF_API_KEY: API_KEY,
        REEF_SERVER_THUMBPRINT: identity.thumbprint,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), []);
      assert.equal(server.requests[0]?.headers['x-reef-apikey'], API_KEY);
    } finally {
      await server.close();
    }
  });

  test('a server presenting another certificate is refused before the key is sent', async () => {
    const server = await stubServer(identity, [['GET', '/api/machines', (_req, res) => sendJson(res, 200, { items: [] })]]);
    try {
      const result = await runReef(['machines', 'list', '--server', server.url, '--api-key', API_KEY, '--server-thumbprint', other.thumbprint]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^error: .*presented certificate thumbprint .*but .* was expected\. Nothing was sent/);
      assert.equal(server.requests.length, 0, 'no request may reach a server that is not the pinned one');
    } finally {
      await server.close();
    }
  });

  test('machines list: a table, filters in the query, --json prints the items', async () => {
    const items = [
      machineView({
        name: 'web-01',
        environments: ['Production', 'Staging'],
        roles: ['web'],
        online: true,
        carrier: 'tcp',
        tentacleVersion: '0.1.0',
        // Seen when its connection began: the table says since when it is connected instead.
        lastSeenAt: new Date(Date.now() - 12 * 60_000).toISOString(),
        connectedSince: new Date(Date.now() - 12 * 60_000).toISOString(),
      }),
      machineView({ name: 'db-01', environments: ['Production'], roles: ['db'], carrier: 'tcp', lastSeenAt: new Date(Date.now() - 5 * 60_000).toISOString() }),
      machineView({ name: 'build-worker', kind: 'worker', workerPools: ['Default'], commsStyle: 'listening' }),
    ];
    const server = await stubServer(identity, [['GET', '/api/machines', (_req, res) => sendJson(res, 200, { items })]]);
    try {
      const table = await reef(server, ['machines', 'list']);
      assert.equal(table.code, 0, table.stderr);
      const rows = lines(table.stdout).map((l) => l.split(/\s{2,}/));
      assert.deepEqual(rows, [
        ['NAME', 'KIND', 'STATUS', 'CARRIER', 'ENVIRONMENTS/POOLS', 'ROLES', 'SEEN', 'VERSION'],
        ['web-01', 'target', 'online', 'tcp', 'Production,Staging', 'web', 'connected 12m ago', '0.1.0'],
        ['db-01', 'target', 'offline', 'tcp', 'Production', 'db', '5m ago', '-'],
        ['build-worker', 'worker', 'offline', 'listening', 'Default', '-', 'never', '-'],
      ]);

      const json = await reef(server, ['machines', 'list', '--kind', 'worker', '--worker-pool', 'Default', '--json']);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), items);
      const query = server.requests[1]!.query;
      assert.equal(query.get('kind'), 'worker');
      assert.equal(query.get('workerPool'), 'Default');

      await reef(server, ['machines', 'list', '--environment', 'Production', '--role', 'web']);
      assert.equal(server.requests[2]!.query.toString(), 'environment=Production&role=web');
    } finally {
      await server.close();
    }
  });

  test('an API error is printed as the server worded it', async () => {
    const server = await stubServer(identity, [
      ['GET', /^\/api\/machines\/.+/, (_req, res) => sendJson(res, 404, { error: { code: 'REEF_NOT_FOUND', message: 'No machine has the id or name "db 9".' } })],
    ]);
    try {
      const result = await reef(server, ['machines', 'show', 'db 9']);
      assert.equal(result.code, 1);
      assert.deepEqual(lines(result.stderr), ['error: No machine has the id or name "db 9".']);
      assert.equal(result.stdout, '');
      assert.equal(server.requests[0]!.path, '/api/machines/db%209');
    } finally {
      await server.close();
    }
  });

  test('run-script sends the target in each form and prints the task id', async () => {
    const server = await stubServer(identity, [['POST', '/api/tasks', (_req, res) => sendJson(res, 201, taskView('T-1', 'Queued', [taskMachine('web-01', 'Pending')]))]]);
    const scriptFile = join(tmp, 'deploy.ps1');
    await writeFile(scriptFile, 'Write-Host hi');
    try {
      const forms: Array<[string[], unknown]> = [
        [['--environment', 'Production', '--role', 'web'], { environment: 'Production', role: 'web' }],
        [['--environment', 'Production'], { environment: 'Production' }],
        [['--worker-pool', 'Default'], { workerPool: 'Default' }],
        [['--machine', 'web-01', '--machine', 'web-02'], { machines: ['web-01', 'web-02'] }],
      ];
      for (const [args, target] of forms) {
        const result = await reef(server, ['tasks', 'run-script', ...args, '--script', 'echo hi', '--timeout', '30']);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, 'T-1\n');
        const body = JSON.parse(server.requests.at(-1)!.body.toString());
        assert.deepEqual(body, { kind: 'run-script', target, script: { syntax: 'bash', body: 'echo hi' }, timeoutSeconds: 30 });
      }
      const limited = await reef(server, ['tasks', 'run-script', '--machine', 'web-01', '--script', 'echo hi', '--lost-contact-limit', '7200']);
      assert.equal(limited.code, 0, limited.stderr);
      assert.equal(JSON.parse(server.requests.at(-1)!.body.toString()).lostContactLimitSeconds, 7200);
      const badLimit = await reef(server, ['tasks', 'run-script', '--machine', 'web-01', '--script', 'echo hi', '--lost-contact-limit', 'soon']);
      assert.match(badLimit.stderr, /^error: --lost-contact-limit /);
      const fromFile = await reef(server, ['tasks', 'run-script', '--machine', 'win-01', '--file', scriptFile]);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      assert.deepEqual(JSON.parse(server.requests.at(-1)!.body.toString()).script, { syntax: 'powershell', body: 'Write-Host hi' });

      const sent = server.requests.length;
      const noTarget = await reef(server, ['tasks', 'run-script', '--script', 'echo hi']);
      assert.equal(noTarget.code, 1);
      assert.match(noTarget.stderr, /^error: Say which machines: --environment NAME/);
      const twoTargets = await reef(server, ['tasks', 'run-script', '--worker-pool', 'A', '--machine', 'b', '--script', 'x']);
      assert.match(twoTargets.stderr, /^error: Use only one of/);
      const roleAlone = await reef(server, ['tasks', 'run-script', '--role', 'web', '--script', 'x']);
      assert.match(roleAlone.stderr, /^error: --role needs --environment/);
      const noScript = await reef(server, ['tasks', 'run-script', '--machine', 'a']);
      assert.match(noScript.stderr, /^error: Give the script with exactly one of --script TEXT or --file FILE/);
      assert.equal(server.requests.length, sent, 'bad usage sends nothing');
    } finally {
      await server.close();
    }
  });

  test('--follow prints the log in order with machine names, a summary, and exits 1 when the task fails', async () => {
    const machines = [taskMachine('web-01', 'Running'), taskMachine('web-02', 'Running')];
    let finished = false;
    const server = await stubServer(identity, [
      ['POST', '/api/tasks', (_req, res) => sendJson(res, 201, taskView('T-7', 'Running', machines))],
      [
        'GET',
        '/api/tasks/T-7',
        (_req, res) =>
          sendJson(
            res,
            200,
            finished
              ? taskView('T-7', 'Failed', [taskMachine('web-01', 'Success', 0), taskMachine('web-02', 'Failed', 3, 'the script exited with code 3')])
              : taskView('T-7', 'Running', machines),
          ),
      ],
      [
        'GET',
        '/api/tasks/T-7/log/stream',
        (_req, res) => {
          sseHeaders(res);
          res.write(sseLine(logLine(1, null, 'Task started')) + sseLine(logLine(2, 'web-01', 'Script started', 'info')));
          res.write(sseLine(logLine(3, 'web-01', 'hello from one')) + sseLine(logLine(4, 'web-02', 'hello from two')));
          res.write(sseLine(logLine(5, 'web-02', 'disk full', 'stderr')) + ': ping\n\n');
          finished = true;
          res.write(`event: state\ndata: ${JSON.stringify(taskView('T-7', 'Failed', []))}\n\n`);
          res.end('event: end\ndata: {}\n\n');
        },
      ],
      ['GET', '/api/tasks/T-7/log', (req, res) => sendJson(res, 200, { items: [], lastSeq: Number(req.query.get('after')), taskState: 'Failed' })],
    ]);
    try {
      const result = await reef(server, ['tasks', 'run-script', '--environment', 'Production', '--script', 'echo hi', '--follow']);
      assert.equal(result.code, 1);
      assert.deepEqual(lines(result.stdout), [
        '[task] Task started',
        '[web-01] * Script started',
        '[web-01] hello from one',
        '[web-02] hello from two',
        '[web-02] ! disk full',
      ]);
      const err = lines(result.stderr);
      assert.match(err[0]!, /^Task T-7 created on 2 machine\(s\)/);
      assert.equal(err.at(-1), 'error: Task T-7 ended Failed.');
      const summary = err.slice(1, -1).join('\n');
      assert.match(summary, /^Task T-7 Failed\n\s+MACHINE\s+STATE\s+EXIT\s+ERROR\n\s+web-01\s+Success\s+exit 0\s+-\n\s+web-02\s+Failed\s+exit 3\s+the script exited with code 3$/);
      const stream = server.requests.find((r) => r.path === '/api/tasks/T-7/log/stream')!;
      assert.equal(stream.query.get('after'), '0');
      assert.match(String(stream.headers.accept), /text\/event-stream/);
    } finally {
      await server.close();
    }
  });

  test('a dropped log stream is resumed after the last line: nothing twice, nothing lost', async () => {
    const machines = [taskMachine('web-01', 'Running')];
    const all = [1, 2, 3, 4, 5, 6].map((n) => logLine(n, 'web-01', `line ${n}`));
    let connections = 0;
    let final = false;
    const server = await stubServer(identity, [
      ['GET', '/api/tasks/T-9', (_req, res) => sendJson(res, 200, taskView('T-9', final ? 'Success' : 'Running', final ? [taskMachine('web-01', 'Success', 0)] : machines))],
      [
        'GET',
        '/api/tasks/T-9/log/stream',
        (req, res) => {
          connections += 1;
          sseHeaders(res);
          if (connections === 1) {
            // Three lines, half of the fourth, then the connection dies.
            res.write(all.slice(0, 3).map(sseLine).join('') + sseLine(all[3]!).slice(0, 30));
            setTimeout(() => res.socket?.destroy(), 50);
            return;
          }
          // The second connection honours Last-Event-ID / after, then closes without an `end`
          // while line 6 is still only in the store: the client must read it from the log pages.
          const afterSeq = Number(req.headers['last-event-id'] ?? req.query.get('after'));
          res.write(all.filter((l) => l.seq > afterSeq && l.seq <= 5).map(sseLine).join(''));
          final = true;
          res.end();
        },
      ],
      [
        'GET',
        '/api/tasks/T-9/log',
        (req, res) => {
          const afterSeq = Number(req.query.get('after'));
          const items = all.filter((l) => l.seq > afterSeq);
          sendJson(res, 200, { items, lastSeq: items.at(-1)?.seq ?? afterSeq, taskState: 'Success' });
        },
      ],
    ]);
    try {
      const result = await reef(server, ['tasks', 'watch', 'T-9']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(lines(result.stdout), all.map((l) => `[web-01] ${l.text}`));
      const streams = server.requests.filter((r) => r.path === '/api/tasks/T-9/log/stream');
      assert.equal(streams.length, 2);
      assert.equal(streams[1]!.query.get('after'), '3');
      assert.equal(streams[1]!.headers['last-event-id'], '3');
      assert.match(result.stderr, /Log stream interrupted .*reconnecting/);
      assert.match(result.stderr, /Task T-9 Success/);
    } finally {
      await server.close();
    }
  });

  test('watch exits non-zero for a cancelled task; --json gives NDJSON', async () => {
    const server = await stubServer(identity, [
      ['GET', '/api/tasks/T-3', (_req, res) => sendJson(res, 200, taskView('T-3', 'Cancelled', [taskMachine('web-01', 'Cancelled')]))],
      [
        'GET',
        '/api/tasks/T-3/log',
        (req, res) => {
          const items = req.query.get('after') === '0' ? [logLine(1, 'web-01', 'partial')] : [];
          sendJson(res, 200, { items, lastSeq: 1, taskState: 'Cancelled' });
        },
      ],
    ]);
    try {
      const result = await reef(server, ['tasks', 'watch', 'T-3', '--json']);
      assert.equal(result.code, 1);
      const records = lines(result.stdout).map((l) => JSON.parse(l));
      assert.deepEqual(
        records.map((r) => r.type),
        ['log', 'task'],
      );
      assert.equal(records[0].machineName, 'web-01');
      assert.equal(records[1].task.state, 'Cancelled');
      assert.equal(lines(result.stderr).at(-1), 'error: Task T-3 ended Cancelled.');
    } finally {
      await server.close();
    }
  });

  test('push-file uploads with the SHA-256 header, then creates the task; an existing file is not uploaded again', async () => {
    const content = randomBytes(300_000);
    const sha256 = createHash('sha256').update(content).digest('hex');
    const src = join(tmp, 'app.tar.gz');
    await writeFile(src, content);
    const stored = new Set<string>();
    const server = await stubServer(identity, [
      [
        'GET',
        /^\/api\/files\/[0-9a-f]{64}$/,
        (req, res) => {
          const sha = req.path.split('/').at(-1)!;
          if (stored.has(sha)) sendJson(res, 200, { sha256: sha, size: content.length });
          else sendJson(res, 404, { error: { code: 'REEF_NOT_FOUND', message: `No uploaded file has SHA-256 ${sha}.` } });
        },
      ],
      [
        'POST',
        '/api/files',
        (req, res) => {
          const sha = createHash('sha256').update(req.body).digest('hex');
          stored.add(sha);
          sendJson(res, 201, { sha256: sha, size: req.body.length });
        },
      ],
      ['POST', '/api/tasks', (_req, res) => sendJson(res, 201, taskView('T-5', 'Queued', [], { kind: 'push-file' }))],
    ]);
    try {
      const first = await reef(server, ['tasks', 'push-file', src, '/opt/app/app.tar.gz', '--machine', 'web-01']);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout, 'T-5\n');
      const upload = server.requests.find((r) => r.method === 'POST' && r.path === '/api/files')!;
      assert.equal(upload.headers['x-reef-sha256'], sha256);
      assert.equal(upload.headers['content-type'], 'application/octet-stream');
      assert.equal(upload.headers['content-length'], String(content.length));
      assert.ok(upload.body.equals(content));
      assert.match(first.stderr, /Uploading app\.tar\.gz: 100% 293\.0 KiB of 293\.0 KiB/);
      const task = JSON.parse(server.requests.at(-1)!.body.toString());
      assert.deepEqual(task, { kind: 'push-file', target: { machines: ['web-01'] }, file: { sha256, destination: '/opt/app/app.tar.gz' } });

      const before = server.requests.length;
      const second = await reef(server, ['tasks', 'push-file', src, '/opt/app/app.tar.gz', '--environment', 'Production', '--json']);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(JSON.parse(second.stdout).id, 'T-5');
      const made = server.requests.slice(before).map((r) => `${r.method} ${r.path}`);
      assert.deepEqual(made, [`GET /api/files/${sha256}`, 'POST /api/tasks']);
      assert.equal(second.stderr, '', '--json prints no progress');

      const relative = await reef(server, ['tasks', 'push-file', src, 'relative/path', '--machine', 'web-01']);
      assert.equal(relative.code, 1);
      assert.match(relative.stderr, /^error: DEST must be an absolute path/);
      assert.equal(server.requests.length, before + 2, 'a bad destination sends nothing');
    } finally {
      await server.close();
    }
  });

  test('cancel, show and list', async () => {
    const running = taskView('T-4', 'Running', [taskMachine('web-01', 'Running')], { cancelRequestedAt: new Date().toISOString() });
    const done = taskView('T-2', 'Success', [taskMachine('web-01', 'Success', 0)], { kind: 'health-check' });
    const outage = taskView('T-5', 'Running', [
      { ...taskMachine('web-01', 'Running'), lostContactSince: '2026-12-05T10:00:00.000Z' },
      {
        ...taskMachine('web-02', 'Failed', null, 'Lost contact'),
        lostContactSince: '2026-12-05T10:00:00.000Z',
        lateReport: { receivedAt: '2026-12-05T11:00:00.000Z', state: 'Success', exitCode: 0, error: null, lines: 12 },
      },
    ]);
    const server = await stubServer(identity, [
      ['POST', '/api/tasks/T-4/cancel', (_req, res) => sendJson(res, 202, running)],
      ['GET', '/api/tasks/T-2', (_req, res) => sendJson(res, 200, done)],
      ['GET', '/api/tasks/T-5', (_req, res) => sendJson(res, 200, outage)],
      // A list counts each task's machines and leaves `machines` empty, as the server does.
      ['GET', '/api/tasks', (_req, res) => sendJson(res, 200, { items: [{ ...running, machines: [] }, { ...done, machineCount: 3, machines: [] }] })],
    ]);
    try {
      const cancel = await reef(server, ['tasks', 'cancel', 'T-4']);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.match(cancel.stderr, /^Cancellation requested for task T-4/);
      assert.equal(server.requests[0]!.method, 'POST');

      const show = await reef(server, ['tasks', 'show', 'T-2']);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /^Task T-2: health-check, Success\n/);
      assert.match(show.stdout, /\nMACHINE\s+STATE\s+EXIT CODE\s+STARTED\s+FINISHED\s+ERROR\nweb-01\s+Success\s+0\s+-\s+-\s+-\n$/);

      const waiting = await reef(server, ['tasks', 'show', 'T-5']);
      assert.equal(waiting.code, 0, waiting.stderr);
      assert.match(waiting.stdout, /\n\nweb-01: lost contact since 2026-12-05T10:00:00\.000Z\nweb-02: late report 2026-12-05T11:00:00\.000Z: the script ended Success \(exit code 0\); 12 late lines in the log\n$/);

      const list = await reef(server, ['tasks', 'list', '--state', 'running', '--limit', '5']);
      assert.equal(list.code, 0, list.stderr);
      assert.equal(server.requests.at(-1)!.query.toString(), 'state=Running&limit=5');
      assert.deepEqual(
        lines(list.stdout).map((l) => l.split(/\s{2,}/).slice(0, 4)),
        [
          ['ID', 'KIND', 'STATE', 'MACHINES'],
          ['T-4', 'run-script', 'Running', '1'],
          ['T-2', 'health-check', 'Success', '3'],
        ],
      );
      const badState = await reef(server, ['tasks', 'list', '--state', 'Sleeping']);
      assert.match(badState.stderr, /^error: --state must be one of Queued, Running/);
    } finally {
      await server.close();
    }
  });

  test('environments and worker pools; health-check; apikey create prints the key alone', async () => {
    const server = await stubServer(identity, [
      ['GET', '/api/environments', (_req, res) => sendJson(res, 200, { items: [{ id: 'e1', name: 'Production' }, { id: 'e2', name: 'Staging' }] })],
      ['POST', '/api/worker-pools', (req, res) => sendJson(res, 201, { id: 'p1', name: JSON.parse(req.body.toString()).name })],
      ['DELETE', '/api/environments/Old%20Env', (_req, res) => { res.writeHead(204).end(); }],
      ['POST', '/api/tasks', (_req, res) => sendJson(res, 201, taskView('T-8', 'Queued', [], { kind: 'health-check' }))],
      ['POST', '/api/apikeys', (req, res) => sendJson(res, 201, { id: 'k1', name: JSON.parse(req.body.toString()).name, role: 'admin', scope: { environments: [], workerPools: [] }, key: 'reef_secret_value' })],
    ]);
    try {
      const envs = await reef(server, ['environments', 'list']);
      assert.equal(envs.stdout, 'Production\nStaging\n');
      const pool = await reef(server, ['worker-pools', 'create', 'Linux']);
      assert.equal(pool.code, 0, pool.stderr);
      assert.deepEqual(JSON.parse(server.requests.at(-1)!.body.toString()), { name: 'Linux' });
      const del = await reef(server, ['environments', 'delete', 'Old Env']);
      assert.equal(del.code, 0, del.stderr);
      assert.match(del.stderr, /Deleted environment "Old Env"/);

      const health = await reef(server, ['tasks', 'health-check', '--worker-pool', 'Linux']);
      assert.equal(health.stdout, 'T-8\n');
      assert.deepEqual(JSON.parse(server.requests.at(-1)!.body.toString()), { kind: 'health-check', target: { workerPool: 'Linux' } });

      const key = await reef(server, ['apikey', 'create', '--name', 'ci']);
      assert.equal(key.code, 0, key.stderr);
      assert.equal(key.stdout, 'reef_secret_value\n');
      assert.deepEqual(JSON.parse(server.requests.at(-1)!.body.toString()), { name: 'ci', role: 'admin' });
      assert.match(key.stderr, /role admin, whole server/);
    } finally {
      await server.close();
    }
  });
});
