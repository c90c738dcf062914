import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { ReefError } from '../errors.js';
import { writeFileAtomic } from '../durable-fs.js';
import { withFileLock } from './file-lock.js';
import { instanceIndexPath, tentacleRoot, validateInstanceName } from './paths.js';

/**
 * `<root>/instances.json`, the machine's list of Tentacle instances:
 * `{ "version": 1, "instances": { "<name>": "<absolute config file path>" } }`.
 * It holds no settings; each instance's settings live in its own config file.
 */
const IndexSchema = z
  .object({
    version: z.literal(1),
    instances: z.record(
      z.string(),
      z.string().refine((p) => isAbsolute(p), { message: 'must be an absolute path to a config file' }),
    ),
  })
  .strict();

export type InstanceIndex = Record<string, string>;

export interface InstanceRecord {
  name: string;
  configPath: string;
}

export async function readInstanceIndex(root = tentacleRoot()): Promise<InstanceIndex> {
  const path = instanceIndexPath(root);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ReefError('REEF_FILE_UNREADABLE', `Cannot read ${path}: ${(err as Error).message}.`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ReefError('REEF_CONFIG_INVALID', `${path} is not valid JSON (${(err as Error).message}). Fix or remove it.`, {
      cause: err,
    });
  }
  const parsed = IndexSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : '(top level)';
    throw new ReefError('REEF_CONFIG_INVALID', `${path} is invalid at ${where}: ${issue?.message ?? 'unknown problem'}.`);
  }
  return parsed.data.instances;
}

/** Read-modify-write of the index under a lock, written atomically. */
export async function updateInstanceIndex<T>(
  mutate: (index: InstanceIndex) => T | Promise<T>,
  root = tentacleRoot(),
): Promise<T> {
  const path = instanceIndexPath(root);
  return withFileLock(`${path}.lock`, async () => {
    const index = await readInstanceIndex(root);
    const result = await mutate(index);
    const sorted = Object.fromEntries(Object.entries(index).sort(([a], [b]) => a.localeCompare(b)));
    await writeFileAtomic(path, JSON.stringify({ version: 1, instances: sorted }, null, 2) + '\n', { mode: 0o644, dirMode: 0o755 });
    return result;
  });
}

/** Finds an instance's config file, or says how to create the instance. */
export async function resolveInstance(name: string, root = tentacleRoot()): Promise<InstanceRecord> {
  validateInstanceName(name);
  const index = await readInstanceIndex(root);
  const configPath = index[name];
  if (configPath === undefined) {
    const known = Object.keys(index);
    const hint = known.length ? ` Known instances: ${known.join(', ')}.` : ' There are no instances yet.';
    throw new ReefError(
      'REEF_NOT_FOUND',
      `No Tentacle instance named "${name}" in ${instanceIndexPath(root)}.${hint} ` +
        `Create it with "tentacle create-instance --instance ${name}".`,
    );
  }
  return { name, configPath };
}
