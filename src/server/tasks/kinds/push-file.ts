import { ReefError } from '../../../errors.js';
import { formatBytes } from '../../../format.js';
import { callTentacle } from '../../tentacle-client.js';
import { callRetrying, type MachineOutcome, type MachineRun } from '../machine-run.js';
import type { TaskKind } from '../task-kind.js';
import { uploadResumably } from './resumable-upload.js';

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
  let result: { size: number; sha256: string } | undefined;
  await uploadResumably(run, destination, blob.size, {
    begin: async () => (await callRetrying(run, 'files.beginUpload', args)).offset,
    open: (offset) => run.blobs.open(sha256, offset),
    send: async (offset, body) => {
      result = await callTentacle(run.tentacle, 'files.upload', { ...args, offset }, { signal: run.signal, deadlineMs: 0, body });
    },
  });
  await run.log('info', `Uploaded ${destination} (${formatBytes(result!.size)}, SHA-256 ${result!.sha256} verified by the Tentacle).`);
  return { state: 'Success', exitCode: null };
}
