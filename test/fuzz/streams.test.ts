import { describe, test } from 'node:test';
import { proxyHeadRandom, proxyHeadSplits, sseChunking, sseRandomText } from './streams.props.js';
import { TEST_RUNS } from './util.js';

describe('fuzz: SSE reader and CONNECT response heads', () => {
  test('readEvents: events in random pieces equal the events written', () => sseChunking(TEST_RUNS));
  test('readEvents: any text in random pieces equals parsing it whole', () => sseRandomText(TEST_RUNS));
  test('parseResponseHead: random splits give the same head as the whole', () => proxyHeadSplits(TEST_RUNS * 2));
  test('parseResponseHead: random bytes give null, a head, or REEF_PROXY_PROTOCOL', () => proxyHeadRandom(TEST_RUNS * 2));
});
