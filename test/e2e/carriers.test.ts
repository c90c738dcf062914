/**
 * A mixed fleet on one server: Tentacles reach it on the comms port, on the HTTPS port by
 * SNI and by ALPN, over a WebSocket, listening, through a real nginx `stream` routing by
 * SNI, over a WebSocket through a real nginx that terminates the outer TLS with its own
 * certificate, and through real tinyproxy (with and without basic auth). One script task
 * runs on all of them, and the API shows each machine's carrier.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ApiClient } from '../../src/api/client.js';
import type { MachineView, TaskView } from '../../src/api/contract.js';
import { startNginx, startTerminatingNginx } from '../support/nginx.js';
import { startTinyproxy } from '../support/tinyproxy.js';
import type { Daemon } from '../support/tinyproxy.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const run = promisify(execFile);
const POLLING_NAME = 'polling.reef.test';
const PORTAL_NAME = 'reef.test';

describe('one server, every carrier at once', () => {
  let server: ServerProcess;
  let api: ApiClient;
  let apiKey: string;
  let root: string;
  const daemons: Daemon[] = [];
  /** machine name -> the carrier the server should report. */
  const expected = new Map<string, string>();

  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });

  async function enrol(name: string, carrierArgs: string[], extra: (instance: string) => Promise<void> = async () => {}) {
    const instance = name.replace(/[^A-Za-z0-9]/g, '');
    await tentacle(['create-instance', '--instance', instance]);
    await tentacle(['new-certificate', '--instance', instance]);
    await extra(instance);
    await tentacle(['register-with', '--instance', instance, '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', apiKey,
      '--environment', 'Fleet', '--role', 'all', '--name', name, ...carrierArgs]);
    await startAgent(root, instance);
  }

  before(async () => {
    const httpsPort = await freePort();
    const commsPort = await freePort();
    server = await startServer({ dataDir: await tempDir('carriers'), httpsPort, commsPort, extraArgs: ['--polling-hostname', POLLING_NAME] });
    apiKey = server.adminKey!;
    api = new ApiClient({ server: server.url, apiKey, serverThumbprint: server.thumbprint });
    root = await tempDir('carrier-tentacles');
    const H = httpsPort;
    const resolve = (name: string, port: number) => ['--resolve', `${name}:${port}:127.0.0.1`];

    const plainProxy = await startTinyproxy();
    const authProxy = await startTinyproxy({ basicAuth: { username: 'reef', password: 's3cret' } });
    // nginx stream in front: SNI polling.reef.test goes straight to the comms port, the rest to the portal.
    const sniRouter = await startNginx({
      stream: true,
      config: ({ ports }) => `stream {
  map $ssl_preread_server_name $reef_upstream {
    ${POLLING_NAME} 127.0.0.1:${commsPort};
    default 127.0.0.1:${H};
  }
  server { listen 127.0.0.1:${ports[0]}; ssl_preread on; proxy_pass $reef_upstream; }
}`,
    });
    // nginx terminating the outer TLS with its own certificate, proxying the WebSocket path.
    const terminator = await startTerminatingNginx({ upstream: `https://127.0.0.1:${H}` });
    daemons.push(plainProxy, authProxy, sniRouter, terminator);
    const useProxy = (proxy: Daemon, auth?: string[]) => async (instance: string) => {
      await tentacle(['polling-proxy', '--instance', instance, '--proxyEnable', 'true', '--proxyHost', '127.0.0.1', '--proxyPort', String(proxy.port), ...(auth ?? [])]);
    };
    const auth = ['--proxyUsername', 'reef', '--proxyPassword', 's3cret'];
    const listenPort = await freePort();

    const fleet: Array<[string, string, string[], ((instance: string) => Promise<void>)?]> = [
      ['tcp-1', 'tcp', ['--server-comms-port', String(commsPort)]],
      ['sni-1', 'sni', ['--server-comms-address', `https://${POLLING_NAME}:${H}`, ...resolve(POLLING_NAME, H)]],
      ['alpn-1', 'alpn', ['--server-comms-address', `https://${PORTAL_NAME}:${H}`, ...resolve(PORTAL_NAME, H)]],
      ['ws-1', 'websocket', ['--server-web-socket', `wss://${PORTAL_NAME}:${H}/reef/comms`, ...resolve(PORTAL_NAME, H)]],
      ['nginx-sni-1', 'tcp', ['--server-comms-address', `https://${POLLING_NAME}:${sniRouter.port}`, ...resolve(POLLING_NAME, sniRouter.port)]],
      ['nginx-ws-1', 'websocket', ['--server-web-socket', `wss://${PORTAL_NAME}:${terminator.port}/reef/comms`, ...resolve(PORTAL_NAME, terminator.port)]],
      ['proxy-tcp-1', 'tcp+proxy', ['--server-comms-port', String(commsPort)], useProxy(plainProxy)],
      ['proxy-sni-1', 'sni+proxy', ['--server-comms-address', `https://${POLLING_NAME}:${H}`, ...resolve(POLLING_NAME, H)], useProxy(authProxy, auth)],
      ['proxy-alpn-1', 'alpn+proxy', ['--server-comms-address', `https://${PORTAL_NAME}:${H}`, ...resolve(PORTAL_NAME, H)], useProxy(plainProxy)],
      ['proxy-ws-1', 'websocket+proxy', ['--server-web-socket', `wss://${PORTAL_NAME}:${H}/reef/comms`, ...resolve(PORTAL_NAME, H)], useProxy(authProxy, auth)],
      ['listen-1', 'listening', ['--comms-style', 'TentaclePassive', '--publicHostName', '127.0.0.1'], async (instance) => {
        await tentacle(['configure', '--instance', instance, '--port', String(listenPort), '--listenIpAddress', '127.0.0.1']);
      }],
    ];
    // Enrol a few at a time: each step is a CLI process, and the machine has two cores.
    for (let i = 0; i < fleet.length; i += 4) {
      await Promise.all(fleet.slice(i, i + 4).map(([name, carrier, args, extra]) => {
        expected.set(name, carrier);
        return enrol(name, args, extra);
      }));
    }
  });

  after(async () => {
    await stopAll();
    await Promise.all(daemons.map((d) => d.stop()));
  });

  test('every polling carrier connects and the API reports how', async () => {
    const polling = [...expected].filter(([, carrier]) => carrier !== 'listening');
    let seen = '';
    const machines = await waitFor('every polling tentacle to connect with its full carrier', async () => {
      const { items } = await api.json<{ items: MachineView[] }>('GET', '/api/machines?environment=Fleet');
      seen = items.map((m) => `${m.name}=${m.connections.map((c) => c.carrier).join('|') || 'offline'}`).join(', ');
      const ready = polling.every(([name, carrier]) => items.find((m) => m.name === name)?.connections.some((c) => c.carrier === carrier));
      return ready ? items : undefined;
    }, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}; the server reports: ${seen}`);
    });
    for (const [name, carrier] of polling) {
      assert.equal(machines.find((m) => m.name === name)!.connections[0]!.carrier, carrier, name);
    }
    const listed = await cli('reef', ['machines', 'list', '--environment', 'Fleet'], server.env(apiKey));
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /websocket\+proxy/);
  });

  test('one script task runs on the whole mixed fleet', async () => {
    const result = await cli('reef', ['tasks', 'run-script', '--environment', 'Fleet', '--role', 'all', '--script', 'echo "alive on $(hostname)"', '--follow', '--json'], server.env(apiKey));
    assert.equal(result.code, 0, result.stderr);
    const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const final = events.at(-1) as unknown as { task?: TaskView } & TaskView;
    const task = final.task ?? final;
    assert.equal(task.state, 'Success');
    assert.deepEqual(task.machines.map((m) => m.machineName).sort(), [...expected.keys()].sort());
    assert.ok(task.machines.every((m) => m.state === 'Success' && m.exitCode === 0));
    const listening = (await api.json<MachineView>('GET', '/api/machines/listen-1')).connections[0];
    assert.equal(listening?.carrier, 'listening');
  });

  test('curl gets the friendly page on the polling hostname and the WebSocket path; nginx still serves the portal', async () => {
    const H = server.httpsPort;
    const onPolling = await run('curl', ['-k', '-sS', '--max-time', '10', '--resolve', `${POLLING_NAME}:${H}:127.0.0.1`, `https://${POLLING_NAME}:${H}/`]);
    assert.match(onPolling.stdout, /Reef comms listener/);
    const onPath = await run('curl', ['-k', '-sS', '--max-time', '10', `https://127.0.0.1:${H}/reef/comms`]);
    assert.match(onPath.stdout, /Reef comms listener/);
    const throughNginx = await run('curl', ['-k', '-sS', '--max-time', '10', `https://127.0.0.1:${daemons[2]!.port}/api/ping`]);
    assert.match(throughNginx.stdout, /"ok":true/);
  });
});
