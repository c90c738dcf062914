import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The portal's assets from web/: a flat folder of .js, .css and .svg files. Names are
 * matched against a strict pattern before touching the disk, so no path can leave it.
 */

const NAME = /^[a-z0-9][a-z0-9-]*\.(js|css|svg)$/;
const TYPES: Readonly<Record<string, string>> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

/** web/ beside src/ (run from source) or beside dist/ (built: dist/ mirrors src/). */
export function defaultWebDir(): string {
  return fileURLToPath(new URL('../../../web/', import.meta.url));
}

/** Serves /static/<name>; false when there is no such asset (the caller answers 404). */
export async function serveStatic(res: ServerResponse, webDir: string, name: string): Promise<boolean> {
  const match = NAME.exec(name);
  if (!match) return false;
  let body: Buffer;
  try {
    body = await readFile(join(webDir, name));
  } catch {
    return false;
  }
  res.statusCode = 200;
  res.setHeader('content-type', TYPES[match[1]!]!);
  res.setHeader('content-length', body.length);
  // Revalidated on each load: assets change with the server, and they are small.
  res.setHeader('cache-control', 'no-cache');
  res.end(body);
  return true;
}
