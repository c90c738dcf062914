import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';

/** The interpreters a Tentacle can run scripts with; `null` when not installed. */
export interface ShellPaths {
  bash: string | null;
  sh: string | null;
  pwsh: string | null;
}

let detected: Promise<ShellPaths> | undefined;

/**
 * Looks the shells up on PATH once per process: installing pwsh later needs a Tentacle
 * restart to be seen, which keeps every start() from walking PATH again.
 */
export function detectShells(): Promise<ShellPaths> {
  detected ??= (async () => ({
    bash: await findOnPath('bash'),
    sh: await findOnPath('sh'),
    pwsh: await findOnPath('pwsh'),
  }))();
  return detected;
}

async function findOnPath(name: string): Promise<string | null> {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  const exts = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      try {
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not in this directory
      }
    }
  }
  return null;
}
