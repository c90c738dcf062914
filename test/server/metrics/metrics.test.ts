// The metrics module in process: each server's registry is its own, labels from outside
// stay bounded, the store wrapper times every operation and passes results through, and
// the small parsers (Accept-Encoding, --metrics-listen) say no clearly.
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ReefError } from '../../../src/errors.js';
import { acceptsGzip } from '../../../src/server/metrics/http.js';
import { BoundedLabel } from '../../../src/server/metrics/labels.js';
import { parseListenAddress } from '../../../src/server/metrics/listen-address.js';
import { ServerMetrics } from '../../../src/server/metrics/metrics.js';
import { timeStore } from '../../../src/server/metrics/watch.js';
import type { Store } from '../../../src/server/store/types.js';
import { parseSamples, total } from '../../e2e/metrics.js';

const noSources = { links: () => ({ tentaclesByCarrier: new Map<string, number>(), inflight: 0 }), waitingForPickup: () => 0, activeRuns: () => 0, msSinceLeaseRenewal: () => 0, invalidAnswers: () => 0 };

describe('ServerMetrics', () => {
  it('keeps each server its own numbers, under its own node name, with the process metrics shared', async () => {
    const a = new ServerMetrics();
    const b = new ServerMetrics();
    a.bind('node-a', '1.2.3', { ...noSources, links: () => ({ tentaclesByCarrier: new Map([['tcp', 3], ['websocket+proxy', 1]]), inflight: 2 }) });
    b.bind('node-b', '1.2.3', noSources);
    a.rpcCall('scripts.start', 0.02, undefined);
    a.rpcCall('scripts.start', 0.5, 'REEF_DEADLINE_EXCEEDED');
    b.logLinesStored(7);
    const [atA, atB] = [parseSamples(await a.render()), parseSamples(await b.render())];
    assert.equal(total(atA, 'reef_tentacles_connected', { node: 'node-a', carrier: 'tcp' }), 3);
    assert.equal(total(atA, 'reef_tentacles_connected', { carrier: 'websocket+proxy' }), 1);
    assert.equal(total(atA, 'reef_rpc_calls_in_flight'), 2);
    assert.equal(total(atA, 'reef_rpc_call_duration_seconds_count', { method: 'scripts.start' }), 2);
    assert.equal(total(atA, 'reef_rpc_call_duration_seconds_bucket', { method: 'scripts.start', le: '0.025' }), 1);
    assert.equal(total(atA, 'reef_rpc_call_errors_total', { method: 'scripts.start', code: 'REEF_DEADLINE_EXCEEDED' }), 1);
    assert.equal(total(atA, 'reef_log_lines_stored_total'), 0);
    assert.equal(total(atB, 'reef_log_lines_stored_total', { node: 'node-b' }), 7);
    assert.equal(total(atB, 'reef_tentacles_connected'), 0);
    assert.equal(total(atB, 'reef_rpc_call_duration_seconds_count'), 0);
    for (const samples of [atA, atB]) assert.ok(samples.some((s) => s.name === 'process_resident_memory_bytes'));
  });

  it('counts error codes and refusal reasons it was never told of under a bounded set of values', async () => {
    const metrics = new ServerMetrics();
    metrics.bind('n', '1', noSources);
    for (let i = 0; i < 500; i++) metrics.rpcCall('scripts.status', 0.01, `REEF_MADE_UP_${i}`);
    metrics.rpcCall('scripts.status', 0.01, 'not a code {"}');
    for (let i = 0; i < 100; i++) metrics.refusal('listening', `peer_said_${i}`);
    const samples = parseSamples(await metrics.render());
    const codes = new Set(samples.filter((s) => s.name === 'reef_rpc_call_errors_total').map((s) => s.labels.code));
    assert.equal(codes.size, 64 + 2, '64 codes, then "other", and "invalid"');
    assert.equal(total(samples, 'reef_rpc_call_errors_total', { code: 'other' }), 500 - 64);
    assert.equal(total(samples, 'reef_rpc_call_errors_total', { code: 'invalid' }), 1);
    assert.equal(new Set(samples.filter((s) => s.name === 'reef_tentacle_handshake_refusals_total').map((s) => s.labels.reason)).size, 32 + 1);
  });

  it('counts the open file descriptors as the kernel does, without listing them on the event loop', async () => {
    const metrics = new ServerMetrics();
    metrics.bind('n', '1', noSources);
    const opened = Array.from({ length: 200 }, () => openSync('/dev/null', 'r'));
    try {
      const reported = total(parseSamples(await metrics.render()), 'process_open_fds');
      const listed = readdirSync('/proc/self/fd').length - 1;
      assert.ok(Math.abs(reported - listed) <= 5 && reported >= 200, `process_open_fds ${reported}, /proc/self/fd lists ${listed}`);
    } finally {
      for (const fd of opened) closeSync(fd);
    }
  });

  it('shows the cluster bus only on a node that has one', async () => {
    const alone = new ServerMetrics();
    alone.bind('n', '1', noSources);
    assert.doesNotMatch(await alone.render(), /reef_cluster_bus/);
    const clustered = new ServerMetrics();
    clustered.bind('n', '1', noSources);
    const bus = clustered.clusterBus(() => true);
    bus.received(3, 40);
    bus.sent(2);
    const samples = parseSamples(await clustered.render());
    assert.equal(total(samples, 'reef_cluster_bus_connected'), 1);
    assert.equal(total(samples, 'reef_cluster_bus_lag_seconds_count'), 1);
    assert.equal(total(samples, 'reef_cluster_bus_lag_seconds_sum'), 0.04);
    assert.equal(total(samples, 'reef_cluster_bus_events_total', { direction: 'received' }), 3);
    assert.equal(total(samples, 'reef_cluster_bus_notifications_total', { direction: 'sent' }), 1);
  });
});

