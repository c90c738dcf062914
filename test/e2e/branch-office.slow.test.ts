/**
 * A branch office on a real network, as corporate ones are built: three hosts, each a
 * network namespace. The server runs `reef server run` with its HTTPS port on 443 (a
 * polling hostname routed there by SNI, and the WebSocket path) and its comms port 10943.
 * The proxy host runs Debian's squid with basic authentication, allowing CONNECT to 443
 * only (squid's default SSL_ports), and routes between the other two. The branch host's
 * nftables firewall drops all inbound traffic but replies, and lets out only TCP to the
 * proxy's port: its polling Tentacles reach the server through squid or not at all.
 *
 * Shown here: a Tentacle registers through squid (REST, `tentacle proxy`) and polls through
 * it on 443, by SNI and over a WebSocket (`tentacle polling-proxy`), and a script's output
 * reaches the server; polling the comms port through squid is refused, and the Tentacle's
 * log says most proxies allow only 443 and names the carriers that use it; a wrong proxy
 * password costs one attempt, logged as an error saying the next one is minutes away, with
 * no second attempt and no password in any message.
 *
 * Needs root, iproute2, nftables, squid and apache2-utils (skipped with the reason
 * otherwise). Every process runs inside the namespaces; they are removed after the file,
 * also when it fails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MachineView, TaskView } from '../../src/api/contract.js';
import { REEF_BIN, TENTACLE_BIN } from '../support/built.js';
import { netnsUnavailable, outboundOnlyTo, Topology, type Namespace } from '../support/netns.js';
import type { RunResult } from '../support/processes.js';
import { squidUnavailable, startSquid, type Squid } from '../support/squid.js';
import { startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const PREFIX = 'reefbranch';
const unavailable = netnsUnavailable(PREFIX) ?? squidUnavailable();

const POLLING_NAME = 'polling.reef.test';
const PORTAL_NAME = 'reef.test';
/** The branch's cable to the proxy host, and the proxy host's cable to the server. */
const PROXY_BRANCH_SIDE = '10.233.1.1';
const BRANCH_IP = '10.233.1.2';
const PROXY_SERVER_SIDE = '10.233.2.1';
const SERVER_IP = '10.233.2.2';
const PROXY_PORT = 3128;
const PROXY_USER = 'branch-office';
const PROXY_PASSWORD = 'Corp-Pa55word!';
const WRONG_PASSWORD = 'Not-The-Pa55word';
/** How long a refused proxy login is watched for a second attempt. */
const QUIET_MS = 5000;

interface LogLine {
  level: number;
  time: number;
  msg: string;
  retryInMs?: number;
}

/** The JSON objects among `text`'s lines (a line cut short by a timeout, or any other, is skipped). */
function jsonLines<T>(text: string): T[] {
  const parsed: T[] = [];
  for (const line of text.split('\n')) {
    try {
      if (line.startsWith('{')) parsed.push(JSON.parse(line) as T);
    } catch {
      // not JSON: the assertions show the whole text
    }
  }
  return parsed;
}

