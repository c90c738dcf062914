/**
 * /metrics on a real `reef server run` with a real polling Tentacle: scraped with curl and
 * the API key over HTTPS (as docs/operations.md shows), refused without one, served
 * without credentials on the `--metrics-listen` address, and the numbers move with what
 * the server does: a connected Tentacle by carrier, a task by kind and final state, RPC
 * calls by method, log lines stored, a wait for an offline Tentacle, a refused
 * certificate, a reconnect. Every scrape passes Debian's `promtool check metrics`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { dialSecure } from '../../src/comms/dialer.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import type { Thumbprint } from '../../src/pki/thumbprint.js';
import { cli, freePort, ok, startAgent, startServer, stop, stopAll, tempDir, waitFor, type AgentProcess, type ServerProcess } from './harness.js';
import { curlScrape, has, parseSamples, promtoolCheck, promtoolMissing, total, type Sample } from './metrics.js';

const NODE = 'metrics-node';

describe('/metrics of a server with a polling Tentacle', { skip: promtoolMissing() }, () => {
  let server: ServerProcess;
  let apiKey: string;
  let root: string;
  let metricsPort: number;
  let agent: AgentProcess;

  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
  const reef = (args: string[]) => cli('reef', args, server.env(apiKey));
  const scrape = () => curlScrape(`${server.url}/metrics`, { authorization: `Bearer ${apiKey}` });

  /** A scrape with the key that passed promtool, as samples. */
  async function samples(): Promise<Sample[]> {
    const result = await scrape();
    assert.equal(result.status, 200, result.body);
    const checked = await promtoolCheck(result.body);
    assert.equal(checked.code, 0, `promtool check metrics:\n${checked.output}`);
    return parseSamples(result.body);
  }

  async function register(instance: string, name: string, environment: string): Promise<void> {
    await tentacle(['create-instance', '--instance', instance]);
    await tentacle(['new-certificate', '--instance', instance]);
    await tentacle(['register-with', '--instance', instance, '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', apiKey,
      '--server-comms-port', String(server.commsPort), '--environment', environment, '--role', 'web', '--name', name]);
  }

  before(async () => {
    root = await tempDir('metrics-tentacles');
    metricsPort = await freePort();
    server = await startServer({
      dataDir: await tempDir('metrics-server'),
      httpsPort: await freePort(),
      commsPort: await freePort(),
      pickupTimeoutSeconds: 2,
      name: 'server-metrics',
      extraArgs: ['--node-name', NODE, '--metrics-listen', `127.0.0.1:${metricsPort}`],
    });
    apiKey = server.adminKey!;
    assert.match(server.banner, new RegExp(`Metrics: .*/metrics \\(with an API key\\); http://127\\.0\\.0\\.1:${metricsPort}/metrics \\(no credentials\\)`));
    await Promise.all([register('Poll1', 'poll-1', 'Metrics'), register('Away1', 'away-1', 'Elsewhere')]);
    agent = await startAgent(root, 'Poll1');
    await waitFor('poll-1 to connect', async () => total(await samples(), 'reef_tentacles_connected') === 1);
  });

  after(stopAll);

  test('without credentials, or with a wrong key, /metrics answers 401 and shows nothing', async () => {
    for (const headers of [{}, { authorization: 'Bearer API-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }] as Record<string, string>[]) {
      const refused = await curlScrape(`${server.url}/metrics`, headers);
      assert.equal(refused.status, 401, refused.body);
      assert.match(refused.body, /"code":"REEF_(UNAUTHENTICATED|BAD_API_KEY)"/);
      assert.doesNotMatch(refused.body, /reef_/);
    }
  });

  test('the connected Tentacle counts by carrier, every reef_ series names the node, and the process metrics are there', async () => {
    const now = await samples();
    assert.equal(total(now, 'reef_tentacles_connected', { carrier: 'tcp', node: NODE }), 1);
    assert.ok(total(now, 'reef_tentacle_handshakes_total', { carrier: 'tcp' }) >= 1);
    assert.equal(total(now, 'reef_node_info', { node: NODE }), 1);
    for (const sample of now.filter((s) => s.name.startsWith('reef_'))) assert.equal(sample.labels.node, NODE, `${sample.name} carries node`);
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(has(now, name), `${name} is exposed`);
    }
    // The RPC health.ping each new connection gets.
    assert.ok(total(now, 'reef_rpc_call_duration_seconds_count', { method: 'health.ping' }) >= 1);
  });

  test('a script task moves the task, RPC, log and store metrics', async () => {
    const before = await samples();
    const run = await reef(['tasks', 'run-script', '--machine', 'poll-1', '--script', 'echo one; echo two; echo three', '--follow']);
    assert.equal(run.code, 0, run.stderr);
    const after = await waitFor('the task to be counted', async () => {
      const now = await samples();
      return total(now, 'reef_task_duration_seconds_count', { kind: 'run-script', state: 'Success' }) > total(before, 'reef_task_duration_seconds_count', { kind: 'run-script', state: 'Success' }) && now;
    });
    const grew = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);
    assert.equal(grew('reef_task_duration_seconds_count', { kind: 'run-script', state: 'Success' }), 1);
    assert.equal(grew('reef_task_machine_duration_seconds_count', { kind: 'run-script', state: 'Success' }), 1);
    assert.equal(grew('reef_task_duration_seconds_bucket', { kind: 'run-script', state: 'Success', le: '+Inf' }), 1);
    assert.ok(grew('reef_rpc_call_duration_seconds_count', { method: 'scripts.start' }) >= 1);
    assert.ok(grew('reef_rpc_call_duration_seconds_count', { method: 'scripts.status' }) >= 1);
    assert.ok(grew('reef_log_lines_stored_total') >= 3, 'the three lines of output');
    assert.ok(grew('reef_store_operation_duration_seconds_count', { operation: 'appendMachineLog' }) >= 1);
    assert.ok(grew('reef_store_operation_duration_seconds_count', { operation: 'coordination.claimWork' }) >= 1);
    await waitFor('the run to end here', async () => total(await samples(), 'reef_task_machines_running') === 0);
  });

  test('work for an offline Tentacle counts a pickup wait that timed out, and a failed task', async () => {
    const before = await samples();
    const run = await reef(['tasks', 'run-script', '--machine', 'away-1', '--script', 'true', '--follow']);
    assert.equal(run.code, 1);
    const after = await waitFor('the failure to be counted', async () => {
      const now = await samples();
      return total(now, 'reef_task_duration_seconds_count', { kind: 'run-script', state: 'Failed' }) > total(before, 'reef_task_duration_seconds_count', { kind: 'run-script', state: 'Failed' }) && now;
    });
    assert.ok(total(after, 'reef_pickup_wait_seconds_count', { outcome: 'timed_out' }) >= 1);
    assert.ok(total(after, 'reef_pickup_wait_seconds_sum', { outcome: 'timed_out' }) >= 1.9, 'waited the 2 s pickup timeout');
    assert.equal(total(after, 'reef_pickup_waiting'), 0);
  });

  test('a Tentacle certificate nobody registered is counted as a refusal by reason', async () => {
    const stranger = await generateCertificate('Unregistered Tentacle');
    const refused = await dialSecure({
      identity: stranger,
      host: '127.0.0.1',
      port: server.commsPort,
      expected: [server.thumbprint as Thumbprint],
      explainMismatch: () => 'not the server',
      carrier: 'tcp',
      handshakeTimeoutMs: 10_000,
    }).catch((err: Error & { code?: string }) => err);
    assert.ok(refused instanceof Error && refused.code === 'REEF_UNTRUSTED_CERTIFICATE', String(refused));
    const now = await samples();
    assert.equal(total(now, 'reef_tentacle_handshake_refusals_total', { carrier: 'tcp', reason: 'untrusted_certificate' }), 1);
  });

  test('a restarted Tentacle counts as a reconnect', async () => {
    const before = await samples();
    await stop(agent.child);
    await waitFor('poll-1 to be gone', async () => total(await samples(), 'reef_tentacles_connected') === 0);
    agent = await startAgent(root, 'Poll1');
    const after = await waitFor('poll-1 to be back', async () => {
      const now = await samples();
      return total(now, 'reef_tentacles_connected', { carrier: 'tcp' }) === 1 && now;
    });
    assert.equal(total(after, 'reef_tentacle_reconnects_total', { carrier: 'tcp' }) - total(before, 'reef_tentacle_reconnects_total', { carrier: 'tcp' }), 1);
  });

  test('the --metrics-listen address serves /metrics without credentials, and nothing else', async () => {
    const plain = await curlScrape(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(plain.status, 200);
    assert.match(plain.headers, /content-type: text\/plain; version=0\.0\.4; charset=utf-8/i);
    assert.match(plain.headers, /content-encoding: gzip/i, 'compressed for a scraper that accepts gzip');
    assert.equal((await promtoolCheck(plain.body)).code, 0);
    assert.equal(total(parseSamples(plain.body), 'reef_tentacles_connected', { node: NODE }), 1);
    const other = await curlScrape(`http://127.0.0.1:${metricsPort}/api/machines`);
    assert.equal(other.status, 404);
    const post = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: metricsPort, path: '/metrics', method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(post, 405);
  });
});
