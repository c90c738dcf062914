/**
 * What the /metrics tests share: scraping with real curl (as the docs tell operators to),
 * reading samples out of the Prometheus text format, and Debian's `promtool check metrics`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTracked } from '../support/processes.js';
import { tempDir } from './harness.js';

export const PROMTOOL = '/usr/bin/promtool';

/**
 * Why promtool cannot run here, or false when it can. It is a Debian package (prometheus)
 * that .ci/run installs, so as root its absence is a broken set-up and the test fails; only
 * a user who cannot install it is told to and skipped.
 */
export function promtoolMissing(): string | false {
  if (existsSync(PROMTOOL)) return false;
  if (process.getuid?.() === 0) return false; // the test fails, naming the package
  return `${PROMTOOL} is missing and only root can install it: apt-get install -y prometheus`;
}

export interface Scrape {
  status: number;
  body: string;
  headers: string;
}

/**
 * `curl -sk` (the certificate is self-signed; these tests pin nothing) with `--compressed`,
 * as Prometheus asks for gzip. Body and headers go to files: curl 7.88 crashes writing
 * headers to a piped /dev/stderr.
 */
export async function curlScrape(url: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const dir = await tempDir('scrape');
  const [bodyFile, headersFile] = [join(dir, 'body'), join(dir, 'headers')];
  const args = ['-sk', '--compressed', '--max-time', '30', '-o', bodyFile, '-D', headersFile, '-w', '%{http_code}', url];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  const result = await runTracked('curl', args, { timeoutMs: 60_000 });
  assert.equal(result.code, 0, `curl ${url} failed: ${result.stderr}`);
  return { status: Number(result.stdout), body: await readFile(bodyFile, 'utf8'), headers: await readFile(headersFile, 'utf8') };
}

/** `promtool check metrics` on a scrape: its exit code and what it said. */
export async function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: apt-get install -y prometheus (.ci/run installs it)`);
  const file = join(await tempDir('scrape'), 'metrics.txt');
  await writeFile(file, text);
  const result = await runTracked('sh', ['-c', `"${PROMTOOL}" check metrics < "$0"`, file], { timeoutMs: 60_000 });
  return { code: result.code, output: `${result.stdout}${result.stderr}` };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text-format scrape (comments and blank lines skipped). */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[name!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include `labels` (0 when none). */
export function total(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** Whether any sample is named `name` (with these labels). */
export function has(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): boolean {
  return samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}
