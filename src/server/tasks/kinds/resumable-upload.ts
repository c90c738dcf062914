import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { LINK_LOST_CODES, ReefError } from '../../../errors.js';
import { formatBytes } from '../../../format.js';
import type { MachineRun } from '../machine-run.js';

const MAX_RESUMES = 20;

/**
 * Streams `size` bytes to a Tentacle that keeps a partial upload across dropped links
 * (files.* and upgrade.* methods): each attempt asks where to resume (`begin`) and sends
 * only the rest (`send`, given the body from there), logging progress at every quarter.
 */
export async function uploadResumably(
  run: MachineRun,
  what: string,
  size: number,
  steps: { begin(): Promise<number>; open(offset: number): Promise<Readable> | Readable; send(offset: number, body: Readable): Promise<unknown> },
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const offset = await steps.begin();
    await run.log('info', offset > 0 ? `Resuming the upload of ${what} at byte ${offset} of ${size}.` : `Uploading ${formatBytes(size)} to ${what}.`);
    try {
      const body = (await steps.open(offset)).pipe(progress(offset, size, (text) => void run.log('info', text)));
      await steps.send(offset, body);
      return;
    } catch (err) {
      const resumable = err instanceof ReefError && (LINK_LOST_CODES.has(err.code) || err.code === 'REEF_BODY_FAILED');
      if (!resumable || run.signal.aborted || attempt >= MAX_RESUMES) throw err;
      await run.log('info', `The connection dropped during the upload (${err.message}); resuming.`);
    }
  }
}

/** Logs progress at every quarter, so a follower sees a long transfer move. */
function progress(start: number, total: number, report: (text: string) => void): Transform {
  let sent = start;
  let nextMark = total > 0 ? Math.floor((Math.floor((start / total) * 4) + 1) * (total / 4)) : Infinity;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      if (sent >= nextMark && sent < total) {
        report(`Sent ${Math.round((sent / total) * 100)}% (${formatBytes(sent)} of ${formatBytes(total)}).`);
        nextMark += total / 4;
      }
      done(null, chunk);
    },
  });
}
