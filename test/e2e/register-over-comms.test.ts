/**
 * Registering behind a TLS-terminating proxy: a real nginx with its own certificate in front
 * of the portal and the WebSocket comms path. Registration over REST cannot pin the server
 * through it and says why, naming --over-comms; registration over the WebSocket carrier
 * (the inner TLS end to end, pinned to the server) succeeds for a target and a worker, and
 * the target then runs a script; a wrong API key gets the REST API's refusal either way.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient } from '../../src/api/client.js';
import type { MachineView, TaskView } from '../../src/api/contract.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { REGISTER_METHOD, registerOverComms, RpcClient } from '../../src/comms/index.js';
import { dialSecure } from '../../src/comms/dialer.js';
import { resolveLimits } from '../../src/comms/limits.js';
import type { ReefError } from '../../src/errors.js';
import { silentLogger } from '../../src/logging.js';
import { newCertificate } from '../../src/tentacle/certificate.js';
import { createInstance } from '../../src/tentacle/instances.js';
import { register, type RegisterOptions } from '../../src/tentacle/registration.js';
import { startTerminatingNginx, type TerminatingNginx } from '../support/nginx.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const PORTAL_NAME = 'reef.test';

describe('registering behind a TLS-terminating nginx', () => {
  let server: ServerProcess;
  let api: ApiClient;
  let apiKey: string;
  let root: string;
  let nginx: TerminatingNginx;
  let nginxThumbprint: string;
  let portal: string;
  let webSocket: string;
  let resolve: string[];

  const tentacle = (args: string[]) => cli('tentacle', args, { REEF_TENTACLE_ROOT: root });
  let spare: Promise<string> | undefined;
  /** One instance for the registrations that must fail (none of them changes it). */
  const failing = () => (spare ??= createInstance('failing', {}, root).then(async ({ config }) => (await newCertificate(config), 'failing')));
  /** A registration made in this process (what the CLI runs, without starting one per attempt); resolves with its error. */
  const refusal = async (options: Partial<RegisterOptions>): Promise<ReefError> => {
    const outcome = await register({
      instance: await failing(), root, kind: 'target', commsStyle: 'TentacleActive', environments: ['Behind'], roles: ['web'],
      server: portal, resolve: resolve.slice(1), apiKey, ...options,
    }).then(() => undefined, (err: ReefError) => err);
    assert.ok(outcome, 'the registration should have failed');
    return outcome;
  };
  async function instance(name: string): Promise<string> {
    await ok('tentacle', ['create-instance', '--instance', name], { REEF_TENTACLE_ROOT: root });
    await ok('tentacle', ['new-certificate', '--instance', name], { REEF_TENTACLE_ROOT: root });
    return name;
  }

  before(async () => {
    const httpsPort = await freePort();
    server = await startServer({ dataDir: await tempDir('regcomms'), httpsPort, commsPort: await freePort(), name: 'regcomms-server' });
    apiKey = server.adminKey!;
    api = new ApiClient({ server: server.url, apiKey, serverThumbprint: server.thumbprint });
    root = await tempDir('regcomms-tentacles');
    // The portal and the WebSocket path behind one nginx that terminates TLS with its own certificate.
    nginx = await startTerminatingNginx({ upstream: `https://127.0.0.1:${httpsPort}`, portal: true });
    nginxThumbprint = nginx.thumbprint;
    portal = `https://${PORTAL_NAME}:${nginx.port}`;
    webSocket = `wss://${PORTAL_NAME}:${nginx.port}/reef/comms`;
    resolve = ['--resolve', `${PORTAL_NAME}:${nginx.port}:127.0.0.1`];
  });

  after(async () => {
    await stopAll();
    await nginx?.stop();
  });

  test('over REST the pin fails at the proxy: nothing is sent, and the message explains the proxy and names --over-comms', async () => {
    const name = await failing();
    const result = await tentacle(['register-with', '--instance', name, '--server', portal, ...resolve, '--server-thumbprint', server.thumbprint,
      '--apiKey', apiKey, '--environment', 'Behind', '--role', 'web', '--server-web-socket', webSocket]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, new RegExp(`presented a certificate with thumbprint ${nginxThumbprint}, not ${server.thumbprint}`));
    assert.match(result.stderr, /proxy that terminates TLS/);
    assert.match(result.stderr, /nothing was sent \(the API key neither\)/);
    assert.match(result.stderr, /register over the comms carrier instead: add --over-comms/);
    // Never the advice to pin what the proxy (or an attacker) presented.
    assert.doesNotMatch(result.stderr, new RegExp(`--server-thumbprint ${nginxThumbprint}`));
    assert.doesNotMatch(result.stderr, new RegExp(`--trust ${nginxThumbprint}`));
    const { items } = await api.json<{ items: MachineView[] }>('GET', '/api/machines');
    assert.equal(items.length, 0);
  });

  test('over the WebSocket carrier through the same nginx a target registers, polls and runs a script', async () => {
    const name = await instance('web1');
    const id = await ok('tentacle', ['register-with', '--instance', name, '--server', portal, ...resolve, '--server-thumbprint', server.thumbprint,
      '--apiKey', apiKey, '--environment', 'Behind', '--role', 'web', '--name', 'web-1', '--server-web-socket', webSocket, '--over-comms'], { REEF_TENTACLE_ROOT: root });
    const machine = await api.json<MachineView>('GET', '/api/machines/web-1');
    assert.equal(machine.id, id);
    assert.equal(machine.kind, 'target');
    assert.deepEqual(machine.roles, ['web']);
    await startAgent(root, name);
    await waitFor('web-1 to poll over the WebSocket', async () =>
      (await api.json<MachineView>('GET', '/api/machines/web-1')).connections.some((c) => c.carrier === 'websocket'));
    const run = await cli('reef', ['tasks', 'run-script', '--machine', 'web-1', '--script', 'echo registered-behind-nginx', '--follow', '--json'], server.env(apiKey));
    assert.equal(run.code, 0, run.stderr);
    const last = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { task?: TaskView } & TaskView;
    const task = last.task ?? last;
    assert.equal(task.state, 'Success');
    assert.match(run.stdout, /registered-behind-nginx/);
  });

  test('a worker registers over the carrier too', async () => {
    const name = await instance('worker1');
    await ok('tentacle', ['register-worker', '--instance', name, '--server', portal, ...resolve, '--server-thumbprint', server.thumbprint,
      '--apiKey', apiKey, '--workerpool', 'Behind pool', '--name', 'worker-1', '--server-web-socket', webSocket, '--over-comms'], { REEF_TENTACLE_ROOT: root });
    const worker = await api.json<MachineView>('GET', '/api/machines/worker-1');
    assert.equal(worker.kind, 'worker');
    assert.deepEqual(worker.workerPools, ['Behind pool']);
  });

  test('a join token registers over the carrier into its scope, once', async () => {
    const token = (await ok('reef', ['tokens', 'create', '--environment', 'Behind', '--role', 'db'], server.env(apiKey))).trim();
    const name = await instance('token1');
    const register = (machine: string, instanceName: string) =>
      tentacle(['register-with', '--instance', instanceName, '--server', portal, ...resolve, '--server-thumbprint', server.thumbprint,
        '--token', token, '--name', machine, '--server-web-socket', webSocket, '--over-comms']);
    const first = await register('token-1', name);
    assert.equal(first.code, 0, first.stderr);
    const machine = await api.json<MachineView>('GET', '/api/machines/token-1');
    assert.deepEqual([machine.environments, machine.roles], [['Behind'], ['db']], 'the token chose the scope');
    const second = await register('token-2', await instance('token2'));
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /has been used for all 1 registration it allowed/);
  });

  test('a listening Tentacle registers over the comms port, and listens afterwards', async () => {
    const { config } = await createInstance('listener', {}, root);
    const { thumbprint } = await newCertificate(config);
    const result = await register({
      instance: 'listener', root, kind: 'target', commsStyle: 'TentaclePassive', publicHostName: 'listener.example', name: 'listener-1',
      environments: ['Behind'], roles: ['db'], server: server.url, apiKey, serverThumbprint: server.thumbprint, serverCommsPort: server.commsPort, overComms: true,
    });
    assert.equal(result.machine.commsStyle, 'listening');
    assert.equal(result.machine.thumbprint, thumbprint);
    assert.deepEqual(result.machine.endpoint, { host: 'listener.example', port: config.listen.port });
    assert.equal(result.config.listen.enabled, true);
    assert.deepEqual(result.config.servers, []);
    assert.ok(result.config.trust.includes(server.thumbprint as never));
  });

  test('a wrong API key over the carrier gets the same refusal as over REST', async () => {
    const before = (await api.json<{ items: MachineView[] }>('GET', '/api/machines')).items.length;
    const wrong = { apiKey: 'API-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', serverThumbprint: server.thumbprint };
    const overComms = await refusal({ ...wrong, serverWebSocket: webSocket, overComms: true });
    const overRest = await refusal({ ...wrong, server: server.url, resolve: [] });
    // Straight to the server's HTTPS port, routed to comms by ALPN, and to its comms port.
    const byAlpn = await refusal({ ...wrong, server: server.url, resolve: [], serverCommsAddress: server.url, overComms: true });
    const byCommsPort = await refusal({ ...wrong, server: server.url, resolve: [], serverCommsPort: server.commsPort, overComms: true });
    assert.equal(overRest.code, 'REEF_BAD_API_KEY');
    for (const other of [overComms, byAlpn, byCommsPort]) {
      assert.equal(other.code, overRest.code);
      assert.equal(other.message, overRest.message);
    }
    assert.match(overComms.message, /The API key is not valid.*Check --apiKey/);
    assert.equal((await api.json<{ items: MachineView[] }>('GET', '/api/machines')).items.length, before);
  });

  test('a carrier nginx does not forward is explained, and so is a server thumbprint that is not the one inside', async () => {
    const unforwarded = await refusal({ serverThumbprint: server.thumbprint, serverWebSocket: `wss://${PORTAL_NAME}:${nginx.port}/elsewhere`, overComms: true });
    assert.match(unforwarded.message, /^Could not register over the comms carrier wss:\/\/reef\.test:\d+\/elsewhere: .* instead of accepting a WebSocket/);
    assert.match(unforwarded.message, /forwards \/elsewhere to the server's HTTPS port as a WebSocket/);
    // The proxy's thumbprint given: the inner TLS shows the server's, and the message says what that means.
    const wrongPin = await refusal({ serverThumbprint: nginxThumbprint, serverWebSocket: webSocket, overComms: true });
    assert.equal(wrongPin.code, 'REEF_UNTRUSTED_CERTIFICATE');
    assert.match(wrongPin.message, new RegExp(`inside the comms carrier's own TLS has thumbprint ${server.thumbprint}, not ${nginxThumbprint}`));
    assert.match(wrongPin.message, /nothing was sent/);
    assert.match(wrongPin.message, /re-signs even the inner TLS/);
    const missingPin = await refusal({ serverWebSocket: webSocket, overComms: true });
    assert.match(missingPin.message, /--over-comms needs --server-thumbprint/);
  });

  test('an unregistered certificate reaches the one registration call and nothing else, and a plain dial of it is still refused', async () => {
    const stranger = await generateCertificate('stranger');
    const dial = (registering: boolean) => dialSecure({
      identity: stranger, host: '127.0.0.1', port: server.commsPort, expected: [server.thumbprint as never],
      explainMismatch: (tp) => `mismatch ${tp}`, carrier: 'tcp', handshakeTimeoutMs: 10_000, registering,
    });
    await assert.rejects(dial(false), (err: ReefError) => err.code === 'REEF_UNTRUSTED_CERTIFICATE' && /no registered machine has it/.test(err.message));
    const { socket, peer } = await dial(true);
    const client = new RpcClient(socket, peer, resolveLimits(), silentLogger);
    await assert.rejects(client.call('scripts.start', { scriptBody: 'id' }), (err: ReefError) => err.code === 'REEF_REGISTRATION_ONLY');
    await assert.rejects(client.call(REGISTER_METHOD, { apiKey, request: {} }));
    client.close();
    const { items } = await api.json<{ items: MachineView[] }>('GET', '/api/machines');
    assert.ok(!items.some((m) => m.thumbprint === stranger.thumbprint));
  });

  // Last: it leaves 127.0.0.1 blocked for a minute.
  test('wrong keys over comms and over REST count against one limit per address', async () => {
    const stranger = await generateCertificate('guesser');
    const guess = () => registerOverComms(
      { identity: stranger, target: { host: '127.0.0.1', port: server.commsPort, carrier: 'tcp' }, pinned: server.thumbprint as never, explainMismatch: (tp) => tp },
      { apiKey: 'API-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', request: {} },
    ).then(() => 'registered', (err: ReefError) => err.code);
    const codes: string[] = [];
    for (let i = 0; i < 25; i++) codes.push(await guess());
    assert.ok(codes.includes('REEF_BAD_API_KEY'), codes.join());
    assert.equal(codes.at(-1), 'REEF_RATE_LIMITED');
    // The REST API, from the same address, is now refused even with the right key.
    await assert.rejects(api.json('GET', '/api/machines'), (err: ReefError & { status?: number }) => err.status === 429);
  });
});
