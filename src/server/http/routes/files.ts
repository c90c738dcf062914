import { FileInUse, Sha256Params, SHA256_HEADER, UploadedFile, UploadHeaders } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { auditRequest } from '../../audit/request.js';
import { checkSha256 } from '../../files/blobs.js';
import { filesNeededByUnfinishedTasks } from '../../files/retention.js';
import { checkDeclaredLength, tooLarge } from '../body.js';
import type { ApiContext } from '../context.js';
import { HttpError } from '../errors.js';
import { sendEmpty, sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';

export { SHA256_HEADER };

export const fileRoutes: ApiRoute[] = [
  route({
    method: 'POST',
    path: '/api/files',
    tag: 'Files',
    summary: 'Upload a file',
    permission: 'files:upload',
    description:
      'The raw bytes, stored under their SHA-256 once complete (the same bytes twice keep one copy); an upload cut off midway leaves nothing. ' +
      'Push it to machines with a push-file task.',
    headers: UploadHeaders,
    body: { binary: 'The file, at most 10 GiB (the server option limits.maxUploadBytes).' },
    responses: { 201: { description: 'Stored.', json: UploadedFile } },
    handler: async (ctx, { headers }) => upload(ctx, headers[SHA256_HEADER]),
  }),
  route({
    method: 'GET',
    path: '/api/files/:sha256',
    tag: 'Files',
    summary: 'Find an uploaded file',
    permission: 'files:read',
    params: Sha256Params,
    responses: { 200: { description: 'It is stored.', json: UploadedFile } },
    errors: { 404: 'No uploaded file has that SHA-256.' },
    handler: async ({ res, deps }, { params }) => {
      const sha256 = checkSha256(params.sha256.toLowerCase());
      const found = await deps.blobs.stat(sha256);
      if (!found) throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${sha256}.`);
      sendJson(res, 200, { sha256, size: found.size } satisfies UploadedFile);
    },
  }),
  route({
    method: 'DELETE',
    path: '/api/files/:sha256',
    tag: 'Files',
    summary: 'Delete an uploaded file',
    description:
      'Files are shared by every environment, so only an admin may delete one. Files are also deleted by themselves ' +
      'once neither uploaded nor pushed for --file-retention-days and needed by no unfinished task.',
    permission: 'files:delete',
    params: Sha256Params,
    responses: { 204: { description: 'Deleted.' } },
    errors: {
      404: 'No uploaded file has that SHA-256.',
      409: 'A queued or running push-file task still needs it (REEF_IN_USE, `details` is a FileInUse).',
    },
    handler: async (ctx, { params }) => remove(ctx, checkSha256(params.sha256.toLowerCase())),
  }),
];

async function remove(ctx: ApiContext, sha256: string): Promise<void> {
  const { res, deps } = ctx;
  if (!(await deps.blobs.stat(sha256))) throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${sha256}.`);
  const taskIds = (await filesNeededByUnfinishedTasks(deps.store)).get(sha256);
  if (taskIds) {
    const shown = taskIds.slice(0, 10).join(', ') + (taskIds.length > 10 ? `, and ${taskIds.length - 10} more` : '');
    throw new HttpError('REEF_IN_USE', `File ${sha256} is still to be pushed by unfinished task(s) ${shown}; cancel them or wait for them to finish, then delete it.`, {
      details: { taskIds } satisfies FileInUse,
    });
  }
  if (!(await deps.blobs.delete(sha256))) throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${sha256}.`);
  ctx.logger.info({ sha256, apiKey: ctx.key?.id, user: ctx.user?.username }, 'api: file deleted');
  await auditRequest(ctx, { kind: 'file.deleted', target: { id: sha256, name: null } });
  sendEmpty(res, 204);
}

/** The media type and the header are checked already (the route's contract). */
async function upload(ctx: ApiContext, expected: string | undefined): Promise<void> {
  const { req, deps } = ctx;
  const limit = deps.limits.maxUploadBytes;
  checkDeclaredLength(req, limit, 'upload');
  let stored: UploadedFile;
  try {
    stored = await deps.blobs.put(req, { maxBytes: limit, expectedSha256: expected?.toLowerCase() });
  } catch (err) {
    // The blob store's message names the limit; keep one wording for 413s.
    if (err instanceof ReefError && err.code === 'REEF_TOO_LARGE') throw tooLarge(limit, 'upload');
    throw err;
  }
  ctx.logger.info({ sha256: stored.sha256, size: stored.size, apiKey: ctx.key?.id }, 'api: file uploaded');
  await auditRequest(ctx, { kind: 'file.uploaded', target: { id: stored.sha256, name: null }, details: { size: stored.size } });
  sendJson(ctx.res, 201, stored);
}
