/**
 * Bulk data for the transfer benchmarks: a file of any size made of one random MiB
 * repeated (incompressible to anything on the way, cheap to produce), uploaded to the
 * server once, then pushed to Tentacles with push-file tasks.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ApiClient } from '../../src/api/client.js';
import type { UploadedFile } from '../../src/api/contract.js';
import { runTask } from './reef-server.js';
import { since, MiB } from './stats.js';

const BLOCK = randomBytes(MiB);

/** `size` bytes of the repeated random block. */
export function payload(size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const chunk = BLOCK.subarray(0, Math.min(BLOCK.length, size - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

export async function uploadPayload(api: ApiClient, size: number): Promise<UploadedFile> {
  return api.json<UploadedFile>('POST', '/api/files', {
    stream: payload(size),
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    timeoutMs: 0,
  });
}

/**
 * Pushes an uploaded file to one machine with a push-file task, from the API call to the
 * task's end; resolves with the milliseconds it took. The pushed copy is removed after.
 */
export async function timePush(api: ApiClient, machine: string, file: UploadedFile, destination: string): Promise<number> {
  const started = performance.now();
  const task = await runTask(api, { kind: 'push-file', target: { machines: [machine] }, file: { sha256: file.sha256, destination } });
  const ms = since(started);
  await rm(destination, { force: true });
  if (task.state !== 'Success') {
    const why = task.machines.map((m) => m.error).filter(Boolean).join('; ');
    throw new Error(`push-file task ${task.id} to ${machine} ended ${task.state}: ${task.error}${why ? ` (${why})` : ''}`);
  }
  return ms;
}
