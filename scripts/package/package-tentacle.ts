/**
 * `npm run package:tentacle [-- --arch x64,arm64] [--out-dir DIR] [--no-code-cache] [--no-minify]`:
 * builds the single executable Tentacle for each architecture (default both) and prints
 * one JSON line per file built (path, sha256, bytes, ...). Progress goes to stderr.
 */
import { parseArgs } from 'node:util';
import { LINUX_ARCHES, type LinuxArch } from './node-runtime.js';
import { buildTentacleExecutable } from './tentacle-executable.js';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: LINUX_ARCHES.join(',') },
    'out-dir': { type: 'string' },
    'no-code-cache': { type: 'boolean', default: false },
    'no-minify': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write('usage: npm run package:tentacle -- [--arch x64,arm64] [--out-dir DIR] [--no-code-cache] [--no-minify]\n');
  process.exit(0);
}

const arches = values.arch.split(',').map((a) => a.trim());
for (const arch of arches) {
  if (!(LINUX_ARCHES as readonly string[]).includes(arch)) {
    process.stderr.write(`--arch: "${arch}" is not one of ${LINUX_ARCHES.join(', ')}\n`);
    process.exit(2);
  }
}

try {
  for (const arch of arches as LinuxArch[]) {
    const built = await buildTentacleExecutable({
      arch,
      ...(values['out-dir'] ? { outDir: values['out-dir'] } : {}),
      // Code cache by default where it can be made (the build machine's own architecture).
      ...(values['no-code-cache'] ? { codeCache: false } : {}),
      minify: !values['no-minify'],
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`${JSON.stringify(built)}\n`);
  }
} catch (err) {
  process.stderr.write(`package:tentacle failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
