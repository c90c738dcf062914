/**
 * The web portal end to end: a real `reef server run` and real `tentacle agent`
 * processes, driven through Debian's Chromium with playwright-core, as an operator would.
 * Each test saves a screenshot of the page it checked under test-output/portal/, and every
 * page is checked against the WCAG 2 A and AA rules of axe-core (the accessibility engine
 * of Chrome's Lighthouse), injected into the real page.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ApiClient } from '../../src/api/client.js';
import type { MachineView, TaskView } from '../../src/api/contract.js';
import { freePort, ok, REPO, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const SHOTS = join(REPO, 'test-output', 'portal');
const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
};
const UI_TIMEOUT = 15_000;
/** axe-core's rule tags for WCAG 2.0, 2.1 and 2.2, levels A and AA. */
const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/**
 * The WCAG 2 A/AA violations axe-core finds on the page, one line each (rule, impact,
 * elements). axe is evaluated through the DevTools protocol, which the page's
 * Content-Security-Policy does not govern, so the page runs exactly as it does for users.
 */
async function accessibilityViolations(target: Page, axeSource: string): Promise<{ violations: string[]; passedRules: number }> {
  await target.evaluate(axeSource);
  const { violations, passedRules } = await target.evaluate(async (tags) => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[]; passes: unknown[] }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return {
      violations: result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })),
      passedRules: result.passes.length,
    };
  }, WCAG_AA);
  return {
    violations: violations.map((v: AxeViolation) => `${v.id} (${v.impact ?? 'no impact'}): ${v.help}; at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    passedRules,
  };
}

describe('web portal in Chromium, against a real server with real Tentacles', () => {
  let server: ServerProcess;
  let api: ApiClient;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let serverData: string;
  /** Content-Security-Policy violations and page errors seen by any page: there must be none. */
  const problems: string[] = [];

  async function newContext(viewport = { width: 1280, height: 900 }): Promise<BrowserContext> {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
    ctx.setDefaultTimeout(UI_TIMEOUT);
    ctx.on('console', (message) => {
      if (message.type() === 'error' && /Content.Security.Policy|Refused to/i.test(message.text())) problems.push(message.text());
    });
    ctx.on('weberror', (error) => problems.push(String(error.error())));
    return ctx;
  }

  async function shot(target: Page, name: string): Promise<void> {
    await target.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }

  async function machine(name: string): Promise<MachineView | undefined> {
    const { items } = await api.json<{ items: MachineView[] }>('GET', '/api/machines');
    return items.find((m) => m.name === name);
  }

  /** The log section of one machine on a task page. */
  const logOf = (target: Page, machineName: string) => target.locator('section.log', { has: target.locator('h3', { hasText: machineName }) }).locator('.log-lines');

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    const [dataDir, root, downloads, httpsPort, commsPort] = await Promise.all([tempDir('portal-server'), tempDir('portal-tentacles'), tempDir('portal-downloads'), freePort(), freePort()]);
    serverData = dataDir;
    const launching = chromium.launch(CHROMIUM);
    // A file to download, so the downloads page shows its table and command.
    await writeFile(join(downloads, 'reef-tentacle-0.1.0-linux-x64'), 'not a real executable\n');
    server = await startServer({ dataDir, httpsPort, commsPort, name: 'portal-server', extraArgs: ['--downloads-dir', downloads] });
    assert.ok(server.adminKey && server.adminPassword, 'the first run prints the admin key and the admin password');
    api = new ApiClient({ server: server.url, apiKey: server.adminKey, serverThumbprint: server.thumbprint });

    const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
    const setUp = async (instance: string, name: string, role: string) => {
      await tentacle(['create-instance', '--instance', instance]);
      await tentacle(['new-certificate', '--instance', instance]);
      await tentacle(['register-with', '--instance', instance, '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
        '--server-comms-port', String(server.commsPort), '--environment', 'Test', '--role', role, '--name', name]);
      await startAgent(root, instance);
    };
    await Promise.all([setUp('Web1', 'web-1', 'web'), setUp('Doomed1', 'doomed-1', 'db')]);
    await waitFor('both tentacles to connect', async () => (await machine('web-1'))?.online && (await machine('doomed-1'))?.online);
    browser = await launching;
  });

  after(async () => {
    await browser?.close();
    await stopAll();
  });

  test('a failed sign-in is refused with a clear message and no session', async () => {
    const ctx = await newContext();
    const p = await ctx.newPage();
    await p.goto(`${server.url}/tasks`);
    assert.match(p.url(), /\/login\?next=%2Ftasks$/, 'a signed-out visitor is sent to sign in');
    await p.getByLabel('Username').fill('admin');
    await p.getByLabel('Password').fill('not-the-password');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('alert').filter({ hasText: 'Sign-in failed' }).waitFor();
    assert.match(p.url(), /\/login$/);
    assert.equal((await ctx.cookies()).find((c) => c.name === 'reef_session'), undefined);
    await shot(p, 'sign-in-refused');
    await ctx.close();
  });

  test('sign in, then the dashboard shows the connected Tentacle, its carrier, version and roles', async () => {
    context = await newContext();
    page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(server.adminPassword!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    // The page script turns times into ages once it has run: on a busy machine the heading comes first.
    await page.waitForLoadState('load');
    assert.equal(existsSync(join(serverData, 'initial-admin-credentials')), false, "admin's first sign-in deletes the first-run credentials file");
    const cookie = (await context.cookies()).find((c) => c.name === 'reef_session');
    assert.ok(cookie, 'signed in with a session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Strict');

    const row = page.locator('tr', { has: page.getByRole('link', { name: 'web-1' }) });
    const status = await row.locator('[data-field="status"]').innerText();
    assert.match(status, /Online/);
    const carrier = await row.locator('[data-field="carrier"]').innerText();
    assert.match(carrier, /tcp/);
    assert.match(carrier, new RegExp(`comms port ${server.commsPort}`));
    assert.match(await row.locator('[data-field="version"]').innerText(), /^\d+\.\d+\.\d+/);
    // Connected, and since when: not a stale "last seen".
    assert.match(await row.locator('[data-field="last-seen"]').innerText(), /^connected (just now|\d+ s ago|\d+ min ago)$/);
    assert.match(await row.innerText(), /web/);
    assert.match(await page.locator('#summary').innerText(), /2 machines: 2 online, 0 offline/);
    await shot(page, 'dashboard');

    // Narrow screen: no sideways scrolling, and the status still reads in words.
    await page.setViewportSize({ width: 380, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `the dashboard scrolls sideways by ${overflow} px on a narrow screen`);
    await shot(page, 'dashboard-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('run a script from the form and watch its log arrive live', async () => {
    await page.goto(`${server.url}/tasks/new`);
    await page.getByLabel('an environment and role').check();
    await page.locator('select[name="environment"]').selectOption('Test');
    await page.locator('input[name="role"]').fill('web');
    await page.getByLabel('Script body').fill('echo "first line <b>not bold</b>"; sleep 2; echo "second line"');
    await page.getByRole('button', { name: 'Run script' }).click();
    await page.waitForURL(/\/tasks\/T-\d+$/);

    const log = logOf(page, 'web-1');
    await log.getByText('first line <b>not bold</b>').waitFor();
    // The first line is on screen while the script still runs: it arrived live, not at the end.
    assert.doesNotMatch(await log.innerText(), /second line/);
    assert.match(await page.locator('#task-state').innerText(), /Running/);
    assert.equal(await log.locator('b').count(), 0, 'log text is shown as text, never as markup');

    await log.getByText('second line').waitFor();
    await page.locator('#task-state').getByText('Success').waitFor();
    const machineRow = page.locator('table.task-machines tr', { hasText: 'web-1' });
    await machineRow.locator('[data-field="state"]').getByText('Success').waitFor();
    assert.equal(await machineRow.locator('[data-field="exit-code"]').innerText(), '0');
    assert.equal(await page.locator('#stream-status').innerText(), 'Finished');
    await shot(page, 'task-live-log');
  });

  test('a long log shows its last 5,000 lines per machine and says how many earlier ones it leaves out', async () => {
    const task = await api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'run-script', target: { machines: ['web-1'] }, script: { body: 'seq 1 5100' } } });
    await page.goto(`${server.url}/tasks/${task.id}`);
    await page.locator('#stream-status').getByText('Finished').waitFor();
    const note = page.locator('section.log', { has: page.locator('h3', { hasText: 'web-1' }) }).locator('.log-hidden');
    await note.getByText(`100 earlier lines are not shown here; the whole log: reef tasks watch ${task.id}, or GET /api/tasks/${task.id}/log.`).waitFor();
    const shown = logOf(page, 'web-1').locator('.line');
    assert.equal(await shown.count(), 5000);
    assert.match(await shown.first().innerText(), /^101\s*$/);
    assert.match(await shown.last().innerText(), /^5100\s*$/);
  });

  test('cancel a long task from its page', async () => {
    await page.goto(`${server.url}/tasks/new?kind=run-script`);
    await page.getByLabel('chosen machines').check();
    await page.getByRole('checkbox', { name: 'web-1' }).check();
    await page.getByLabel('Script body').fill('echo started; sleep 300');
    await page.getByRole('button', { name: 'Run script' }).click();
    await page.waitForURL(/\/tasks\/T-\d+$/);
    const taskId = page.url().split('/').pop()!;
    await logOf(page, 'web-1').getByText('started').waitFor();

    await page.getByRole('button', { name: 'Cancel task' }).click();
    await page.locator('#task-state').getByText('Cancelled').waitFor({ timeout: 30_000 });
    await page.locator('table.task-machines [data-field="state"]').getByText('Cancelled').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel task' }).isVisible(), false);
    const task = await api.json<TaskView>('GET', `/api/tasks/${taskId}`);
    assert.equal(task.state, 'Cancelled');
    await shot(page, 'task-cancelled');

    await page.goto(`${server.url}/tasks?state=Cancelled`);
    assert.match(await page.locator('table.tasks').innerText(), new RegExp(taskId));
  });

  test('the machine page says since when it is connected and shows health details as a table', async () => {
    const task = await api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'health-check', target: { machines: ['web-1'] } } });
    await waitFor('the health check', async () => (await api.json<TaskView>('GET', `/api/tasks/${task.id}`)).state === 'Success');
    await page.goto(`${server.url}/machines/web-1`);
    await page.getByRole('heading', { name: 'web-1' }).waitFor();
    const facts = await page.locator('dl.facts').innerText();
    assert.match(facts, /Connected since\s+(just now|\d+ s ago|\d+ min ago)/);
    assert.doesNotMatch(facts, /Last seen/);
    const details = page.locator('td[data-label="Details"] table.kv').first();
    assert.match(await details.getByRole('rowheader', { name: 'Round trip' }).locator('xpath=following-sibling::td').innerText(), /^[\d.]+ ms$/);
    assert.match(await details.innerText(), /Host name\s+\S+/);
    assert.doesNotMatch(await page.locator('td[data-label="Details"]').first().innerText(), /[{}"]/, 'no raw JSON');
    await shot(page, 'machine-health');
  });

  test('remove a machine after confirming', async () => {
    await page.goto(`${server.url}/machines/doomed-1`);
    await page.getByRole('heading', { name: 'doomed-1' }).waitFor();
    assert.match(await page.locator('.thumbprint').innerText(), /^[0-9A-F]{64}$/);
    await page.getByRole('button', { name: 'Remove machine…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await shot(page, 'machine-remove-confirm');
    await dialog.getByRole('button', { name: 'Remove doomed-1' }).click();
    await page.waitForURL(/\/\?removed=doomed-1$/);
    await page.getByRole('status').filter({ hasText: 'doomed-1 was removed' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'doomed-1' }).count(), 0);
    assert.equal(await machine('doomed-1'), undefined);
    await shot(page, 'machine-removed');
  });

  test('the server nodes and API keys pages', async () => {
    await page.goto(`${server.url}/nodes`);
    assert.match(await page.locator('main').innerText(), new RegExp(server.thumbprint));
    assert.match(await page.locator('table.nodes').innerText(), /Online/);
    assert.match(await page.locator('tr[data-node] .connected-count').innerText(), /^1$/);
    await shot(page, 'nodes');

    await page.goto(`${server.url}/apikeys`);
    await page.getByLabel('Name for a new key').fill('ci-pipeline');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#new-key').waitFor();
    const key = await page.locator('#new-key-value').innerText();
    assert.match(key, /^API-[A-Z2-7]{32}$/);
    const viaKey = new ApiClient({ server: server.url, apiKey: key, serverThumbprint: server.thumbprint });
    assert.equal((await viaKey.json<{ nodeName: string }>('GET', '/api')).nodeName.length > 0, true);
    await shot(page, 'apikeys');
  });

  test('an admin makes a scoped viewer on the users page; the viewer sees only what it may and the server refuses the rest', async () => {
    await page.goto(`${server.url}/users`);
    await page.getByLabel('Username').fill('vera');
    await page.getByLabel('Role').selectOption('viewer');
    await page.getByRole('checkbox', { name: 'Test' }).check();
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.locator('#new-password').waitFor();
    const password = await page.locator('#new-password-value').innerText();
    assert.match(await page.locator('tr[data-username="vera"]').innerText(), /viewer\s+environment Test/);
    await shot(page, 'users');

    const ctx = await newContext();
    const vera = await ctx.newPage();
    await vera.goto(`${server.url}/login`);
    await vera.getByLabel('Username').fill('vera');
    await vera.getByLabel('Password').fill(password);
    await vera.getByRole('button', { name: 'Sign in' }).click();
    await vera.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const nav = await vera.getByRole('navigation', { name: 'Main' }).innerText();
    for (const hidden of ['New task', 'Server nodes', 'API keys', 'Users']) assert.ok(!nav.includes(hidden), `the menu offers ${hidden}: ${nav}`);
    assert.match(await vera.locator('main').innerText(), /web-1/);

    await vera.goto(`${server.url}/machines/web-1`);
    await vera.getByRole('heading', { name: 'web-1' }).waitFor();
    assert.equal(await vera.getByRole('button').filter({ hasText: /health check|Remove machine/ }).count(), 0, 'no buttons the viewer may not use');
    const { items } = await api.json<{ items: TaskView[] }>('GET', '/api/tasks?state=Success');
    await vera.goto(`${server.url}/tasks/${items[0]!.id}`);
    await vera.locator('#stream-status').getByText('Finished').waitFor();
    assert.equal(await vera.locator('#cancel').count(), 0);

    for (const [path, refusal] of [['/apikeys', 'may not list, create and revoke API keys'], ['/tasks/new', 'may not create and cancel tasks']] as const) {
      const answer = await vera.goto(`${server.url}${path}`);
      assert.equal(answer?.status(), 403, path);
      assert.match(await vera.getByRole('alert').innerText(), new RegExp(`User "vera" \\(role viewer, limited to environment Test\\) ${refusal}`));
    }
    await shot(vera, 'viewer-refused');
    // The page's own session and CSRF token cannot do it through the API either.
    const refused = await vera.evaluate(async () => {
      const csrf = document.querySelector('meta[name="reef-csrf"]')!.getAttribute('content')!;
      const res = await fetch('/api/tasks', { method: 'POST', headers: { 'content-type': 'application/json', 'x-reef-csrf': csrf }, body: JSON.stringify({ kind: 'health-check', target: { machines: ['web-1'] } }) });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'REEF_FORBIDDEN');

    await vera.goto(`${server.url}/account`);
    await vera.getByLabel('Current password').fill(password);
    await vera.getByLabel('New password').fill('veras own new password');
    await vera.getByRole('button', { name: 'Change password' }).click();
    await vera.locator('#password-changed').waitFor();
    await ctx.close();
  });

  test('every page passes the WCAG 2.x A and AA rules of axe-core', async () => {
    const axeSource = await readFile(join(REPO, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
    const { items } = await api.json<{ items: TaskView[] }>('GET', '/api/tasks?state=Success');
    const withLog = items.filter((task) => task.kind === 'run-script').at(-1); // the oldest: two lines of log
    assert.ok(withLog, 'a finished script task, with a log, from the tests above');
    const found: string[] = [];
    const check = async (target: Page, name: string) => {
      const { violations, passedRules } = await accessibilityViolations(target, axeSource);
      // A page checks 14 to 29 rules: none would mean the rule tags matched nothing.
      assert.ok(passedRules >= 10, `${name}: axe-core passed only ${passedRules} rules`);
      for (const violation of violations) found.push(`${name}: ${violation}`);
    };

    const signedOut = await newContext();
    const visitor = await signedOut.newPage();
    await visitor.goto(`${server.url}/login`);
    await check(visitor, 'sign-in');
    await visitor.getByLabel('Username').fill('admin');
    await visitor.getByLabel('Password').fill('not-the-password');
    await visitor.getByRole('button', { name: 'Sign in' }).click();
    await visitor.getByRole('alert').waitFor();
    await check(visitor, 'sign-in refused');
    await signedOut.close();

    const pages: [string, string, () => Promise<unknown>][] = [
      ['dashboard (machines)', '/', () => page.getByRole('heading', { name: 'Dashboard' }).waitFor()],
      ['machine with health details', '/machines/web-1', () => page.locator('td[data-label="Details"] table.kv').first().waitFor()],
      ['tasks', '/tasks', () => page.locator('table.tasks').waitFor()],
      ['task with a log', `/tasks/${withLog.id}`, () => page.locator('#stream-status').getByText('Finished').waitFor()],
      ['new task', '/tasks/new', () => page.getByLabel('Script body').waitFor()],
      ['server nodes', '/nodes', () => page.locator('table.nodes').waitFor()],
      ['API keys', '/apikeys', () => page.getByLabel('Name for a new key').waitFor()],
      ['audit log', '/audit', () => page.locator('table.audit').waitFor()],
      ['add machine', '/add-machine', () => page.getByLabel('How the Tentacle reaches the server').waitFor()],
      ['users', '/users', () => page.locator('table.users').waitFor()],
      ['account', '/account', () => page.getByLabel('Current password').waitFor()],
      ['downloads', '/downloads/', () => page.getByText('reef-tentacle-0.1.0-linux-x64').first().waitFor()],
      ['not found', '/no-such-page', () => page.getByRole('heading').first().waitFor()],
    ];
    for (const [name, path, loaded] of pages) {
      await page.goto(`${server.url}${path}`);
      await loaded();
      await check(page, name);
    }
    // States a page reaches by a click: a confirmation dialog, a new key shown once.
    await page.goto(`${server.url}/machines/web-1`);
    await page.getByRole('button', { name: 'Remove machine…' }).click();
    await page.getByRole('dialog').waitFor();
    await check(page, 'machine removal dialog');
    await page.goto(`${server.url}/apikeys`);
    await page.getByLabel('Name for a new key').fill('accessibility');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#new-key').waitFor();
    await check(page, 'API key created');
    await page.goto(`${server.url}/add-machine`);
    await page.getByRole('radio', { name: 'Worker' }).check();
    await page.getByLabel('Worker pool').fill('Builders');
    await page.getByLabel('How the Tentacle reaches the server').selectOption('websocket');
    await page.getByRole('button', { name: 'Make the install command' }).click();
    await page.locator('#install').waitFor();
    assert.match(await page.locator('#install-command').innerText(), /--kind 'worker' --carrier 'websocket' --comms-address 'wss:\/\/127\.0\.0\.1:\d+\/reef\/comms'/);
    await check(page, 'add machine: install line shown');
    assert.deepEqual(found, [], `accessibility violations:\n${found.join('\n')}`);
  });

  test('no page broke its Content-Security-Policy or threw', () => {
    assert.deepEqual(problems, []);
  });
});
