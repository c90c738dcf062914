/**
 * `npm run package [-- --arch x64,arm64] [--out-dir DIR] [--xz]`: builds dist/, the single
 * executable Tentacles, their .deb packages, the server tarball and its .deb, and
 * SHA256SUMS (see packages.ts). Prints each path built; progress goes to stderr.
 * --xz makes the .deb files and the tarball smaller and their build several times slower.
 */
import { parseArgs } from 'node:util';
import { LINUX_ARCHES, type LinuxArch } from './node-runtime.js';
import { buildPackages } from './packages.js';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: LINUX_ARCHES.join(',') },
    'out-dir': { type: 'string' },
    xz: { type: 'boolean', default: false },
  },
});

const arches = values.arch.split(',').map((a) => a.trim());
const unknown = arches.filter((a) => !(LINUX_ARCHES as readonly string[]).includes(a));
if (unknown.length > 0) {
  process.stderr.write(`--arch: ${unknown.join(', ')} is not one of ${LINUX_ARCHES.join(', ')}\n`);
  process.exit(2);
}

try {
  const started = Date.now();
  const paths = await buildPackages({
    arches: arches as LinuxArch[],
    ...(values['out-dir'] ? { outDir: values['out-dir'] } : {}),
    xz: values.xz,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  for (const path of paths) process.stdout.write(`${path}\n`);
  process.stderr.write(`packaged in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
} catch (err) {
  process.stderr.write(`package failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
