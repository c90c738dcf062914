import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveServerSettings } from '../../src/cli/reef-server.js';
import { serverConfigFiles, tentacleConfigFiles, tentacleConfigMutations, tentacleConfigRandomJson } from './config.props.js';
import { TEST_RUNS } from './util.js';

describe('fuzz: config files', () => {
  test('tentacle parseConfig of any JSON: a config or REEF_CONFIG_INVALID', () => tentacleConfigRandomJson(TEST_RUNS * 2));
  test('tentacle config with one field broken: the error names that field', () => tentacleConfigMutations(TEST_RUNS * 2));
  test('tentacle config files: random bytes refused clearly, valid ones round-trip at 0600', () => tentacleConfigFiles(TEST_RUNS));
  test('server --config: usable settings or an error naming the field', () => serverConfigFiles(TEST_RUNS * 2));
  test('server --log-quota-mib: MiB to bytes, default left to the engine, nonsense refused', async () => {
    assert.equal((await resolveServerSettings({ logQuotaMib: '2' })).logQuotaBytes, 2 * 1024 * 1024);
    assert.equal((await resolveServerSettings({})).logQuotaBytes, undefined);
    await assert.rejects(resolveServerSettings({ logQuotaMib: '0.5' }), /--log-quota-mib must be a number of MiB from 1 to 1048576, got "0.5"/);
  });
});
