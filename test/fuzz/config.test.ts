import { describe, test } from 'node:test';
import { serverConfigFiles, tentacleConfigFiles, tentacleConfigMutations, tentacleConfigRandomJson } from './config.props.js';
import { TEST_RUNS } from './util.js';

describe('fuzz: config files', () => {
  test('tentacle parseConfig of any JSON: a config or REEF_CONFIG_INVALID', () => tentacleConfigRandomJson(TEST_RUNS * 2));
  test('tentacle config with one field broken: the error names that field', () => tentacleConfigMutations(TEST_RUNS * 2));
  test('tentacle config files: random bytes refused clearly, valid ones round-trip at 0600', () => tentacleConfigFiles(TEST_RUNS));
  test('server --config: usable settings or an error naming the field', () => serverConfigFiles(TEST_RUNS * 2));
});