describe('a branch office: outbound only to an authenticating squid that allows CONNECT to 443', { skip: unavailable && `skipped: ${unavailable}` }, () => {
  let topology: Topology;
  let serverNs: Namespace;
  let branchNs: Namespace;
  let server: ServerProcess;
  let squid: Squid;
  let tentacleEnv: NodeJS.ProcessEnv;
  /** instance -> what its agent logged so far (JSON lines). */
  const agentLogs = new Map<string, () => string>();
  /** Everything the Tentacle CLI printed while enrolling: checked for passwords. */
  const printed: string[] = [];
  let directBeforeFirewall: RunResult;

  /** `tentacle ...` on the branch host. */
  async function tentacle(args: string[]): Promise<string> {
    const out = await branchNs.ok(process.execPath, [TENTACLE_BIN, ...args], { env: tentacleEnv, timeoutMs: 30_000 });
    printed.push(out);
    return out;
  }

  /** `reef ...` as an administrator on the server host. */
  const reef = (args: string[], timeoutMs = 30_000) =>
    serverNs.run(process.execPath, [REEF_BIN, ...args], { env: { ...process.env, ...server.env(server.adminKey!), REEF_LOG_LEVEL: 'warn' }, timeoutMs });

  /** An instance whose REST calls go through squid with the right password, and whose polling uses `pollingPassword`. */
  async function enrol(instance: string, name: string, pollingPassword: string, carrier: string[]): Promise<void> {
    await tentacle(['create-instance', '--instance', instance]);
    await tentacle(['new-certificate', '--instance', instance]);
    const proxy = ['--instance', instance, '--proxyEnable', 'true', '--proxyHost', PROXY_BRANCH_SIDE, '--proxyPort', String(PROXY_PORT), '--proxyUsername', PROXY_USER];
    await tentacle(['proxy', ...proxy, '--proxyPassword', PROXY_PASSWORD]);
    await tentacle(['polling-proxy', ...proxy, '--proxyPassword', pollingPassword]);
    await tentacle([
      'register-with', '--instance', instance, '--server', `https://${SERVER_IP}`, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
      '--environment', 'Branch', '--role', 'till', '--name', name, ...carrier,
    ]);
  }

  function startAgent(instance: string): void {
    const agent = branchNs.spawn(process.execPath, [TENTACLE_BIN, 'agent', '--instance', instance], { env: { ...tentacleEnv, REEF_LOG_LEVEL: 'info' } });
    let log = '';
    agent.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    agentLogs.set(instance, () => log);
  }

  const logLines = (instance: string) => jsonLines<LogLine>(agentLogs.get(instance)!());

  /** Waits (15 s at most) for a line of the instance's log; when none comes, fails with the whole log. */
  const logged = (instance: string, what: string, match: (line: LogLine) => boolean) =>
    waitFor(what, async () => logLines(instance).find(match), 15_000).catch((err: Error) => {
      throw new Error(`${err.message}; the agent logged:\n${agentLogs.get(instance)!()}`);
    });

  /** A plain HTTPS request from the branch host straight to the server's 443, bypassing squid. */
  const direct = () => branchNs.run('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `https://${SERVER_IP}/`], { timeoutMs: 10_000 });

  before(async () => {
    topology = Topology.create(PREFIX);
    serverNs = await topology.namespace('server');
    const proxyNs = await topology.namespace('proxy');
    branchNs = await topology.namespace('branch');
    await topology.link(proxyNs, `${PROXY_BRANCH_SIDE}/30`, branchNs, `${BRANCH_IP}/30`);
    await topology.link(proxyNs, `${PROXY_SERVER_SIDE}/30`, serverNs, `${SERVER_IP}/30`);
    // The proxy host is also the branch's router: only the firewall keeps the branch from the server.
    await proxyNs.forwardIpv4();
    await branchNs.routeVia(PROXY_BRANCH_SIDE);
    await serverNs.routeVia(PROXY_SERVER_SIDE);

    [server, squid] = await Promise.all([
      // Inside its namespace the server may take the standard ports.
      tempDir('branch-server').then((dataDir) =>
        startServer({
          dataDir,
          httpsPort: 443,
          commsPort: 10943,
          // A task for a Tentacle that never comes fails within the test's own bounds.
          pickupTimeoutSeconds: 30,
          name: 'branch-server',
          command: ['ip', 'netns', 'exec', serverNs.name, process.execPath, REEF_BIN],
          extraArgs: ['--host', '0.0.0.0', '--polling-hostname', POLLING_NAME],
        }),
      ),
      startSquid(proxyNs, { address: PROXY_BRANCH_SIDE, port: PROXY_PORT, users: { [PROXY_USER]: PROXY_PASSWORD } }),
    ]);
    assert.ok(server.adminKey, 'the first run prints an admin key');

    directBeforeFirewall = await direct();
    await branchNs.nft(outboundOnlyTo(PREFIX, PROXY_BRANCH_SIDE, PROXY_PORT));

    tentacleEnv = { ...process.env, REEF_TENTACLE_ROOT: await tempDir('branch-tentacles'), REEF_LOG_LEVEL: 'warn' };
    const on443 = (name: string) => ['--resolve', `${name}:443:${SERVER_IP}`];
    await Promise.all([
      enrol('Wrong', 'branch-wrong', WRONG_PASSWORD, ['--server-comms-address', `https://${POLLING_NAME}`, ...on443(POLLING_NAME)]),
      enrol('Sni', 'branch-sni', PROXY_PASSWORD, ['--server-comms-address', `https://${POLLING_NAME}`, ...on443(POLLING_NAME)]),
      enrol('Ws', 'branch-ws', PROXY_PASSWORD, ['--server-web-socket', `wss://${PORTAL_NAME}/reef/comms`, ...on443(PORTAL_NAME)]),
      enrol('Comms', 'branch-comms', PROXY_PASSWORD, ['--server-comms-port', '10943']),
    ]);
    // The wrong password first: its quiet window runs while the others work.
    for (const instance of ['Wrong', 'Sni', 'Ws', 'Comms']) startAgent(instance);
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await topology?.destroy();
    }
  });

  test('the branch host reaches the server only through squid: straight there works before its firewall, not after', async () => {
    // Any HTTP answer will do (the portal redirects to its sign-in page): the route works.
    assert.ok(directBeforeFirewall.code === 0 && /^[1-5]\d\d$/.test(directBeforeFirewall.stdout), `before the firewall: ${JSON.stringify(directBeforeFirewall)}`);
    const after = await direct();
    assert.ok(after.code !== 0 && after.stdout === '000', `the firewall lets only the proxy port out: ${JSON.stringify(after)}`);
  });

  test('registered through squid, polling through it on 443 by SNI and over a WebSocket: a script runs and its output reaches the server', async () => {
    const result = await reef(['tasks', 'run-script', '--machine', 'branch-sni', '--machine', 'branch-ws', '--script', 'echo "till $((6 * 7)) reporting"', '--follow', '--json'], 40_000);
    const lines = jsonLines<{ type: string; machineName?: string; text?: string; task?: TaskView }>(result.stdout);
    const task = lines.at(-1)?.task;
    assert.equal(task?.state, 'Success', `reef tasks run-script exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    for (const name of ['branch-sni', 'branch-ws']) {
      assert.ok(lines.some((line) => line.type === 'log' && line.machineName === name && line.text === 'till 42 reporting'), `${name} sent its line: ${result.stdout}`);
    }

    const listed = await reef(['machines', 'list', '--environment', 'Branch', '--json']);
    const machines = JSON.parse(listed.stdout) as MachineView[];
    const connection = (name: string) => machines.find((m) => m.name === name)?.connections[0];
    assert.equal(connection('branch-sni')?.carrier, 'sni+proxy');
    assert.equal(connection('branch-ws')?.carrier, 'websocket+proxy');
    // The server sees squid's side of the proxy host, never the branch.
    for (const name of ['branch-sni', 'branch-ws']) assert.match(connection(name)?.remoteAddress ?? '', new RegExp(`^(::ffff:)?${PROXY_SERVER_SIDE.replaceAll('.', '\\.')}\\b`));

    // Squid carried the registrations' REST calls, to 443 and logged in (it logs a tunnel
    // when it closes: the polling ones are still open).
    const tunnels = (await squid.accessLog()).filter((line) => line.result === 'TCP_TUNNEL/200');
    assert.ok(tunnels.length >= 4, `4 registrations through squid: ${JSON.stringify(tunnels)}`);
    assert.ok(tunnels.every((line) => line.method === 'CONNECT' && line.url === `${SERVER_IP}:443` && line.user === PROXY_USER), JSON.stringify(tunnels));
  });

  test('polling the comms port through squid: the CONNECT is refused, and the log says most proxies allow only 443 and names the 443 carriers', async () => {
    const refusal = await logged('Comms', 'the Tentacle polling 10943 to log the refusal', (line) => line.msg.includes('refused CONNECT'));
    assert.match(refusal.msg, new RegExp(`^comms: The HTTP proxy at ${PROXY_BRANCH_SIDE.replaceAll('.', '\\.')}:${PROXY_PORT} refused CONNECT ${SERVER_IP.replaceAll('.', '\\.')}:10943: HTTP/1\\.1 403 Forbidden\\.`));
    assert.match(refusal.msg, /Most proxies allow CONNECT only to port 443: poll through 443 instead, with --server-comms-address https:\/\/<server> .* or --server-web-socket wss:\/\/<server>\/reef\/comms/);
    const denied = (await squid.accessLog()).filter((line) => line.url === `${SERVER_IP}:10943`);
    assert.ok(denied.length >= 1 && denied.every((line) => line.result === 'TCP_DENIED/403'), JSON.stringify(denied));
  });

  test('a wrong proxy password: one attempt, an error saying the next is minutes away, no second attempt, no password in any message', async () => {
    const refused = (line: LogLine) => line.msg.includes('requires authentication');
    const first = await logged('Wrong', 'the Tentacle with the wrong password to log the refusal', refused);
    assert.equal(first.level, 50, 'logged as an error');
    assert.match(
      first.msg,
      new RegExp(
        `^comms: The HTTP proxy at ${PROXY_BRANCH_SIDE.replaceAll('.', '\\.')}:${PROXY_PORT} requires authentication \\(407 Proxy Authentication Required\\)\\. ` +
          `The proxy refused the username/password for user "${PROXY_USER}"; check them with tentacle polling-proxy\\. Next attempt in (\\d+) min`,
      ),
    );
    // Five minutes, and up to a fifth more so that a fleet sharing the account spreads out.
    assert.ok(first.retryInMs! >= 5 * 60_000 && first.retryInMs! <= 6 * 60_000, `retry in ${first.retryInMs} ms`);
    assert.equal(Number(/Next attempt in (\d+) min/.exec(first.msg)![1]), Math.round(first.retryInMs! / 60_000));

    const quietUntil = first.time + QUIET_MS;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, quietUntil - Date.now())));
    const attempts = (await squid.accessLog()).filter((line) => line.result === 'TCP_DENIED/407');
    assert.equal(attempts.length, 1, `one login attempt in ${QUIET_MS} ms: ${JSON.stringify(attempts)}`);
    assert.deepEqual(attempts[0], { result: 'TCP_DENIED/407', method: 'CONNECT', url: `${SERVER_IP}:443`, user: PROXY_USER });
    assert.equal(logLines('Wrong').filter(refused).length, 1);

    const listed = await reef(['machines', 'show', 'branch-wrong', '--json']);
    assert.equal((JSON.parse(listed.stdout) as MachineView).online, false);

    const said = [...agentLogs.values()].map((log) => log()).join('\n') + printed.join('\n');
    for (const password of [PROXY_PASSWORD, WRONG_PASSWORD]) assert.ok(!said.includes(password), 'no message shows a proxy password');
  });
});
