import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { API_KEY_HEADER, RegisterMachineRequest, type MachineView, type RegisterMachineResponse, type ServerInfo } from '../../src/api/contract.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { newCertificate } from '../../src/tentacle/certificate.js';
import { loadConfig } from '../../src/tentacle/config.js';
import { createInstance } from '../../src/tentacle/instances.js';
import { tentacleCli, type TentacleCli } from '../cli/tentacle-cli.js';

/**
 * Registration through the real CLI against a small HTTPS stand-in for the Reef API
 * (self-signed portal certificate, routes per src/api/contract.ts). It records every
 * request, so tests can tell what was sent, and what was not.
 */

const API_KEY = 'API-TESTKEY';

interface Recorded {
  method: string;
  url: string;
  apiKey: string | undefined;
  body: unknown;
}

interface FakeApi {
  url: string;
  portal: CertificateIdentity;
  comms: CertificateIdentity;
  requests: Recorded[];
  machines: Map<string, MachineView>;
  close(): Promise<void>;
}

async function startFakeApi(): Promise<FakeApi> {
  const [portal, comms] = await Promise.all([generateCertificate('Reef Portal'), generateCertificate('Reef Comms')]);
  const requests: Recorded[] = [];
  const machines = new Map<string, MachineView>(); // by thumbprint
  const info: ServerInfo = { product: 'Reef', version: '0.1.0', nodeName: 'node-a', commsThumbprint: comms.thumbprint, commsPort: 10999 };

  const server = https.createServer({ cert: portal.certPem, key: portal.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = text ? JSON.parse(text) : undefined;
      const apiKey = req.headers[API_KEY_HEADER] as string | undefined;
      requests.push({ method: req.method ?? '', url: req.url ?? '', apiKey, body });
      const send = (status: number, value?: unknown) => {
        res.writeHead(status, value === undefined ? {} : { 'content-type': 'application/json' });
        res.end(value === undefined ? undefined : JSON.stringify(value));
      };
      const fail = (status: number, code: string, message: string) => send(status, { error: { code, message } });
      if (apiKey !== API_KEY) return fail(401, 'REEF_UNAUTHORIZED', 'The API key is missing or not valid.');

      if (req.method === 'GET' && req.url === '/api') return send(200, info);
      if (req.method === 'POST' && req.url === '/api/machines') {
        const parsed = RegisterMachineRequest.safeParse(body);
        if (!parsed.success) return fail(400, 'REEF_INVALID_REQUEST', parsed.error.message);
        const r = parsed.data;
        const clash = [...machines.values()].find((m) => m.name === r.name || m.thumbprint === r.thumbprint);
        if (clash && !r.force) return fail(409, 'REEF_MACHINE_EXISTS', `A machine named "${clash.name}" is already registered.`);
        if (clash) machines.delete(clash.thumbprint);
        const machine: MachineView = {
          id: `Machines-${machines.size + 1}`,
          name: r.name,
          kind: r.kind,
          thumbprint: r.thumbprint,
          nextThumbprint: null,
          commsStyle: r.commsStyle,
          endpoint: r.endpoint ?? null,
          environments: r.environments ?? [],
          roles: r.roles ?? [],
          workerPools: r.workerPools ?? [],
          carrier: null,
          tentacleVersion: r.tentacleVersion ?? null,
          lastSeenAt: null,
          lastHealth: 'unknown',
          lastHealthAt: null,
          createdAt: new Date().toISOString(),
          connections: [],
          nodes: [],
          online: false,
          connectedSince: null,
        };
        machines.set(r.thumbprint, machine);
        return send(clash ? 200 : 201, { machine, created: !clash, server: info } satisfies RegisterMachineResponse);
      }
      const byThumbprint = /^\/api\/machines\/by-thumbprint\/([0-9A-F]{64})$/.exec(req.url ?? '');
      if (req.method === 'DELETE' && byThumbprint) {
        if (!machines.delete(byThumbprint[1]!)) return fail(404, 'REEF_NOT_FOUND', 'No machine has that thumbprint.');
        return send(204);
      }
      return fail(404, 'REEF_NOT_FOUND', `No route ${req.method} ${req.url}.`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    portal,
    comms,
    requests,
    machines,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('tentacle register-with / register-worker / poll-server / deregister-from', () => {
  let api: FakeApi;
  let cli: TentacleCli;
  let tentacleTp: string;
  let server: string[];

  before(async () => {
    [api, cli] = await Promise.all([startFakeApi(), tentacleCli()]);
    server = ['--server', api.url, '--server-thumbprint', api.portal.thumbprint];
    const { config } = await createInstance('Tentacle', {}, cli.root);
    tentacleTp = (await newCertificate(config)).thumbprint;
    await createInstance('Worker', {}, cli.root).then((r) => newCertificate(r.config));
    await createInstance('NoCert', {}, cli.root);
  });

  after(async () => {
    await api.close();
    await cli.close();
  });

  test('a self-signed portal without --server-thumbprint is refused with advice, and nothing is sent', async () => {
    const result = await cli.run(['register-with', '--server', api.url, '--apiKey', API_KEY, '--environment', 'Prod', '--role', 'web']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*self-signed certificate with thumbprint [0-9A-F]{64}.*--server-thumbprint/m);
    assert.match(result.stderr, /reef server show-thumbprint/);
    assert.ok(result.stderr.includes(api.portal.thumbprint));
    assert.equal(api.requests.length, 0);
  });

  test('a --server-thumbprint that does not match is refused before the API key is sent', async () => {
    const wrong = api.comms.thumbprint;
    const result = await cli.run(['register-with', '--server', api.url, '--server-thumbprint', wrong, '--api-key', API_KEY, '--environment', 'Prod', '--role', 'web']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`error: The portal at .* presented a certificate with thumbprint [0-9A-F]{64}, not ${wrong} as given with --server-thumbprint; nothing was sent`));
    // A TLS-terminating proxy is one explanation, interception the other; the way out names --over-comms, never the presented certificate.
    assert.match(result.stderr, /a proxy that terminates TLS .* or something is intercepting the connection/);
    assert.match(result.stderr, /add --over-comms/);
    assert.equal(api.requests.length, 0, 'the API key never left');
  });

  test('register-with (polling) sends the registration and trusts and polls the server', async () => {
    const result = await cli.ok([
      'register-with', ...server, '--apiKey', API_KEY,
      '--environment', 'Prod', '--environment', 'Staging', '--role', 'web', '--name', 'web-01',
    ]);
    assert.equal(result.stdout, 'Machines-1\n');
    assert.match(result.stderr, /Registered "web-01" .* polling tcp:\/\/127\.0\.0\.1:10999/);
    const request = api.requests.at(-1)!;
    assert.equal(request.method, 'POST');
    assert.equal(request.url, '/api/machines');
    assert.equal(request.apiKey, API_KEY);
    const body = request.body as Record<string, unknown>;
    assert.deepEqual({ ...body, tentacleVersion: typeof body.tentacleVersion }, {
      name: 'web-01',
      kind: 'target',
      thumbprint: tentacleTp,
      commsStyle: 'polling',
      endpoint: null,
      environments: ['Prod', 'Staging'],
      roles: ['web'],
      tentacleVersion: 'string',
      force: false,
    });

    const config = await loadConfig('Tentacle', cli.root);
    assert.deepEqual(config.trust, [api.comms.thumbprint]);
    assert.deepEqual(config.servers, [{ thumbprint: api.comms.thumbprint, address: 'tcp://127.0.0.1:10999', apiUrl: api.url }]);
    assert.deepEqual(config.registration, { serverUrl: api.url, machineName: 'web-01', kind: 'target', apiThumbprint: api.portal.thumbprint });
    assert.equal(config.listen.enabled, false);
  });

  test('registering again is refused (409) unless --force, which replaces the entry', async () => {
    const args = ['register-with', ...server, '--apiKey', API_KEY, '--environment', 'Prod', '--role', 'web', '--name', 'web-01', '--server-comms-port', '10943'];
    const refused = await cli.run(args);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: A machine named "web-01" is already registered\. Pass --force to replace the existing registration\.$/m);
    assert.equal(refused.stdout, '');

    await cli.ok([...args, '--force']);
    assert.equal((api.requests.at(-1)!.body as { force: boolean }).force, true);
    const config = await loadConfig('Tentacle', cli.root);
    // An explicit --server-comms-port wins over the port the server reports; the old entry stays (another address).
    assert.deepEqual(config.servers.map((s) => s.address), ['tcp://127.0.0.1:10999', 'tcp://127.0.0.1:10943']);
    assert.deepEqual(config.trust, [api.comms.thumbprint], 'trusted once');
  });

  test('register-worker as a listening Tentacle sends its endpoint and turns listening on', async () => {
    await cli.ok([
      'register-worker', ...server, '--apiKey', API_KEY, '--instance', 'Worker',
      '--comms-style', 'TentaclePassive', '--workerpool', 'Linux', '--worker-pool', 'Default', '--publicHostName', 'worker.example.com',
    ]);
    const body = api.requests.at(-1)!.body as Record<string, unknown>;
    assert.equal(body.kind, 'worker');
    assert.equal(body.commsStyle, 'listening');
    assert.equal(body.name, hostname());
    assert.deepEqual(body.endpoint, { host: 'worker.example.com', port: 10933 });
    assert.deepEqual(body.workerPools, ['Linux', 'Default']);
    assert.equal(body.environments, undefined);
    const config = await loadConfig('Worker', cli.root);
    assert.equal(config.listen.enabled, true);
    assert.deepEqual(config.servers, []);
    assert.deepEqual(config.trust, [api.comms.thumbprint]);
  });

  test('clear errors: no certificate, missing --environment, bad --comms-style', async () => {
    const noCert = await cli.run(['register-with', ...server, '--apiKey', API_KEY, '--instance', 'NoCert', '--environment', 'Prod', '--role', 'web']);
    assert.equal(noCert.code, 1);
    assert.match(noCert.stderr, /new-certificate --instance NoCert/);
    const missing = await cli.run(['register-with', ...server, '--apiKey', API_KEY, '--role', 'web']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /required option '--environment <name>' not specified/);
    const style = await cli.run(['register-worker', ...server, '--apiKey', API_KEY, '--workerpool', 'x', '--comms-style', 'Sideways']);
    assert.equal(style.code, 1);
    assert.match(style.stderr, /--comms-style must be TentacleActive \(polling\) or TentaclePassive \(listening\)/);
  });

  test('poll-server adds a server node to poll from GET /api, without registering', async () => {
    const before = api.requests.length;
    const result = await cli.ok(['poll-server', ...server, '--apiKey', API_KEY, '--instance', 'Worker', '--server-comms-port', '11000']);
    assert.equal(result.stdout, '');
    assert.deepEqual(api.requests.slice(before).map((r) => `${r.method} ${r.url}`), ['GET /api']);
    const config = await loadConfig('Worker', cli.root);
    assert.deepEqual(config.servers, [{ thumbprint: api.comms.thumbprint, address: 'tcp://127.0.0.1:11000', apiUrl: api.url }]);
  });

  test('deregister-from deletes the machine by thumbprint and forgets the server', async () => {
    const result = await cli.ok(['deregister-from', ...server, '--apiKey', API_KEY]);
    assert.match(result.stderr, /Removed this deployment target/);
    assert.equal(api.requests.at(-1)!.method, 'DELETE');
    assert.equal(api.requests.at(-1)!.url, `/api/machines/by-thumbprint/${tentacleTp}`);
    assert.equal(api.machines.has(tentacleTp), false);
    const config = await loadConfig('Tentacle', cli.root);
    assert.deepEqual(config.servers, []);
    assert.deepEqual(config.trust, []);
    assert.equal(config.registration, null);

    // Again: the server no longer knows it; that is said, and it is not an error.
    const again = await cli.ok(['deregister-worker', ...server, '--apiKey', API_KEY]);
    assert.match(again.stderr, /had no machine with this Tentacle's thumbprint/);
  });
});
