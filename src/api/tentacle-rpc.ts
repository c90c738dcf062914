/**
 * The methods a Tentacle serves over comms and their wire types. The server calls them;
 * the tentacle implements them (src/tentacle/rpc-services.ts). Shared by both, so it
 * imports nothing from either.
 */
export const TentacleMethods = {
  capabilities: 'capabilities.get',
  ping: 'health.ping',
  startScript: 'scripts.start',
  scriptStatus: 'scripts.status',
  cancelScript: 'scripts.cancel',
  completeScript: 'scripts.complete',
  beginUpload: 'files.beginUpload',
  upload: 'files.upload',
  download: 'files.download',
  stat: 'files.stat',
} as const;

export interface StartScriptArgs {
  ticket: string;
  syntax: 'bash' | 'sh' | 'powershell';
  body: string;
  timeoutMs?: number;
}

export type ScriptState = 'Running' | 'Complete' | 'Orphaned';

export interface ScriptSummaryWire {
  ticket: string;
  state: ScriptState;
  exitCode?: number | null;
  cancelled?: boolean;
  timedOut?: boolean;
  error?: string;
}

export interface ScriptStatusArgs {
  ticket: string;
  afterSeq: number;
  maxLines?: number;
  /** Long poll: answer as soon as there are lines or the script ends, or after this long. */
  waitMs?: number;
}

export interface ScriptLogLineWire {
  seq: number;
  at: string;
  stream: 'stdout' | 'stderr' | 'system';
  text: string;
}

export interface ScriptStatusWire extends ScriptSummaryWire {
  lines: ScriptLogLineWire[];
  nextSeq: number;
  more: boolean;
}

export interface UploadArgs {
  path: string;
  size: number;
  sha256: string;
}

export interface UploadArgsAt extends UploadArgs {
  offset: number;
}

export interface UploadResultWire {
  path: string;
  size: number;
  sha256: string;
}

export interface CapabilitiesWire {
  tentacleVersion: string;
  os: { platform: string; release: string; arch: string };
  hostname: string;
  shells: Record<string, string | null>;
  nodeVersion: string;
  time: string;
}

export interface PingWire {
  time: string;
  /** How the Tentacle reached the server on this connection: tcp, sni, websocket, with "+proxy" when through a proxy. */
  carrier: string;
}
