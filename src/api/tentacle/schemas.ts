/**
 * Every Tentacle method's arguments and result as zod schemas. Argument messages are
 * written for the field they follow ("ticket must be ..."), because the Tentacle answers a
 * bad call with them. Results bound every size a hostile Tentacle could inflate (texts,
 * arrays, records); the server checks each answer against them before use. Unknown fields
 * are stripped on both sides, so either end can add an optional field without breaking the
 * other.
 */
import { z } from 'zod';
import { cutLogLine } from './log-line.js';
import { MAX_MESSAGE_CHARS, MAX_PATH_CHARS, MAX_STATUS_LINES } from './limits.js';
import { describeChoices, FILE_TYPES, SCRIPT_LOG_STREAMS, SCRIPT_STATES, SCRIPT_SYNTAXES } from './vocabulary.js';

// ---- fields -----------------------------------------------------------------------

/** Scripts are stored under their ticket's directory on the Tentacle, so it is a safe file name. */
export const TICKET_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
export const TICKET_RULE = 'must be 1 to 100 characters from A-Z, a-z, 0-9, "_" and "-"';

const text = (what = 'a string') => z.string({ required_error: 'is required', invalid_type_error: `must be ${what}` });
const ticket = text().regex(TICKET_PATTERN, TICKET_RULE);
const wholeNumber = (what = 'a whole number') => z.number({ required_error: 'is required', invalid_type_error: `must be ${what}` }).int(`must be ${what}`);
const byteCount = wholeNumber('a whole number of bytes').min(0, 'must be >= 0');
const absolutePath = text()
  .min(1, 'must not be empty')
  .max(MAX_PATH_CHARS, `must be at most ${MAX_PATH_CHARS} characters`)
  .refine((p) => (p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p)) && !p.includes('\0'), 'must be an absolute path');
const sha256 = text().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hexadecimal digits');
const bounded = (max: number) => text().max(max, `must be at most ${max} characters`);
const isoTime = text().max(64, 'must be an ISO 8601 time').datetime({ offset: true, message: 'must be an ISO 8601 time' });
const flag = z.boolean({ invalid_type_error: 'must be true or false' });
const choice = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values as unknown as [T[number], ...T[number][]], { errorMap: () => ({ message: `must be ${describeChoices(values)}` }) });
/** Methods without arguments accept none, or any object (a newer server's options). */
const noArgs = z.object({}).passthrough().nullish();

/** Environment variables as execve takes them: a name without "=" or NUL, a value without NUL. */
const environment = z
  .record(text('a string').refine((value) => !value.includes('\0'), 'must not contain NUL characters'), { invalid_type_error: 'must be an object of strings' })
  .superRefine((env, ctx) => {
    for (const key of Object.keys(env)) {
      if (key === '' || key.includes('=') || key.includes('\0')) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: 'is not a valid environment variable name' });
      }
    }
  });

// ---- scripts ----------------------------------------------------------------------

export const StartScriptArgs = z.object({
  /** Chosen by the server, so a retried start finds the script instead of running it twice. */
  ticket,
  syntax: choice(SCRIPT_SYNTAXES),
  body: text('a string holding the script'),
  /** Cancel the script (as scripts.cancel does) when it runs longer than this. */
  timeoutMs: wholeNumber().positive('must be > 0').optional(),
  args: z.array(text('strings')).optional(),
  /** Added to the Tentacle's own environment. Not written to disk. */
  env: environment.optional(),
  /** Defaults to an empty `work` directory inside the ticket's workspace. */
  cwd: absolutePath.optional(),
});

export const ScriptStatusArgs = z.object({
  ticket,
  /** Answer lines with a greater sequence number; 0 for all. */
  afterSeq: wholeNumber().min(0, 'must be >= 0'),
  /** At most this many lines (default DEFAULT_STATUS_LINES). */
  maxLines: wholeNumber()
    .min(1, `must be from 1 to ${MAX_STATUS_LINES}`)
    .max(MAX_STATUS_LINES, `must be from 1 to ${MAX_STATUS_LINES}`)
    .optional(),
  /** Long poll: answer as soon as there are lines or the script ends, or after this long. */
  waitMs: wholeNumber('a whole number of milliseconds').min(0, 'must be >= 0').optional(),
});

export const TicketArgs = z.object({ ticket });

export const ScriptSummary = z.object({
  ticket,
  state: choice(SCRIPT_STATES),
  /** The script's exit code (128 + n when killed by signal n); absent when unknown. */
  exitCode: wholeNumber().nullish(),
  /** Set once finished: true when it was stopped by a cancel or its timeout. */
  cancelled: flag.optional(),
  timedOut: flag.optional(),
  /** Why the script could not run at all (for example spawn failed). */
  error: bounded(MAX_MESSAGE_CHARS).optional(),
});

export const ScriptLogLine = z.object({
  seq: wholeNumber().min(1, 'must be >= 1'),
  /** When the Tentacle read the line. */
  at: isoTime,
  stream: choice(SCRIPT_LOG_STREAMS),
  /** Longer than MAX_LOG_LINE_BYTES: cut with a marker, not refused (the comms message limit bounds it). */
  text: text().transform(cutLogLine),
});

