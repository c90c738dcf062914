import { describe, test } from 'node:test';
import { frameAfterEnd, frameOverSockets, frameOversizedAndBadMagic, frameRandomBytes, frameRoundTrip, frameSequence, frameTruncated, verdictProperties } from './frame.props.js';
import { TEST_RUNS } from './util.js';

describe('fuzz: RPC frames and the verdict', () => {
  test('encode -> readFrame in random pieces round-trips and leaves what followed', () => frameRoundTrip(TEST_RUNS));
  test('random bytes end in a value or a clear ReefError, never a hang', () => frameRandomBytes(TEST_RUNS));
  test('a truncated frame ends in REEF_CONNECTION_LOST', () => frameTruncated(TEST_RUNS));
  test('an oversized length or a wrong preamble is refused at once', () => frameOversizedAndBadMagic(TEST_RUNS));
  test('frames back to back, then garbage: each in order, then a clear error', () => frameSequence(TEST_RUNS));
  test('verdicts round-trip; random verdict bytes end in a verdict or a clear error', () => verdictProperties(TEST_RUNS));
  test('a stream that already ended is refused at once, not waited on forever', () => frameAfterEnd(Math.min(TEST_RUNS, 50)));
  test('over real loopback sockets, ended or reset mid-frame', () => frameOverSockets(Math.min(TEST_RUNS, 60)));
});
