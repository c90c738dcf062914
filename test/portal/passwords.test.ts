import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePassword, hashPassword, MAX_PASSWORD_LENGTH, verifyPassword } from '../../src/server/auth/passwords.js';

const FAST = { N: 1024 };

describe('portal password hashing', () => {
  test('a hash names scrypt and its parameters, and verifies only the right password', async () => {
    const stored = await hashPassword('correct horse battery staple');
    assert.match(stored, /^scrypt\$N=32768,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.equal(await verifyPassword('correct horse battery staple', stored), true);
    assert.equal(await verifyPassword('correct horse battery stapl', stored), false);
    assert.equal(await verifyPassword('Correct horse battery staple', stored), false);
  });

  test('the same password hashes differently each time (random salt)', async () => {
    const [a, b] = await Promise.all([hashPassword('same', FAST), hashPassword('same', FAST)]);
    assert.notEqual(a, b);
    assert.equal(await verifyPassword('same', a), true);
    assert.equal(await verifyPassword('same', b), true);
  });

  test('Unicode passwords are compared after NFC normalisation', async () => {
    const stored = await hashPassword('caf\u00e9', FAST);
    assert.equal(await verifyPassword('cafe\u0301', stored), true);
  });

  test('malformed, tampered or absurd stored hashes are simply false', async () => {
    const stored = await hashPassword('pw', FAST);
    const [, params, salt, hash] = stored.split('$');
    for (const bad of ['', 'plain', `bcrypt$${params}$${salt}$${hash}`, `scrypt$N=1023,r=8,p=1$${salt}$${hash}`, `scrypt$N=4194304,r=8,p=1$${salt}$${hash}`, `scrypt$${params}$${salt}$AAAA`, `scrypt$${params}$${salt}$${hash}x`]) {
      assert.equal(await verifyPassword('pw', bad), false, bad);
    }
    const flipped = Buffer.from(hash!, 'base64');
    flipped[0]! ^= 1;
    assert.equal(await verifyPassword('pw', `scrypt$${params}$${salt}$${flipped.toString('base64')}`), false);
  });

  test('empty or oversized passwords are refused without hashing', async () => {
    const stored = await hashPassword('pw', FAST);
    assert.equal(await verifyPassword('', stored), false);
    assert.equal(await verifyPassword('x'.repeat(MAX_PASSWORD_LENGTH + 1), stored), false);
    await assert.rejects(hashPassword(''), TypeError);
    await assert.rejects(hashPassword('x'.repeat(MAX_PASSWORD_LENGTH + 1)), TypeError);
  });

  test('generated passwords are 24 base32 characters and differ', () => {
    const a = generatePassword();
    assert.match(a, /^[A-Z2-7]{24}$/);
    assert.notEqual(a, generatePassword());
  });
});