export const ScriptStatus = ScriptSummary.extend({
  lines: z.array(ScriptLogLine).max(MAX_STATUS_LINES, `must hold at most ${MAX_STATUS_LINES} lines`),
  /** The sequence number the next unseen line will have: ask again with afterSeq = nextSeq - 1. */
  nextSeq: wholeNumber().min(1, 'must be >= 1'),
  /** More lines are already available than this answer holds. */
  more: flag,
});

// ---- files ------------------------------------------------------------------------

export const UploadTarget = z.object({ path: absolutePath, size: byteCount, sha256 });

/** `offset` must equal the bytes already received, as files.beginUpload reported. */
export const UploadArgs = UploadTarget.extend({ offset: byteCount });

export const UploadResume = z.object({ offset: byteCount });

export const UploadResult = z.object({ path: absolutePath, size: byteCount, sha256 });

export const DownloadArgs = z.object({
  path: absolutePath,
  /** Start the body here, to resume a cut download. Default 0. */
  offset: byteCount.optional(),
  /** Hash the whole file first and answer with its SHA-256. */
  sha256: flag.optional(),
});

export const DownloadResult = z.object({ path: absolutePath, size: byteCount, offset: byteCount, sha256: sha256.optional() });

export const StatArgs = z.object({ path: absolutePath });

export const FileStat = z.object({
  path: absolutePath,
  exists: flag,
  type: choice(FILE_TYPES).optional(),
  size: byteCount.optional(),
  modifiedAt: isoTime.optional(),
});

// ---- server trust (certificate rotation) -------------------------------------------

/** The most server thumbprints a Tentacle reports trusting (a hand-edited file may hold a few). */
const MAX_TRUSTED = 64;

/** Only a thumbprint: a server can ask a Tentacle to trust or drop one, nothing else about its trust. */
export const TrustArgs = z.object({ thumbprint: sha256 });

export const TrustResult = z.object({
  /** The Tentacle's trusted server thumbprints after the change. */
  trusted: z.array(sha256).max(MAX_TRUSTED, `must list at most ${MAX_TRUSTED} thumbprints`),
});

// ---- the Tentacle's own certificate (Tentacle certificate rotation) -----------------

/** certificate.switch / certificate.forgetPrevious: the certificate meant, by thumbprint. */
export const CertificateArgs = z.object({ thumbprint: sha256 });

/** The Tentacle's certificates: the one it presents, the one it made next, the one it switched away from. */
export const CertificateState = z.object({
  current: sha256,
  next: sha256.nullable(),
  previous: sha256.nullable(),
});

// ---- health -----------------------------------------------------------------------

export const NoArgs = noArgs;

const MAX_SHELLS = 32;

export const Capabilities = z.object({
  tentacleVersion: bounded(100),
  os: z.object({ platform: bounded(100), release: bounded(200), arch: bounded(100) }),
  hostname: bounded(255),
  /** Path of each shell scripts can run with, null when missing (pwsh runs "powershell" scripts). */
  shells: z
    .record(bounded(MAX_PATH_CHARS).nullable())
    .refine((shells) => Object.keys(shells).length <= MAX_SHELLS, `must name at most ${MAX_SHELLS} shells`)
    .refine((shells) => Object.keys(shells).every((name) => name.length <= 100), 'must have names of at most 100 characters'),
  nodeVersion: bounded(100),
  /** The Tentacle's clock, so the server can spot skew. */
  time: isoTime,
});

export const Pong = z.object({
  time: isoTime,
  /** How the Tentacle reached the server on this connection: tcp, sni, websocket, with "+proxy" when through a proxy. */
  carrier: bounded(100),
});

// ---- self-upgrade (docs/operations.md, "Upgrading Tentacles") -------------------------

/** The states of a Tentacle's last self-upgrade, as upgrade.status reports them. */
export const UPGRADE_STATES = ['none', 'pending', 'confirmed', 'rolled-back'] as const;

const version = bounded(100).min(1, 'must not be empty');

/** The new executable: the version it must report, its size and SHA-256. */
export const UpgradeTarget = z.object({ version, size: byteCount, sha256 });

/** `offset` must equal the bytes already received, as upgrade.begin reported. */
export const UpgradeUploadArgs = UpgradeTarget.extend({ offset: byteCount });

export const UpgradeApplyArgs = z.object({
  version,
  sha256,
  /** How long the new version has to reach a server before the Tentacle rolls back to the previous one. */
  rollbackAfterMs: wholeNumber().min(10_000, 'must be at least 10000 (10 s)').max(24 * 3600 * 1000, 'must be at most a day'),
});

export const UpgradeApplyResult = z.object({ previousVersion: version, executable: absolutePath });

export const UpgradeStatus = z.object({
  /** The version answering. */
  version,
  state: choice(UPGRADE_STATES),
  /** The version the last upgrade installed (absent with state none). */
  toVersion: version.optional(),
  fromVersion: version.optional(),
  /** Why it was rolled back. */
  reason: bounded(MAX_MESSAGE_CHARS).optional(),
  at: isoTime.optional(),
});
