/**
 * The Tentacle's RPC methods: for each, the schema of its arguments, the schema of its
 * answer, and the checks an answer must pass against the call that asked for it. The
 * server calls through this table (src/server/tentacle-client.ts) and the Tentacle serves
 * it (src/tentacle/rpc-services.ts), so a wrong argument or result type on either side is
 * a compile error, and a method added here is served and callable nowhere until both
 * sides implement it.
 */
import type { z } from 'zod';
import { DEFAULT_STATUS_LINES } from './limits.js';
import * as S from './schemas.js';

interface MethodSpec<A extends z.ZodTypeAny, R extends z.ZodTypeAny> {
  args: A;
  result: R;
  /** Problems of a well-formed answer that contradicts its call (for example more lines than asked). */
  contradictions?: (args: z.output<A>, result: z.output<R>) => Problem[];
}

/** A field of an answer and what is wrong with it. */
export interface Problem {
  field: string;
  message: string;
}

function method<A extends z.ZodTypeAny, R extends z.ZodTypeAny>(spec: MethodSpec<A, R>): MethodSpec<A, R> {
  return spec;
}

/** A method whose answer is followed by a streamed body (a file download). */
function streamingMethod<A extends z.ZodTypeAny, R extends z.ZodTypeAny>(spec: MethodSpec<A, R>): MethodSpec<A, R> & { streamsBody: true } {
  return { ...spec, streamsBody: true };
}

const sameTicket = (args: { ticket: string }, result: { ticket: string }): Problem[] =>
  result.ticket === args.ticket ? [] : [{ field: 'ticket', message: `must be ${args.ticket}, the ticket asked about` }];

export const TENTACLE_METHODS = {
  'capabilities.get': method({ args: S.NoArgs, result: S.Capabilities }),
  'health.ping': method({ args: S.NoArgs, result: S.Pong }),
  'scripts.start': method({ args: S.StartScriptArgs, result: S.ScriptSummary, contradictions: sameTicket }),
  'scripts.status': method({ args: S.ScriptStatusArgs, result: S.ScriptStatus, contradictions: statusContradictions }),
  'scripts.cancel': method({ args: S.TicketArgs, result: S.ScriptSummary, contradictions: sameTicket }),
  'scripts.complete': method({ args: S.TicketArgs, result: S.TicketArgs, contradictions: sameTicket }),
  'files.beginUpload': method({
    args: S.UploadTarget,
    result: S.UploadResume,
    contradictions: (args, result) => (result.offset <= args.size ? [] : [{ field: 'offset', message: `must be at most the file's size, ${args.size}` }]),
  }),
  'files.upload': method({
    args: S.UploadArgs,
    result: S.UploadResult,
    contradictions: (args, result) => [
      ...(result.size === args.size ? [] : [{ field: 'size', message: `must be ${args.size}, the size sent` }]),
      ...(result.sha256.toLowerCase() === args.sha256.toLowerCase() ? [] : [{ field: 'sha256', message: `must be ${args.sha256}, the SHA-256 sent` }]),
    ],
  }),
  'files.download': streamingMethod({ args: S.DownloadArgs, result: S.DownloadResult }),
  'files.stat': method({ args: S.StatArgs, result: S.FileStat }),
  // Server certificate rotation (docs/security.md): served over a link the Tentacle already trusts.
  'trust.add': method({
    args: S.TrustArgs,
    result: S.TrustResult,
    contradictions: (args, result) => (result.trusted.includes(args.thumbprint.toUpperCase()) ? [] : [{ field: 'trusted', message: `must include ${args.thumbprint}, the thumbprint added` }]),
  }),
  'trust.drop': method({
    args: S.TrustArgs,
    result: S.TrustResult,
    contradictions: (args, result) => (result.trusted.includes(args.thumbprint.toUpperCase()) ? [{ field: 'trusted', message: `must not include ${args.thumbprint}, the thumbprint dropped` }] : []),
  }),
  // Tentacle certificate rotation (docs/protocol.md): the Tentacle's own certificate, over a link pinned to it.
  'certificate.state': method({ args: S.NoArgs, result: S.CertificateState }),
  'certificate.prepareNext': method({
    args: S.NoArgs,
    result: S.CertificateState,
    contradictions: (_args, result) => [
      ...(result.next === null ? [{ field: 'next', message: 'must be the thumbprint of the next certificate made' }] : []),
      ...(result.next !== null && result.next === result.current ? [{ field: 'next', message: 'must differ from the current certificate' }] : []),
    ],
  }),
  'certificate.switch': method({
    args: S.CertificateArgs,
    result: S.CertificateState,
    contradictions: (args, result) => (result.current === args.thumbprint.toUpperCase() ? [] : [{ field: 'current', message: `must be ${args.thumbprint}, the certificate switched to` }]),
  }),
  'certificate.forgetPrevious': method({ args: S.CertificateArgs, result: S.CertificateState }),
  // Self-upgrade (docs/operations.md, "Upgrading Tentacles"): the new executable is staged, checked and swapped in.
  'upgrade.begin': method({
    args: S.UpgradeTarget,
    result: S.UploadResume,
    contradictions: (args, result) => (result.offset <= args.size ? [] : [{ field: 'offset', message: `must be at most the file's size, ${args.size}` }]),
  }),
  'upgrade.upload': method({
    args: S.UpgradeUploadArgs,
    result: S.UpgradeTarget,
    contradictions: (args, result) => (result.sha256.toLowerCase() === args.sha256.toLowerCase() ? [] : [{ field: 'sha256', message: `must be ${args.sha256}, the SHA-256 sent` }]),
  }),
  'upgrade.apply': method({ args: S.UpgradeApplyArgs, result: S.UpgradeApplyResult }),
  'upgrade.status': method({ args: S.NoArgs, result: S.UpgradeStatus }),
} as const;

