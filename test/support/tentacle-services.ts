/**
 * The real Tentacle services (scripts, files, capabilities) over a scratch folder, as a
 * handler table for a test Tentacle on the real comms layer (test/comms/harness.ts).
 * Quick timings: output is tailed and long polls look for news every 20 ms.
 */
import type { Handler } from '../../src/comms/index.js';
import { silentLogger } from '../../src/logging.js';
import { createTentacleServices } from '../../src/tentacle/rpc-services.js';
import { CapabilitiesService } from '../../src/tentacle/services/capabilities.js';
import { FileService } from '../../src/tentacle/services/files.js';
import { ScriptService } from '../../src/tentacle/services/scripts/index.js';

/** `scripts` keeps its workspace in `<dir>/workspace`; close it after the test. */
export function realTentacleServices(dir: string): { scripts: ScriptService; table: Record<string, Handler> } {
  const scripts = new ScriptService({ workspaceDir: `${dir}/workspace`, logger: silentLogger, pollIntervalMs: 20 });
  const table = createTentacleServices({
    scripts,
    files: new FileService({ allowedRoots: [dir], logger: silentLogger }),
    capabilities: new CapabilitiesService(),
    logger: silentLogger,
    statusPollMs: 20,
  });
  return { scripts, table: Object.fromEntries(table) };
}
