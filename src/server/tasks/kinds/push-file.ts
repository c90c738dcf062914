import { Transform } from 'node:stream';
import { LINK_LOST_CODES, ReefError } from '../../../errors.js';
import { formatBytes } from '../../../format.js';
import { callTentacle } from '../../tentacle-client.js';
import { callRetrying, type MachineOutcome, type MachineRun } from '../machine-run.js';
import type { TaskKind } from '../task-kind.js';

type PushFileSpec = {
  file: { sha256: string; destination: string };
};

export const pushFileKind: TaskKind<'push-file', PushFileSpec> = {
  specOf: async (request, { blobs }) => {
    if (!(await blobs.stat(request.file.sha256))) {
      throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${request.file.sha256}; upload it first (POST /api/files).`);
    }
    return { file: request.file };
  },
  perform: pushFile,
};

const MAX_RESUMES = 20;

/**
 * Streams an uploaded file to one machine. The tentacle keeps a partial upload across
 * dropped links, so each attempt asks where to resume and sends only the rest; the
 * tentacle checks the SHA-256 of the whole file before moving it into place.
 */
async function pushFile(run: MachineRun, spec: PushFileSpec): Promise<MachineOutcome> {
  const { sha256, destination } = spec.file;
  const blob = await run.blobs.stat(sha256);
  if (!blob) throw new ReefError('REEF_NOT_FOUND', `The file ${sha256} is no longer on the server; upload it again.`);
  const args = { path: destination, size: blob.size, sha256 };
  for (let attempt = 0; ; attempt++) {
    const { offset } = await callRetrying(run, 'files.beginUpload', args);
    await run.log('info', offset > 0 ? `Resuming the upload of ${destination} at byte ${offset} of ${blob.size}.` : `Uploading ${formatBytes(blob.size)} to ${destination}.`);
    try {
      const result = await callTentacle(run.tentacle, 'files.upload', { ...args, offset }, {
        signal: run.signal,
        deadlineMs: 0,
        body: run.blobs.open(sha256, offset).pipe(progress(offset, blob.size, (text) => void run.log('info', text))),
      });
      await run.log('info', `Uploaded ${destination} (${formatBytes(result.size)}, SHA-256 ${result.sha256} verified by the Tentacle).`);
      return { state: 'Success', exitCode: null };
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