describe('timeStore', () => {
  it('times each operation, nested ones by their path, passing results and errors through', async () => {
    const metrics = new ServerMetrics();
    metrics.bind('n', '1', noSources);
    let closed = false;
    const raw = {
      getTask: async (id: string) => ({ id }),
      deleteMachine: async () => {
        throw new ReefError('REEF_IN_USE', 'busy');
      },
      coordination: { claimWork: async () => [1, 2] },
      close: async () => {
        closed = true;
      },
    } as unknown as Store;
    const store = timeStore(raw, metrics);
    assert.deepEqual(await store.getTask('T-1'), { id: 'T-1' });
    assert.deepEqual(await store.coordination.claimWork('n', { leaseMs: 1, staleAfterMs: 1, limit: 1 }), [1, 2]);
    await assert.rejects(store.deleteMachine('m'), /busy/);
    await store.close();
    assert.ok(closed);
    const samples = parseSamples(await metrics.render());
    assert.equal(total(samples, 'reef_store_operation_duration_seconds_count', { operation: 'getTask' }), 1);
    assert.equal(total(samples, 'reef_store_operation_duration_seconds_count', { operation: 'coordination.claimWork' }), 1);
    assert.equal(total(samples, 'reef_store_operation_errors_total', { operation: 'deleteMachine' }), 1);
    assert.equal(total(samples, 'reef_store_operation_errors_total', { operation: 'getTask' }), 0);
  });
});

describe('small parsers', () => {
  it('acceptsGzip follows Accept-Encoding, q=0 included', () => {
    for (const yes of ['gzip', 'gzip, deflate', 'br;q=1.0, gzip;q=0.5', '*', 'GZIP']) assert.equal(acceptsGzip(yes), true, yes);
    for (const no of [undefined, '', 'identity', 'deflate, br', 'gzip;q=0', 'gzip; q=0.0', 'x-gzip2']) assert.equal(acceptsGzip(no), false, String(no));
  });

  it('parseListenAddress takes HOST:PORT and refuses the rest, naming the option', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:9464', '--metrics-listen'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListenAddress('[::1]:0', '--metrics-listen'), { host: '::1', port: 0 });
    assert.deepEqual(parseListenAddress('metrics.internal:9464', '--metrics-listen'), { host: 'metrics.internal', port: 9464 });
    for (const bad of ['9464', ':9464', '127.0.0.1', '::1:9464', '[::1]', 'host:65536', 'host:-1', 'a b:1', 'host:9464/x']) {
      assert.throws(() => parseListenAddress(bad, '--metrics-listen'), (err: ReefError) => err.code === 'REEF_INVALID_ARGUMENT' && err.message.startsWith('--metrics-listen must be HOST:PORT'), bad);
    }
  });

  it('BoundedLabel keeps what it saw, up to its bound', () => {
    const label = new BoundedLabel(/^[a-z]+$/, 2);
    assert.deepEqual(['a', 'b', 'c', 'a', 'B'].map((v) => label.of(v)), ['a', 'b', 'other', 'a', 'invalid']);
  });
});
