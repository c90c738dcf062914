import type { FileInUse, UploadedFile } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { checkSha256 } from '../../files/blobs.js';
import { filesNeededByUnfinishedTasks } from '../../files/retention.js';
import { checkDeclaredLength, requireMediaType, tooLarge } from '../body.js';
import type { ApiContext, RouteTable } from '../context.js';
import { HttpError } from '../errors.js';
import { sendEmpty, sendJson } from '../respond.js';

export const SHA256_HEADER = 'x-reef-sha256';

export function fileRoutes(routes: RouteTable): void {
  routes.add('POST', '/api/files', upload);
  routes.add('GET', '/api/files/:sha256', async ({ res, deps, params }) => {
    const sha256 = checkSha256(params.sha256!.toLowerCase());
    const found = await deps.blobs.stat(sha256);
    if (!found) throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${sha256}.`);
    sendJson(res, 200, { sha256, size: found.size } satisfies UploadedFile);
  });
  routes.add('DELETE', '/api/files/:sha256', remove);
}

/** Every API key and portal user is an administrator, so any authenticated caller may delete. */
async function remove(ctx: ApiContext): Promise<void> {
  const { res, deps, params } = ctx;
  const sha256 = checkSha256(params.sha256!.toLowerCase());
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
  sendEmpty(res, 204);
}

async function upload(ctx: ApiContext): Promise<void> {
  const { req, deps } = ctx;
  requireMediaType(req, 'application/octet-stream');
  const limit = deps.limits.maxUploadBytes;
  checkDeclaredLength(req, limit, 'upload');
  const header = req.headers[SHA256_HEADER];
  let expectedSha256: string | undefined;
  if (typeof header === 'string' && header.trim() !== '') {
    try {
      expectedSha256 = checkSha256(header.trim().toLowerCase());
    } catch {
      throw new HttpError('REEF_INVALID_REQUEST', `The ${SHA256_HEADER} header must be a SHA-256 (64 hexadecimal digits), not "${header.slice(0, 80)}".`);
    }
  }
  let stored: UploadedFile;
  try {
    stored = await deps.blobs.put(req, { maxBytes: limit, expectedSha256 });
  } catch (err) {
    // The blob store's message names the limit; keep one wording for 413s.
    if (err instanceof ReefError && err.code === 'REEF_TOO_LARGE') throw tooLarge(limit, 'upload');
    throw err;
  }
  ctx.logger.info({ sha256: stored.sha256, size: stored.size, apiKey: ctx.key?.id }, 'api: file uploaded');
  sendJson(ctx.res, 201, stored);
}
