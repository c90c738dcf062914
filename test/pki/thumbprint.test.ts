import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { isReefError } from '../../src/errors.js';
import { isThumbprint, normalizeThumbprint, thumbprintOfDer, thumbprintOfPem } from '../../src/pki/thumbprint.js';

const TP = '5E8F16062EA3CD2C4A0D547876BAA6F38CABF625B0E1A9A5F6E4A3D0F3E9C1B2';
const isBadThumbprint = (err: unknown) => isReefError(err, 'REEF_BAD_THUMBPRINT');

/** 32 random bytes as a canonical thumbprint. */
const thumbprints = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex').toUpperCase());

test('thumbprintOfDer is the SHA-256 of the bytes in 64 uppercase hex digits', () => {
  const der = Buffer.from('not really a certificate');
  const tp = thumbprintOfDer(der);
  assert.match(tp, /^[0-9A-F]{64}$/);
  assert.equal(tp, createHash('sha256').update(der).digest('hex').toUpperCase());
});

test('normalizeThumbprint accepts lowercase, colons, spaces, dashes and the openssl prefix', () => {
  const pairs = TP.match(/../g)!;
  for (const input of [
    TP,
    TP.toLowerCase(),
    pairs.join(':'),
    pairs.join(':').toLowerCase(),
    pairs.join(' '),
    `  ${TP}\n`,
    pairs.join('-'),
    `sha256 Fingerprint=${pairs.join(':')}`,
    `SHA256 Fingerprint=${pairs.join(':')}`,
  ]) {
    assert.equal(normalizeThumbprint(input), TP, input);
    assert.ok(isThumbprint(input));
  }
});

test('normalizeThumbprint rejects wrong lengths and characters with REEF_BAD_THUMBPRINT', () => {
  for (const input of ['', TP.slice(1), `${TP}0`, `${TP.slice(1)}G`, TP.replace('5', 'Z'), 'hello', `0x${TP}`]) {
    assert.throws(() => normalizeThumbprint(input), isBadThumbprint, input);
    assert.equal(isThumbprint(input), false);
  }
});

test('the error says what was expected, and spots a SHA-1 thumbprint', () => {
  assert.throws(() => normalizeThumbprint('abc'), /expected 64 hexadecimal digits/);
  assert.throws(() => normalizeThumbprint('A'.repeat(40)), /SHA-1/);
  // Long garbage is shortened in the message rather than echoed whole.
  assert.throws(() => normalizeThumbprint('x'.repeat(10_000)), (err: Error) => err.message.length < 400);
});

test('property: any formatting of a thumbprint normalises back to it', () => {
  const separator = fc.constantFrom('', ':', ' ', '-', ': ');
  fc.assert(
    fc.property(
      thumbprints,
      separator,
      fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
      fc.constantFrom('', ' ', '\t', '\n'),
      fc.boolean(),
      (tp, sep, lower, pad, prefixed) => {
        const cased = [...tp].map((ch, i) => (lower[i] ? ch.toLowerCase() : ch)).join('');
        const formatted = `${pad}${prefixed ? 'sha256 Fingerprint=' : ''}${cased.match(/../g)!.join(sep)}${pad}`;
        assert.equal(normalizeThumbprint(formatted), tp);
      },
    ),
  );
});

test('property: a thumbprint with a digit added, removed or replaced by a non-hex character is rejected', () => {
  fc.assert(
    fc.property(thumbprints, fc.nat(63), fc.constantFrom('G', 'z', '!', '.', 'é', '_'), (tp, at, bad) => {
      assert.throws(() => normalizeThumbprint(tp.slice(0, at) + tp.slice(at + 1)), isBadThumbprint);
      assert.throws(() => normalizeThumbprint(tp + tp[at]), isBadThumbprint);
      assert.throws(() => normalizeThumbprint(tp.slice(0, at) + bad + tp.slice(at + 1)), isBadThumbprint);
    }),
  );
});

test('thumbprintOfPem rejects text that is not a certificate', () => {
  assert.throws(() => thumbprintOfPem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), (err) =>
    isReefError(err, 'REEF_BAD_CERTIFICATE'),
  );
});
