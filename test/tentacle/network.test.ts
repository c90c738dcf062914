import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isReefError } from '../../src/errors.js';
import { defaultConfig, type TentacleConfig } from '../../src/tentacle/config.js';
import { pollTargetFor, proxyFor, resolvedAddress } from '../../src/tentacle/network.js';

const trusted = () => [];
const target = (address: string, config: TentacleConfig = defaultConfig('T', '/h')) => pollTargetFor({ thumbprint: 'x', address }, () => config, trusted);

describe('poll targets', () => {
  test('tcp:// and bare host:port go to the comms port, 10943 by default; IPv6 too', () => {
    assert.deepEqual(((t) => [t.host, t.port, t.carrier, t.servername])(target('tcp://reef.example.com:10999')), ['reef.example.com', 10999, 'tcp', undefined]);
    assert.equal(target('reef.example.com:11000').port, 11000);
    assert.equal(target('tcp://reef.example.com').port, 10943);
    assert.equal(target('tcp://[::1]:10943').host, '::1');
  });

  test('https:// means port 443 by default with the host as SNI', () => {
    const t = target('https://Polling.Example.com');
    assert.deepEqual([t.host, t.port, t.servername, t.carrier], ['polling.example.com', 443, 'polling.example.com', 'https']);
    assert.equal(target('https://polling.example.com:8443').port, 8443);
  });

  test('wss:// is a WebSocket carrier', () => {
    const t = target('wss://example.com/reef/comms');
    assert.deepEqual([t.host, t.port, t.carrier], ['example.com', 443, 'websocket']);
    assert.ok(t.transport);
  });

  test('a configured polling proxy marks the carrier', () => {
    const config = { ...defaultConfig('T', '/h'), pollingProxy: { host: 'proxy.local', port: 3128 } };
    assert.equal(target('https://polling.example.com', config).carrier, 'https+proxy');
    assert.equal(target('wss://example.com/reef/comms', config).carrier, 'websocket+proxy');
  });

  test('paths on tcp/https, empty hosts and unknown schemes are refused clearly', () => {
    assert.throws(() => target('https://polling.example.com/x'), (err) => isReefError(err, 'REEF_BAD_SERVER_ADDRESS') && /has a path/.test(err.message));
    assert.throws(() => target('ftp://example.com'), (err) => isReefError(err, 'REEF_BAD_SERVER_ADDRESS') && /ftp:/.test(err.message));
    assert.throws(() => target('tcp://:10943'), (err) => isReefError(err, 'REEF_BAD_SERVER_ADDRESS'));
  });
});

describe('proxies and fixed addresses', () => {
  test('configured proxy wins; enabled:false means none even with HTTPS_PROXY set', () => {
    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = 'http://env-proxy:8080';
    try {
      assert.deepEqual(proxyFor({ host: 'p', port: 1, username: 'u', password: 'w' }, 'reef', 443, 'tentacle proxy'), {
        host: 'p',
        port: 1,
        username: 'u',
        password: 'w',
        configuredBy: 'tentacle proxy',
      });
      assert.equal(proxyFor({ enabled: false }, 'reef', 443, 'tentacle polling-proxy'), null);
      assert.deepEqual(proxyFor(null, 'reef', 443, 'tentacle polling-proxy'), { host: 'env-proxy', port: 8080, configuredBy: 'HTTPS_PROXY' });
      assert.equal(proxyFor({ enabled: true }, 'reef', 443, 'tentacle proxy')?.host, 'env-proxy', 'enabled without a host: the environment decides');
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
    }
  });

  test('resolve maps host:port to a fixed address, case-insensitively', () => {
    const config = { ...defaultConfig('T', '/h'), resolve: { 'polling.example.com:443': '127.0.0.1' } };
    assert.equal(resolvedAddress(config, 'Polling.Example.com', 443), '127.0.0.1');
    assert.equal(resolvedAddress(config, 'polling.example.com', 8443), undefined);
  });
});
