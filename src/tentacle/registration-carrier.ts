/**
 * Which carrier a Tentacle polls on, and registering over that carrier: the comms
 * carrier's inner mutual TLS, pinned to the server's thumbprint, carries the one
 * registration call, so it works where a TLS-terminating proxy stands in front of the
 * portal (docs/protocol.md, "Registration over comms").
 */
import type { RegisterOverCommsArgs, RegistrationCredentials } from '../api/comms-registration.js';
import type { RegisterMachineRequest, RegisterMachineResponse } from '../api/contract.js';
import { registerOverComms } from '../comms/index.js';
import { isReefError, ReefError } from '../errors.js';
import { loadIdentity } from '../pki/identity-files.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { DEFAULT_SERVER_COMMS_PORT, type PolledServer, type TentacleConfig } from './config.js';
import { pollTargetFor } from './network.js';
import { homeFiles } from './paths.js';

/** Which carrier to poll with; the comms port of the server by default. */
export interface PollingCarrierOptions {
  /** The server's comms port to poll; default the port the server reports, else 10943. */
  serverCommsPort?: number;
  /** https://host[:port]: the 443 front door (or an SNI-routing proxy); SNI is the host. */
  serverCommsAddress?: string;
  /** wss://host[:port]/path: a WebSocket on the portal's port. */
  serverWebSocket?: string;
}

/** The option that registers over the carrier, named in messages. */
export const OVER_COMMS_OPTION = '--over-comms';

/** The server node to poll, by the carrier the options chose. */
export function polledServer(apiUrl: URL, thumbprint: Thumbprint, options: PollingCarrierOptions, reportedPort: number | undefined): PolledServer {
  const apiUrlText = apiUrl.origin;
  if (options.serverWebSocket !== undefined && options.serverCommsAddress !== undefined) {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'Choose one of --server-web-socket and --server-comms-address.');
  }
  if (options.serverWebSocket !== undefined) {
    return { thumbprint, address: checkedUrl(options.serverWebSocket, 'wss:', '--server-web-socket', 'wss://example.com/reef/comms'), apiUrl: apiUrlText };
  }
  if (options.serverCommsAddress !== undefined) {
    return { thumbprint, address: checkedUrl(options.serverCommsAddress, 'https:', '--server-comms-address', 'https://polling.example.com'), apiUrl: apiUrlText };
  }
  const port = options.serverCommsPort ?? reportedPort;
  const commsPort = Number.isInteger(port) && port! >= 1 && port! <= 65535 ? port! : DEFAULT_SERVER_COMMS_PORT;
  return { thumbprint, address: `tcp://${apiUrl.hostname}:${commsPort}`, apiUrl: apiUrlText };
}

function checkedUrl(value: string, protocol: string, option: string, example: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ReefError('REEF_INVALID_ARGUMENT', `${option} "${value}" is not a URL; expected e.g. ${example}.`);
  }
  if (url.protocol !== protocol || !url.hostname) throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must look like ${example} (got "${value}").`);
  if (protocol === 'https:' && url.pathname !== '/') throw new ReefError('REEF_INVALID_ARGUMENT', `${option} takes no path (got "${value}").`);
  return protocol === 'https:' ? url.origin : url.href;
}

/**
 * Registers over the comms carrier `options` choose: dials it with this Tentacle's own
 * certificate, pins `pinned` (the server's comms thumbprint) in the inner TLS, and makes the
 * one call of a registration-only session. The API key goes inside that TLS only.
 */
export async function registerThroughCarrier(
  options: PollingCarrierOptions & { server: URL; credentials: RegistrationCredentials; pinned: Thumbprint },
  config: TentacleConfig,
  request: RegisterMachineRequest,
): Promise<RegisterMachineResponse> {
  const { pinned } = options;
  const server: PolledServer = polledServer(options.server, pinned, options, undefined);
  const target = pollTargetFor(server, () => config, () => [pinned]);
  const identity = await loadIdentity(config.home, homeFiles.certBaseName, `Create one with "tentacle new-certificate --instance ${config.instance}".`);
  try {
    return (await registerOverComms(
      {
        identity,
        target,
        pinned,
        explainMismatch: (presented) => innerMismatch(server.address, presented, pinned),
      },
      { ...options.credentials, request } satisfies RegisterOverCommsArgs,
    )) as RegisterMachineResponse;
  } catch (err) {
    throw explainCarrierFailure(err, server.address);
  }
}

/**
 * The inner TLS showed another certificate. A proxy that terminates the outer TLS cannot
 * cause this (it relays the inner TLS untouched), so either the thumbprint given is not
 * this server's, or something re-signs even the inner TLS, which no registration (and no
 * polling) can pass: that is what the inner TLS is for.
 */
function innerMismatch(address: string, presented: Thumbprint, pinned: Thumbprint): string {
  return (
    `Registering over ${address}: the certificate inside the comms carrier's own TLS has thumbprint ${presented}, not ${pinned} ` +
    `as given with --server-thumbprint; nothing was sent (the API key neither). A proxy that terminates the outer TLS cannot cause this: ` +
    `the inner TLS goes end to end to the Reef server. Run "reef server show-thumbprint" on the server itself. If it prints ${pinned}, ` +
    `something between this machine and the server re-signs even the inner TLS (a TLS-inspecting relay, or another server answering ` +
    `at that address): Reef cannot register or poll through it, by design; have it pass ${address} through untouched, or register from ` +
    `a network without it. Only if the server prints ${presented} was the thumbprint given wrong: pass the one it prints.`
  );
}

/** A dial that failed before the server could answer is said as such, with what to check. */
function explainCarrierFailure(err: unknown, address: string): unknown {
  if (!(err instanceof ReefError)) return err;
  // Told by the server itself, or already explained: as they are.
  if (err.code === 'REEF_UNTRUSTED_CERTIFICATE' || err.code === 'REEF_REGISTRATION_UNAVAILABLE' || !isDialFailure(err)) return err;
  const websocket = address.startsWith('wss:');
  return new ReefError(
    err.code,
    `Could not register over the comms carrier ${address}: ${err.message.replace(/\.?\s*$/, '.')} ` +
      'Registering over comms needs the carrier this Tentacle will poll on to reach the Reef server: ' +
      (websocket
        ? `check that the proxy in front forwards ${new URL(address).pathname} to the server's HTTPS port as a WebSocket (Upgrade and Connection headers; docs/operations.md).`
        : 'check the address and port, and that a firewall or proxy lets this machine reach it (tentacle polling-proxy for an HTTP proxy).') +
      ' When no carrier can reach the server, register over the HTTPS API instead (without ' + OVER_COMMS_OPTION + '), from a network where no TLS-terminating proxy stands in front of the portal.',
    { cause: err },
  );
}

/** Failures of reaching the server, as opposed to its answers (which carry the API's codes). */
function isDialFailure(err: ReefError): boolean {
  return (
    isReefError(err) &&
    [
      'REEF_CONNECT_FAILED',
      'REEF_CONNECTION_LOST',
      'REEF_HANDSHAKE_TIMEOUT',
      'REEF_WEBSOCKET_FAILED',
      'REEF_WEBSOCKET_REFUSED',
      'REEF_WEBSOCKET_TIMEOUT',
      'REEF_PROXY_REFUSED',
      'REEF_PROXY_UNREACHABLE',
      'REEF_PROXY_PROTOCOL',
      'REEF_PROTOCOL_ERROR',
    ].includes(err.code)
  );
}
