/**
 * "Add machine" end to end, as an administrator and a fresh machine would do it, on a real
 * network: two hosts, each a network namespace. The server host runs `reef server run` with
 * its HTTPS port on 443 and a downloads folder holding the single executable Tentacle built
 * here (`npm run package:tentacle`'s script). Chromium, started inside the server host,
 * signs in to the portal, fills in the Add machine page (a deployment target in Shop with
 * role till, polling over the HTTPS port) and reads the command line it shows. The machine
 * host's nftables firewall lets out only TCP to the server's port 443 (not the comms port,
 * nothing else), and drops everything inbound but replies.
 *
 * Shown here: that one line, run as root on the machine, downloads the Tentacle from the
 * server (key-pinned), installs it, registers it with the join token into the token's scope
 * and starts it supervised (no systemd here); the machine comes online on the HTTPS port and
 * runs a script; running the line again changes nothing (the token, good for one use, is not
 * used again) and still exits 0; with a newer Tentacle on the server, the line installs it
 * and restarts the service.
 *
 * Needs root, iproute2, nftables and Chromium (skipped with the reason otherwise). Every
 * process runs inside the namespaces, which are removed after the file, also when it fails.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, chmod, copyFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import type { JoinTokenView, MachineView, TaskView } from '../../src/api/contract.js';
import { buildExecutable } from '../package/build.js';
import { REEF_BIN } from '../support/built.js';
import { netnsUnavailable, outboundOnlyTo, Topology, type Namespace } from '../support/netns.js';
import type { RunResult } from '../support/processes.js';
import { startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const PREFIX = 'rft';
const CHROMIUM = '/usr/bin/chromium';
const unavailable = netnsUnavailable(PREFIX) ?? (existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`);

const SERVER_IP = '10.236.0.1';
const MACHINE_IP = '10.236.0.2';
const SERVER_URL = `https://${SERVER_IP}`;

describe('Add machine: the portal\'s install line on a machine that reaches only the server\'s HTTPS port', { skip: unavailable && `skipped: ${unavailable}` }, () => {
  let topology: Topology;
  let serverNs: Namespace;
  let machineNs: Namespace;
  let server: ServerProcess;
  let browser: Browser;
  let installLine: string;
  let machineEnv: NodeJS.ProcessEnv;
  let binDir: string;
  let first: RunResult;
  let downloads: string;

  /** `reef ...` as an administrator, on the server host. */
  const reef = async (args: string[], timeoutMs = 30_000): Promise<string> => {
    const result = await serverNs.run(process.execPath, [REEF_BIN, ...args], {
      env: { ...process.env, REEF_SERVER: SERVER_URL, REEF_API_KEY: server.adminKey!, REEF_SERVER_THUMBPRINT: server.thumbprint, REEF_LOG_LEVEL: 'warn' },
      timeoutMs,
    });
    assert.equal(result.code, 0, `reef ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    return result.stdout;
  };

  /** The pasted line, as root on the machine host. */
  const install = () => machineNs.run('sh', ['-c', installLine], { env: machineEnv, timeoutMs: 120_000 });

  before(async () => {
    topology = Topology.create(PREFIX);
    serverNs = await topology.namespace('server');
    machineNs = await topology.namespace('machine');
    await topology.link(serverNs, `${SERVER_IP}/30`, machineNs, `${MACHINE_IP}/30`);
    await machineNs.nft(outboundOnlyTo(PREFIX, SERVER_IP, 443));

    let work: string;
    let dataDir: string;
    [dataDir, downloads, work] = await Promise.all([tempDir('install-server'), tempDir('install-downloads'), tempDir('install-machine')]);
    [server] = await Promise.all([
      startServer({
        dataDir,
        httpsPort: 443,
        commsPort: 10943,
        name: 'install-server',
        command: ['ip', 'netns', 'exec', serverNs.name, process.execPath, REEF_BIN],
        extraArgs: ['--host', '0.0.0.0', '--downloads-dir', downloads],
      }),
      // Built into the downloads folder: it works under a dot name and renames the file into place.
      buildExecutable('x64', downloads),
    ]);
    assert.ok(server.adminPassword, 'the first run prints the admin password');
    assert.ok((await readdir(downloads)).some((n) => /^reef-tentacle-.+-linux-x64$/.test(n)), 'the Tentacle is in the downloads folder');

    // Chromium runs inside the server host, which is where an administrator's browser reaches the portal from.
    const wrapper = join(work, 'chromium-in-server-host');
    await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${serverNs.name} ${CHROMIUM} "$@"\n`);
    await chmod(wrapper, 0o755);
    browser = await chromium.launch({
      executablePath: wrapper,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });

    binDir = join(work, 'bin');
    machineEnv = {
      PATH: process.env.PATH,
      HOME: work,
      // Where `tentacle` and its instances go: this test's folders, not the host's /usr/local/bin and /etc.
      REEF_INSTALL_BIN_DIR: binDir,
      REEF_TENTACLE_ROOT: join(work, 'tentacle'),
      // No systemd here, so the Tentacle would choose supervised by itself; said outright so that
      // a host with systemd never gets a unit from a test.
      REEF_TENTACLE_SERVICE_MODE: 'supervised',
    };
  });

  after(async () => {
    try {
      await browser?.close();
      await stopAll();
    } finally {
      await topology?.destroy();
    }
  });

  test('the machine reaches the server\'s HTTPS port and nothing else', async () => {
    const portal = await machineNs.run('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `${SERVER_URL}/downloads/`], { timeoutMs: 10_000 });
    assert.equal(portal.stdout, '200', JSON.stringify(portal));
    const comms = await machineNs.run('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `https://${SERVER_IP}:10943/`], { timeoutMs: 10_000 });
    assert.ok(comms.code !== 0 && comms.stdout === '000', `the comms port is firewalled: ${JSON.stringify(comms)}`);
  });

  test('the Add machine page makes a join token and one line that installs, registers and starts a Tentacle', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    await page.goto(`${SERVER_URL}/add-machine`);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(server.adminPassword!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Add machine' }).waitFor();
    await page.getByLabel('Deployment target').check();
    await page.getByLabel('Environment').fill('Shop');
    await page.getByLabel('Role').fill('till');
    await page.getByLabel('How the Tentacle reaches the server').selectOption('https');
    await page.getByRole('button', { name: 'Make the install command' }).click();
    await page.getByRole('heading', { name: 'Run this as root on the machine' }).waitFor();
    installLine = (await page.locator('#install-command').innerText()).trim();
    await context.close();

    assert.match(installLine, /^curl --pinnedpubkey 'sha256\/\/[A-Za-z0-9+/=]+' --insecure -fsS 'https:\/\/10\.236\.0\.1\/downloads\/install-tentacle\.sh' \| REEF_JOIN_TOKEN='RJT-[A-Z2-7]{32}' sh -s -- /);
    assert.ok(installLine.includes(`--thumbprint '${server.thumbprint}' --kind 'target' --carrier 'https' --comms-address '${SERVER_URL}'`), installLine);
    const tokens = JSON.parse(await reef(['tokens', 'list', '--json'])) as JoinTokenView[];
    assert.deepEqual(tokens.map((t) => [t.environments, t.roles, t.usesLeft, t.createdBy]), [[['Shop'], ['till'], 1, 'user "admin"']]);

    first = await install();
    assert.equal(first.code, 0, `the install line exited ${first.code}\nstdout: ${first.stdout}\nstderr: ${first.stderr}`);
    assert.match(first.stderr, /downloading reef-tentacle-.+-linux-x64/);
    assert.match(first.stderr, /Registered ".+" with https:\/\/10\.236\.0\.1 as a deployment target \(environments Shop; roles till\)/);
    assert.ok(existsSync(join(binDir, 'tentacle')));

    const online = await waitFor('the new machine to come online on the HTTPS port', async () => {
      const machines = JSON.parse(await reef(['machines', 'list', '--environment', 'Shop', '--json'])) as MachineView[];
      return machines.length === 1 && machines[0]!.online ? machines[0] : undefined;
    }, 60_000);
    assert.deepEqual([online.kind, online.roles], ['target', ['till']]);
    assert.match(online.connections[0]?.carrier ?? '', /^alpn/, `polls the HTTPS port, routed by ALPN: ${JSON.stringify(online.connections)}`);
    assert.match(online.connections[0]?.remoteAddress ?? '', new RegExp(`^(::ffff:)?${MACHINE_IP.replaceAll('.', '\\.')}(:\\d+)?$`));
    const [token] = JSON.parse(await reef(['tokens', 'list', '--json'])) as JoinTokenView[];
    assert.deepEqual([token!.usesLeft, token!.state], [0, 'used-up']);

    const ran = await reef(['tasks', 'run-script', '--environment', 'Shop', '--role', 'till', '--script', 'echo "till $((6 * 7)) open"', '--follow', '--json'], 60_000);
    const lines = ran.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; text?: string; task?: TaskView });
    assert.equal(lines.at(-1)?.task?.state, 'Success', ran);
    assert.ok(lines.some((l) => l.type === 'log' && l.text === 'till 42 open'), ran);
  });

  test('running the line again is harmless: nothing downloaded or registered again, the service keeps running', async () => {
    assert.equal(first?.code, 0, 'the first run succeeded');
    const again = await install();
    assert.equal(again.code, 0, `the second run exited ${again.code}\nstdout: ${again.stdout}\nstderr: ${again.stderr}`);
    assert.match(again.stderr, /tentacle is already reef-tentacle-.+-linux-x64/);
    assert.match(again.stderr, /Instance "Tentacle" already exists with config file .*; nothing changed/);
    assert.match(again.stderr, /A certificate already exists; kept it/);
    assert.match(again.stderr, /is registered with https:\/\/10\.236\.0\.1 already; not registering again/);
    assert.match(again.stderr, /Already running/);
    const machines = JSON.parse(await reef(['machines', 'list', '--environment', 'Shop', '--json'])) as MachineView[];
    assert.equal(machines.length, 1);
    assert.ok(machines[0]!.online);
  });

  test('a newer Tentacle on the server: the line installs it and restarts the service', async () => {
    const [current] = (await readdir(downloads)).filter((n) => /^reef-tentacle-.+-linux-x64$/.test(n));
    // The same program one byte longer (an executable ignores what follows its sections), under a later version.
    const newer = 'reef-tentacle-99.0.0-linux-x64';
    await copyFile(join(downloads, current!), join(downloads, `.${newer}`));
    await appendFile(join(downloads, `.${newer}`), '\n');
    await rename(join(downloads, `.${newer}`), join(downloads, newer));
    const before = JSON.parse(await reef(['machines', 'list', '--environment', 'Shop', '--json'])) as MachineView[];
    const upgrade = await install();
    assert.equal(upgrade.code, 0, `the upgrade exited ${upgrade.code}\nstdout: ${upgrade.stdout}\nstderr: ${upgrade.stderr}`);
    assert.match(upgrade.stderr, new RegExp(`downloading ${newer}`));
    assert.match(upgrade.stderr, /not registering again/);
    assert.match(upgrade.stderr, /Stopped/i);
    await waitFor('the restarted Tentacle to connect again', async () => {
      const [machine] = JSON.parse(await reef(['machines', 'list', '--environment', 'Shop', '--json'])) as MachineView[];
      return machine?.online && machine.connectedSince !== before[0]!.connectedSince;
    }, 60_000);
  });
});
