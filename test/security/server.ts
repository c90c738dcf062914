/**
 * A real Reef server node started in-process (startReefServer: SQLite store, comms port,
 * the 443-style front door with a polling hostname, the WebSocket endpoint) on ports
 * chosen by the OS, with one registered Tentacle, for the security tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import { connectTcp } from '../../src/comms/carriers/tcp.js';
import { connectWebSocket } from '../../src/comms/carriers/websocket.js';
import { dialSecure, type DialedSession } from '../../src/comms/dialer.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { startReefServer, type RunningServer, type ServerSettings } from '../../src/server/runtime.js';

export const POLLING_HOSTNAME = 'polling.reef.test';
export const WEBSOCKET_PATH = '/reef/comms';

export interface SecurityServer {
  running: RunningServer;
  dataDir: string;
  adminKey: string;
  api: ApiClient;
  /** Registered with the server. */
  tentacle: CertificateIdentity;
  /** Known to nobody. */
  stranger: CertificateIdentity;
  close(): Promise<void>;
}

export async function startSecurityServer(settings: Partial<ServerSettings> = {}): Promise<SecurityServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'reef-security-'));
  const running = await startReefServer({ dataDir, httpsPort: 0, commsPort: 0, host: '127.0.0.1', pollingHostnames: [POLLING_HOSTNAME], limits: { handshakeTimeoutMs: 5000 }, ...settings });
  const [tentacle, stranger] = await Promise.all([generateCertificate('Tentacle'), generateCertificate('Stranger')]);
  const adminKey = running.initialAdminKey!;
  const api = new ApiClient({ server: `https://127.0.0.1:${running.httpsPort}`, apiKey: adminKey, serverThumbprint: running.info.commsThumbprint, timeoutMs: 10_000 });
  await api.json('POST', '/api/machines', { body: { name: 'web-01', kind: 'target', thumbprint: tentacle.thumbprint, commsStyle: 'polling', environments: ['Production'], roles: ['web'] } });
  return {
    running,
    dataDir,
    adminKey,
    api,
    tentacle,
    stranger,
    async close() {
      await running.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export type Route = 'comms port' | 'front door by SNI' | 'front door by ALPN' | 'WebSocket';
export const ROUTES: Route[] = ['comms port', 'front door by SNI', 'front door by ALPN', 'WebSocket'];

/** Dials the server the way a polling Tentacle does, over one of its routes. */
export function dialRoute(
  s: SecurityServer,
  route: Route,
  options: { identity: CertificateIdentity; expected?: string[]; websocketUrl?: string },
): Promise<DialedSession> {
  const { httpsPort, commsPort } = s.running;
  const base = {
    identity: options.identity,
    expected: options.expected ?? [s.running.info.commsThumbprint],
    explainMismatch: (tp: string) => `The server presented certificate thumbprint ${tp}, which this Tentacle does not trust.`,
    handshakeTimeoutMs: 5000,
  };
  switch (route) {
    case 'comms port':
      return dialSecure({ ...base, host: '127.0.0.1', port: commsPort, carrier: 'tcp' });
    case 'front door by SNI':
      return dialSecure({ ...base, host: POLLING_HOSTNAME, port: httpsPort, carrier: 'tcp', transport: () => connectTcp('127.0.0.1', httpsPort, { timeoutMs: 5000 }) });
    case 'front door by ALPN':
      // Another name entirely: only ALPN reef-comms sends it to comms.
      return dialSecure({ ...base, host: 'reef.example.com', port: httpsPort, carrier: 'tcp', transport: () => connectTcp('127.0.0.1', httpsPort, { timeoutMs: 5000 }) });
    case 'WebSocket': {
      const url = options.websocketUrl ?? `wss://127.0.0.1:${httpsPort}${WEBSOCKET_PATH}`;
      return dialSecure({ ...base, host: '127.0.0.1', port: Number(new URL(url).port), carrier: 'websocket', transport: () => connectWebSocket(url, { timeoutMs: 5000 }) });
    }
  }
}
