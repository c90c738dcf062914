import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineSplitter, scanLog } from '../../../../src/tentacle/services/scripts/log.js';

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

test('LineSplitter ends lines at LF and CR LF, and holds an unfinished line', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(bytes('one\ntwo\r\nthr')), [
    { text: 'one', bytes: 4 },
    { text: 'two', bytes: 5 },
  ]);
  assert.deepEqual(s.push(bytes('ee\r')), []);
  assert.deepEqual(s.push(bytes('\n\n')), [
    { text: 'three', bytes: 7 },
    { text: '', bytes: 1 },
  ]);
  assert.deepEqual(s.push(bytes('tail')), []);
  assert.deepEqual(s.end(), [{ text: 'tail', bytes: 4 }]);
  assert.deepEqual(s.end(), []);
});

test('LineSplitter replaces invalid UTF-8 and keeps a character split across chunks whole', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(bytes('bad', [0xff, 0xfe], 'x\n')), [{ text: 'bad\uFFFD\uFFFDx', bytes: 7 }]);
  const euro = Buffer.from('€', 'utf8'); // 3 bytes
  assert.deepEqual(s.push(euro.subarray(0, 2)), []);
  assert.deepEqual(s.push(Buffer.concat([euro.subarray(2), bytes('\n')])), [{ text: '€', bytes: 4 }]);
});

test('LineSplitter cuts long lines on a character boundary', () => {
  const s = new LineSplitter(8);
  // "aaaaaaa€" is 10 bytes: a cut at 8 would split the euro sign, so it cuts at 7.
  const lines = s.push(bytes('aaaaaaa€bbbbbbbbbbbbbbbbbbbb\n'));
  assert.deepEqual(
    lines.map((l) => l.text),
    ['aaaaaaa', '€bbbbb', 'bbbbbbbb', 'bbbbbbb'],
  );
  assert.equal(
    lines.reduce((n, l) => n + l.bytes, 0),
    Buffer.byteLength('aaaaaaa€bbbbbbbbbbbbbbbbbbbb\n'),
  );
  // Without a newline, too-long pending output is cut too rather than held.
  assert.deepEqual(
    s.push(bytes('cccccccccccc')).map((l) => l.text),
    ['cccccccc'],
  );
  assert.deepEqual(s.end(), [{ text: 'cccc', bytes: 4 }]);
});

test('scanLog rebuilds the tail state and truncates a record torn by a crash', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'reef-log-'));
  try {
    const file = join(dir, 'log.jsonl');
    const records = [
      { seq: 1, at: 't', stream: 'stdout', text: 'a', end: 2 },
      { seq: 2, at: 't', stream: 'stderr', text: 'b', end: 2 },
      { seq: 3, at: 't', stream: 'system', text: 'note' },
      { seq: 4, at: 't', stream: 'stdout', text: 'c', end: 4 },
    ];
    const whole = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    await writeFile(file, `${whole}{"seq":5,"at":"t","str`);
    const scan = await scanLog(file);
    assert.equal(scan.nextSeq, 5);
    assert.equal(scan.bytes, Buffer.byteLength(whole));
    assert.deepEqual(scan.ends, { stdout: 4, stderr: 2 });
    assert.deepEqual(scan.index, [0]);
    assert.equal(await readFile(file, 'utf8'), whole);
    assert.deepEqual(await scanLog(join(dir, 'missing.jsonl')), { bytes: 0, nextSeq: 1, index: [], ends: { stdout: 0, stderr: 0 } });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
