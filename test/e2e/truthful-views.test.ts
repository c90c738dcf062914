/**
 * What the views say is true, checked against a real `reef server run` and a real polling
 * `tentacle agent`, through the `reef` CLI, the REST API and the portal's HTML: a connected
 * machine says since when it is connected, the tasks list counts each task's machines, the
 * machine page shows health details as a table, `tasks watch --help` says things once, and
 * the CLI pointed at the comms port says so.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../../src/api/client.js';
import type { MachineView, TaskView } from '../../src/api/contract.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

describe('truthful views, against a real server and Tentacle', () => {
  let server: ServerProcess;
  let api: ApiClient;
  const reef = (args: string[]) => cli('reef', args, server.env(server.adminKey!));

  before(async () => {
    const [dataDir, root, httpsPort, commsPort] = await Promise.all([tempDir('views-server'), tempDir('views-tentacles'), freePort(), freePort()]);
    server = await startServer({ dataDir, httpsPort, commsPort, name: 'views-server' });
    api = new ApiClient({ server: server.url, apiKey: server.adminKey, serverThumbprint: server.thumbprint });
    const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
    await tentacle(['create-instance', '--instance', 'Web1']);
    await tentacle(['new-certificate', '--instance', 'Web1']);
    await tentacle(['register-with', '--instance', 'Web1', '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
      '--server-comms-port', String(commsPort), '--environment', 'Test', '--role', 'web', '--name', 'web-1']);
    await startAgent(root, 'Web1');
    await waitFor('web-1 to connect', async () => (await api.json<MachineView>('GET', '/api/machines/web-1')).online);
  });

  after(() => stopAll());

  test('a connected machine says since when it is connected, in the API, the CLI and the portal', async () => {
    const m = await api.json<MachineView>('GET', '/api/machines/web-1');
    assert.ok(m.connectedSince, 'connectedSince is set while online');
    assert.equal(m.connectedSince, m.connections[0]!.connectedAt, 'the start of its (only) connection');
    assert.ok(Date.parse(m.connectedSince) <= Date.now());
    assert.equal(m.nodes.length, 1);
    assert.ok(m.nodes[0]!.connectedAt, 'each node link says since when');

    const list = await reef(['machines', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const [header, row] = list.stdout.trim().split('\n').map((l) => l.split(/\s{2,}/));
    assert.equal(header![6], 'SEEN');
    assert.match(row![6]!, /^connected (just now|\d+s ago|\d+m ago)$/);
    const show = await reef(['machines', 'show', 'web-1']);
    assert.match(show.stdout, new RegExp(`^Connected since: ${m.connectedSince} \\(`, 'm'));
    assert.doesNotMatch(show.stdout, /^Last seen:/m);

    const cookie = await signIn(server);
    const dashboard = await page(server, '/', cookie);
    assert.match(dashboard, new RegExp(`data-field="last-seen">connected <time datetime="${m.connectedSince}"`));
    const machinePage = await page(server, '/machines/web-1', cookie);
    assert.match(machinePage, new RegExp(`<dt>Connected since</dt><dd><time datetime="${m.connectedSince}"`));
  });

  test('the tasks list counts each task\'s machines', async () => {
    const task = await api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'health-check', target: { environment: 'Test' } } });
    await waitFor('the health check to finish', async () => (await api.json<TaskView>('GET', `/api/tasks/${task.id}`)).state === 'Success', 60_000);
    const { items } = await api.json<{ items: TaskView[] }>('GET', '/api/tasks');
    assert.equal(items.find((t) => t.id === task.id)?.machineCount, 1);
    const list = await reef(['tasks', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.trim().split('\n').map((l) => l.split(/\s{2,}/));
    assert.deepEqual(rows[0]!.slice(0, 4), ['ID', 'KIND', 'STATE', 'MACHINES']);
    assert.deepEqual(rows.find((r) => r[0] === task.id)!.slice(0, 4), [task.id, 'health-check', 'Success', '1']);
    // The portal's list too.
    const tasksPage = await page(server, '/tasks', await signIn(server));
    assert.match(tasksPage, new RegExp(`data-task-id="${task.id}"[\\s\\S]*?<td data-label="Machines">1</td>`));
  });

  test('the machine page shows health details as a table of names and values, not JSON', async () => {
    const html = await page(server, '/machines/web-1', await signIn(server));
    const details = /<td data-label="Details" class="details">(<table class="kv">[\s\S]*?<\/table>)<\/td>/.exec(html)?.[1] ?? '';
    assert.ok(details, `a details table in: ${html.slice(html.indexOf('Health history'), html.indexOf('Health history') + 600)}`);
    assert.match(details, /<tr><th scope="row">Round trip<\/th><td>[\d.]+ ms<\/td><\/tr>/);
    assert.match(details, /<tr><th scope="row">Host name<\/th><td>[^<]+<\/td><\/tr>/);
    assert.match(details, /<tr><th scope="row">OS › Platform<\/th><td>linux<\/td><\/tr>/);
    assert.match(details, /<tr><th scope="row">Shells › Bash<\/th><td>\/[^<]*bash<\/td><\/tr>/);
    assert.doesNotMatch(details.replace(/<[^>]*>/g, ' '), /[{}"]/, 'no JSON in the text');
  });

  test('tasks watch --help says once that the exit code is 1 unless the task succeeds', async () => {
    const help = await cli('reef', ['tasks', 'watch', '--help']);
    assert.equal(help.code, 0);
    const text = help.stdout.replace(/\s+/g, ' ');
    assert.equal(text.match(/exit code 1 unless/g)?.length, 1, help.stdout);
    assert.match(text, /follow a task's log until it ends: "\[machine\] text" on stdout/);
  });

  test('the admin CLI pointed at the comms port says it is the comms port', async () => {
    const result = await cli('reef', ['machines', 'list'], { ...server.env(server.adminKey!), REEF_SERVER: `https://127.0.0.1:${server.commsPort}` });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`^error: https://127\\.0\\.0\\.1:${server.commsPort} is a Reef server's comms port, where Tentacles connect: this is the comms port; the API is on the HTTPS port`));
    assert.doesNotMatch(result.stderr, /not JSON/);
  });
});

/** A portal session for admin, by the sign-in form. */
async function signIn(server: ServerProcess): Promise<string> {
  const form = await request(server, 'GET', '/login');
  const loginCookie = String(form.headers['set-cookie']).split(';')[0]!;
  const body = new URLSearchParams({ csrf: loginCookie.split('=')[1]!, username: 'admin', password: server.adminPassword! }).toString();
  const answer = await request(server, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie }, body);
  assert.equal(answer.status, 303);
  const session = [answer.headers['set-cookie']].flat().find((c) => String(c).startsWith('reef_session='));
  return String(session).split(';')[0]!;
}

async function page(server: ServerProcess, path: string, cookie: string): Promise<string> {
  const answer = await request(server, 'GET', path, { cookie });
  assert.equal(answer.status, 200, `${path}: ${answer.body.slice(0, 300)}`);
  return answer.body;
}

function request(server: ServerProcess, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, server.url), { method, headers, rejectUnauthorized: false, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
