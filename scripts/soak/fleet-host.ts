/**
 * One process of the simulated fleet: many polling Tentacles, each the real agent
 * (`startAgent`: comms, RPC services, script service) with its own certificate, home
 * directory and registration, sharing one Node process so that thousands fit on a small
 * machine. Forked by fleet.ts and driven over IPC; see the messages below.
 */
import { mkdir } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { RegisterMachineRequest } from '../../src/api/contract.js';
import { errorMessage } from '../../src/errors.js';
import { createLogger } from '../../src/logging.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { startAgent, type Agent } from '../../src/tentacle/agent.js';
import { defaultConfig, type TentacleConfig } from '../../src/tentacle/config.js';
import { VERSION } from '../../src/version.js';

export interface FleetAssignment {
  serverUrl: string;
  serverThumbprint: string;
  commsPort: number;
  apiKey: string;
  /** Machine names to register and run, one agent each. */
  names: string[];
  /** Under which each agent gets a home directory of its own. */
  root: string;
  environment: string;
  role: string;
}

export type FleetCommand = { type: 'start'; assignment: FleetAssignment } | { type: 'stop' };

export type FleetReport =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  /** `disconnects`: links lost while the fleet ran (a healthy run has none). */
  | { type: 'stopped'; disconnects: number; rssBytes: number };

/** Registrations in flight at once per process: enough to overlap round trips, not a flood. */
const REGISTRATION_CONCURRENCY = 8;

const logger = createLogger('soak-fleet', process.env.REEF_LOG_LEVEL ?? 'warn');
const agents: Agent[] = [];
let disconnects = 0;
let stopping = false;

function report(message: FleetReport): void {
  process.send!(message);
}

async function startTentacle(api: ApiClient, assignment: FleetAssignment, name: string): Promise<void> {
  const identity = await generateCertificate(name);
  const request: RegisterMachineRequest = {
    name,
    kind: 'target',
    thumbprint: identity.thumbprint,
    commsStyle: 'polling',
    environments: [assignment.environment],
    roles: [assignment.role],
    tentacleVersion: VERSION,
  };
  await api.json('POST', '/api/machines', { body: request });

  const home = join(assignment.root, name);
  await mkdir(home, { recursive: true });
  const config: TentacleConfig = {
    ...defaultConfig(name, home),
    trust: [assignment.serverThumbprint],
    servers: [{ thumbprint: assignment.serverThumbprint, address: `tcp://127.0.0.1:${assignment.commsPort}` }],
    // Loopback only: an HTTPS_PROXY in the environment must not capture the fleet.
    pollingProxy: { enabled: false },
  };
  const agent = await startAgent({ config, identity, logger });
  agents.push(agent);
  const [poller] = agent.pollers.values();
  poller!.on('disconnected', () => {
    if (!stopping) disconnects++;
  });
  if (!poller!.connected) await once(poller!, 'connected');
}

async function start(assignment: FleetAssignment): Promise<void> {
  const api = new ApiClient({ server: assignment.serverUrl, apiKey: assignment.apiKey, serverThumbprint: assignment.serverThumbprint });
  const queue = [...assignment.names];
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) await startTentacle(api, assignment, name);
  };
  await Promise.all(Array.from({ length: REGISTRATION_CONCURRENCY }, worker));
}

async function stop(): Promise<void> {
  stopping = true;
  const rssBytes = process.memoryUsage().rss;
  await Promise.all(agents.map((agent) => agent.close()));
  report({ type: 'stopped', disconnects, rssBytes });
  // Scripts are detached by design and hold nothing here; nothing else should keep us.
  process.disconnect();
}

process.on('message', (command: FleetCommand) => {
  const work = command.type === 'start' ? start(command.assignment).then(() => report({ type: 'ready' })) : stop();
  work.catch((err: unknown) => report({ type: 'failed', message: errorMessage(err) }));
});
