/**
 * Reef behind a real HAProxy in TCP mode, the way docs/operations.md describes it: HAProxy
 * owns the public port, sends TLS with SNI polling.reef.test straight to the comms port and
 * everything else to Reef's HTTPS port with a PROXY protocol v2 header (Reef runs with
 * --proxy-protocol), where Reef's own front door routes ALPN `reef-comms` to comms and the
 * rest to the portal. TLS is never terminated by HAProxy, so pinning stays end to end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ApiClient } from '../../src/api/client.js';
import type { MachineView, TaskView } from '../../src/api/contract.js';
import { startHaproxy } from '../support/haproxy.js';
import type { Daemon } from '../support/tinyproxy.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const run = promisify(execFile);
const POLLING_NAME = 'polling.reef.test';
const PORTAL_NAME = 'reef.test';

describe('Reef behind HAProxy (req.ssl_sni, send-proxy-v2)', () => {
  let server: ServerProcess;
  let haproxy: Daemon;
  let api: ApiClient;
  let apiKey: string;
  /** The portal as clients see it: through HAProxy (the HTTPS port itself wants a PROXY header). */
  let publicUrl: string;
  let root: string;
  const expected = new Map<string, string>([
    ['haproxy-sni-1', 'tcp'],
    ['haproxy-alpn-1', 'alpn'],
  ]);

  before(async () => {
    const httpsPort = await freePort();
    const commsPort = await freePort();
    server = await startServer({
      dataDir: await tempDir('haproxy'),
      httpsPort,
      commsPort,
      name: 'server-haproxy',
      extraArgs: ['--polling-hostname', POLLING_NAME, '--proxy-protocol'],
    });
    apiKey = server.adminKey!;
    haproxy = await startHaproxy({
      config: ({ ports }) => `frontend reef_443
  bind 127.0.0.1:${ports[0]}
  option logasap
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
  use_backend reef_comms if { req.ssl_sni -i ${POLLING_NAME} }
  default_backend reef_https

backend reef_comms
  server reef 127.0.0.1:${commsPort}

backend reef_https
  server reef 127.0.0.1:${httpsPort} send-proxy-v2
`,
    });
    const H = haproxy.port;
    publicUrl = `https://127.0.0.1:${H}`;
    api = new ApiClient({ server: publicUrl, apiKey, serverThumbprint: server.thumbprint });
    root = await tempDir('haproxy-tentacles');
    const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
    const resolve = (name: string) => ['--resolve', `${name}:${H}:127.0.0.1`];
    const carriers: Record<string, string[]> = {
      'haproxy-sni-1': ['--server-comms-address', `https://${POLLING_NAME}:${H}`, ...resolve(POLLING_NAME)],
      'haproxy-alpn-1': ['--server-comms-address', `https://${PORTAL_NAME}:${H}`, ...resolve(PORTAL_NAME)],
    };
    await Promise.all(
      Object.entries(carriers).map(async ([name, carrierArgs]) => {
        const instance = name.replace(/[^A-Za-z0-9]/g, '');
        await tentacle(['create-instance', '--instance', instance]);
        await tentacle(['new-certificate', '--instance', instance]);
        // Registration's REST calls go through HAProxy too (default backend, PROXY v2).
        await tentacle(['register-with', '--instance', instance, '--server', publicUrl, '--server-thumbprint', server.thumbprint, '--apiKey', apiKey,
          '--environment', 'HAProxy', '--role', 'all', '--name', name, ...carrierArgs]);
        await startAgent(root, instance);
      }),
    );
  });

  after(async () => {
    await stopAll();
    await haproxy?.stop();
  });

  test('both tentacles connect through HAProxy: by SNI to the comms port, by ALPN through the front door', async () => {
    let seen = '';
    const machines = await waitFor('both tentacles to connect through HAProxy', async () => {
      const { items } = await api.json<{ items: MachineView[] }>('GET', '/api/machines?environment=HAProxy');
      seen = items.map((m) => `${m.name}=${m.connections.map((c) => `${c.carrier}@${c.remoteAddress}`).join('|') || 'offline'}`).join(', ');
      const ready = [...expected].every(([name, carrier]) => items.find((m) => m.name === name)?.connections.some((c) => c.carrier === carrier));
      return ready ? items : undefined;
    }, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; the server reports: ${seen}\nHAProxy:\n${haproxy.output()}`);
    });
    for (const [name, carrier] of expected) {
      assert.equal(machines.find((m) => m.name === name)!.connections[0]!.carrier, carrier, name);
    }
    assert.match(haproxy.output(), / reef_443 reef_comms\//, 'HAProxy routed a connection by SNI to the comms backend');
  });

  test('the front door takes the client address from the PROXY v2 header', async () => {
    const alpn = (await api.json<MachineView>('GET', '/api/machines/haproxy-alpn-1')).connections[0];
    assert.ok(alpn, 'the ALPN tentacle is connected');
    const match = /^127\.0\.0\.1:(\d+)$/.exec(alpn.remoteAddress);
    assert.ok(match, `remoteAddress is the announced 127.0.0.1:<port>, not "${alpn.remoteAddress}"`);
    // HAProxy logs each accepted client as ip:port (option logasap); the port Reef shows is
    // the tentacle's own, as HAProxy announced it, not HAProxy's outgoing connection's port.
    const clientPorts = [...haproxy.output().matchAll(/127\.0\.0\.1:(\d+) \[[^\]]*\] reef_443 reef_https\//g)].map((m) => m[1]);
    assert.ok(clientPorts.includes(match[1]), `port ${match[1]} is one of HAProxy's logged clients: ${clientPorts.join(', ')}\n${haproxy.output()}`);
  });

  test('a script task runs on both tentacles', async () => {
    const env = { REEF_SERVER: publicUrl, REEF_API_KEY: apiKey, REEF_SERVER_THUMBPRINT: server.thumbprint };
    const result = await cli('reef', ['tasks', 'run-script', '--environment', 'HAProxy', '--role', 'all', '--script', 'echo "alive behind haproxy"', '--follow', '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const final = events.at(-1) as unknown as { task?: TaskView } & TaskView;
    const task = final.task ?? final;
    assert.equal(task.state, 'Success');
    assert.deepEqual(task.machines.map((m) => m.machineName).sort(), [...expected.keys()].sort());
    assert.ok(task.machines.every((m) => m.state === 'Success' && m.exitCode === 0));
  });

  test('the portal answers through HAProxy; the HTTPS port refuses connections without a PROXY header', async () => {
    const through = await run('curl', ['-k', '-sS', '--max-time', '10', `https://127.0.0.1:${haproxy.port}/api/ping`]);
    assert.match(through.stdout, /"ok":true/);
    await assert.rejects(run('curl', ['-k', '-sS', '--max-time', '10', `https://127.0.0.1:${server.httpsPort}/api/ping`]), 'no PROXY header: refused');
  });
});