export type TentacleMethod = keyof typeof TENTACLE_METHODS;
/** What a caller passes. */
export type ArgsOf<M extends TentacleMethod> = z.input<(typeof TENTACLE_METHODS)[M]['args']>;
/** What the Tentacle's handler receives, defaults applied. */
export type ParsedArgsOf<M extends TentacleMethod> = z.output<(typeof TENTACLE_METHODS)[M]['args']>;
/** What a caller gets back, once checked. */
export type ResultOf<M extends TentacleMethod> = z.output<(typeof TENTACLE_METHODS)[M]['result']>;
/** Methods answered with a result alone (no streamed body). */
export type PlainMethod = { [M in TentacleMethod]: (typeof TENTACLE_METHODS)[M] extends { streamsBody: true } ? never : M }[TentacleMethod];

/**
 * A status answer holds at most the lines asked for, all after afterSeq, in ascending
 * order, and its nextSeq follows the last of them: the server stores lines by sequence
 * number, so an answer breaking this could hide or repeat output.
 */
function statusContradictions(args: z.output<typeof S.ScriptStatusArgs>, result: z.output<typeof S.ScriptStatus>): Problem[] {
  const problems: Problem[] = [];
  const asked = args.maxLines ?? DEFAULT_STATUS_LINES;
  if (result.lines.length > asked) problems.push({ field: 'lines', message: `must hold at most the ${asked} lines asked for, not ${result.lines.length}` });
  let previous = args.afterSeq;
  for (const [i, line] of result.lines.entries()) {
    if (line.seq <= previous) {
      problems.push({ field: `lines.${i}.seq`, message: `must be greater than ${previous} (after afterSeq, ascending), not ${line.seq}` });
      break;
    }
    previous = line.seq;
  }
  if (problems.length === 0 && result.nextSeq !== previous + 1) problems.push({ field: 'nextSeq', message: `must be ${previous + 1}, one past the last line answered` });
  return problems;
}
