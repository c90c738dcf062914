/**
 * Every error code Reef uses, declared once: its HTTP status, whether the same request may
 * succeed when made again, and what it means. `ReefError` takes only these codes (a typo
 * does not compile), `src/server/http/errors.ts` answers with their statuses, the retry sets
 * in `errors.ts` come from `retry`, and `docs/errors.md` is generated from this table
 * (`npm run docs:errors`).
 *
 * Adding a code is one line below, in alphabetical order:
 *   REEF_SOMETHING: { http: 400, retry: 'no', meaning: 'What happened, in one sentence.' },
 * then `npm run docs:errors`. `test/errors/catalogue.test.ts` fails on a `REEF_*` string in
 * src/ that is not here, on an unsorted table and on a stale docs/errors.md.
 *
 * - `http`: the status of an API answer with this code. `null` means the code is not an HTTP
 *   error: its messages are not written for API callers, so one that reaches the API is
 *   answered 500 REEF_INTERNAL (the message goes to the server log only).
 * - `retry`: `'no'`; `'later'`, a passing condition (busy, rate limited, a timeout): the same
 *   request may succeed when made again later, nothing repeats it by itself; `'reconnect'`,
 *   the peer could not be reached or refused the call for now: the server makes idempotent
 *   Tentacle calls again once the Tentacle is back; `'link-lost'`, as `'reconnect'`, and the
 *   link dropped under the call (file pushes resume where they stopped).
 *
 * Codes cross process boundaries (RPC error envelopes, verdicts, API error bodies), so a
 * code is never reused for another meaning. Renaming one an older peer may still send means
 * adding its old name to FORMER_CODES.
 */

export type Retry = 'no' | 'later' | 'reconnect' | 'link-lost';

export interface ErrorCodeInfo {
  readonly http: number | null;
  readonly retry: Retry;
  readonly meaning: string;
}

export const ERROR_CODES = {
  REEF_BAD_API_KEY: { http: 401, retry: 'no', meaning: 'The API key sent is unknown, revoked or mistyped.' },
  REEF_BAD_CERTIFICATE: { http: null, retry: 'no', meaning: 'A certificate could not be read (not PEM, DER or PKCS#12, empty, or damaged), or only a key was given.' },
  REEF_BAD_CWD: { http: null, retry: 'no', meaning: "The working directory asked for a script does not exist on the Tentacle (or is not a directory)." },
  REEF_BAD_HTTP: { http: 400, retry: 'no', meaning: 'The request is not well-formed HTTP/1.1.' },
  REEF_BAD_JSON: { http: 400, retry: 'no', meaning: 'The request body is not valid JSON.' },
  REEF_BAD_OFFSET: { http: null, retry: 'no', meaning: "A file transfer's offset is not a whole number within the file, or does not continue the partial upload the Tentacle holds." },
  REEF_BAD_PASSWORD: { http: null, retry: 'no', meaning: 'The password does not open the encrypted private key or PKCS#12 file.' },
  REEF_BAD_PRIVATE_KEY: { http: null, retry: 'no', meaning: 'A private key could not be read (expected PEM PKCS#8, PKCS#1 or SEC1; OpenSSH keys need converting).' },
  REEF_BAD_PROXY: { http: null, retry: 'no', meaning: 'An HTTP proxy address (a setting or HTTPS_PROXY) is not an http://host:port URL.' },
  REEF_BAD_RESPONSE: { http: null, retry: 'no', meaning: "The server's answer is not what a Reef server of this version sends: not JSON, a field missing, or an HTTP error without a Reef error body (a proxy in front?)." },
  REEF_BAD_SERVER_ADDRESS: { http: null, retry: 'no', meaning: 'A server address is not a URL Reef can use: https://host[:port], tcp://host:port or wss://host[:port]/path, without credentials.' },
  REEF_BAD_THUMBPRINT: { http: 400, retry: 'no', meaning: 'A value is not a SHA-256 certificate thumbprint (64 hexadecimal digits, colons allowed).' },
  REEF_BODY_FAILED: { http: null, retry: 'later', meaning: "A call's streamed body could not be sent (its source or the stream failed); a file push resumes from where it stopped." },
  REEF_BUSY: { http: 429, retry: 'later', meaning: 'The server is checking too many passwords or legacy API keys at once; Retry-After says when to try again.' },
  REEF_CALL_CANCELLED: { http: null, retry: 'no', meaning: 'The caller cancelled the call or the connection attempt (a cancelled task, a stop, a caller that went away).' },
  REEF_CALL_REFUSED: { http: null, retry: 'reconnect', meaning: 'The peer refused the call for now: too many calls in flight on the connection.' },
  REEF_CALL_RESET: { http: null, retry: 'link-lost', meaning: "The peer reset the call's stream." },
  REEF_CANNOT_LISTEN: { http: null, retry: 'no', meaning: "A port could not be opened: ports below 1024 need privileges, and the address must be one of this machine's (the Tentacle also says so for a port in use)." },
  REEF_CERTIFICATE_SWITCH_REFUSED: { http: null, retry: 'no', meaning: 'A Tentacle refused to switch to a certificate that is neither its current one nor the next one it made (a Tentacle certificate rotation out of step).' },
  REEF_COMMAND_FAILED: { http: null, retry: 'no', meaning: 'A system command (systemctl, useradd, getent) could not be run or failed; the message has its output.' },
  REEF_CONFIG_INVALID: { http: null, retry: 'no', meaning: 'A configuration is invalid: a config file, the Tentacle instance index, or an environment variable; the message names it and the field.' },
  REEF_CONFLICT: { http: 409, retry: 'no', meaning: 'The name, thumbprint or key is taken already (a machine, user, API key, Tentacle instance or config file).' },
  REEF_CONNECTION_LOST: { http: null, retry: 'link-lost', meaning: 'The connection dropped or was closed by the peer during a call, a message or a handshake.' },
  REEF_CONNECT_FAILED: { http: null, retry: 'reconnect', meaning: 'Could not connect: refused, unresolvable, unreachable, or no answer in time.' },
  REEF_CSRF_REJECTED: { http: 403, retry: 'no', meaning: "A portal request that changes something did not carry the session's CSRF token." },
  REEF_DEADLINE_EXCEEDED: { http: null, retry: 'later', meaning: 'A call or an API request got no answer within its deadline.' },
  REEF_DOWNLOAD_CHANGED: { http: 503, retry: 'later', meaning: 'A file under /downloads/ changed while its SHA-256 was computed (it is still being copied in).' },
  REEF_FILE_NOT_FOUND: { http: null, retry: 'no', meaning: 'A file named by a command, a setting or a file transfer does not exist, or is not a file.' },
  REEF_FILE_UNREADABLE: { http: null, retry: 'no', meaning: 'A file exists but could not be read (permissions, an I/O error); the message names it.' },
  REEF_FORBIDDEN: { http: 403, retry: 'no', meaning: "The caller's role does not allow what was asked (details name the permission and the roles that have it), or a scoped key or user asked for something that covers the whole server." },
  REEF_FRONT_DOOR_INVALID: { http: null, retry: 'no', meaning: 'A connection to the HTTPS port sent an invalid PROXY protocol header or TLS ClientHello.' },
  REEF_FRONT_DOOR_TIMEOUT: { http: null, retry: 'no', meaning: 'A connection to the HTTPS port did not send its PROXY protocol header or TLS ClientHello in time.' },
  REEF_HANDSHAKE_TIMEOUT: { http: null, retry: 'later', meaning: 'The TLS handshake of a comms connection did not complete in time.' },
  REEF_HASH_MISMATCH: { http: 400, retry: 'no', meaning: 'Received bytes do not have the SHA-256 announced for them (the file changed or was damaged on the way).' },
  REEF_HEADERS_TOO_LARGE: { http: 431, retry: 'no', meaning: "The request's header fields are over 16 KiB, or its whole head over 64 KiB." },
  REEF_HEARTBEAT_TIMEOUT: { http: null, retry: 'link-lost', meaning: 'Nothing arrived from the peer within the heartbeat timeout, not even the answer to a heartbeat PING; the link is considered dead.' },
  REEF_IDENTITY_INCOMPLETE: { http: null, retry: 'no', meaning: 'Only one of a certificate and its private key exists on disk.' },
  REEF_IDENTITY_MISSING: { http: null, retry: 'no', meaning: 'No certificate or private key exists yet where one is expected.' },
  REEF_IDENTITY_UNWRITABLE: { http: null, retry: 'no', meaning: 'A certificate or private key file, or its folder, could not be written.' },
  REEF_INTERNAL: { http: 500, retry: 'no', meaning: 'An unexpected failure; the details are only in the log of the process that failed.' },
  REEF_INVALID_ARGUMENT: { http: 400, retry: 'no', meaning: 'A value is not valid: a command-line option, an RPC argument, or a field the store checks; the message names it.' },
  REEF_INVALID_REQUEST: { http: 400, retry: 'no', meaning: 'The API request failed its schema, query or header check; details.problems lists each path and problem.' },
  REEF_IN_USE: { http: 409, retry: 'no', meaning: 'Cannot delete something still in use: a group with machines, a file an unfinished task needs, a Tentacle instance with a service.' },
  REEF_JOIN_TOKEN_EXPIRED: { http: 401, retry: 'no', meaning: 'The join token sent is past its expiry time; an administrator makes a new one with `reef tokens create`.' },
  REEF_JOIN_TOKEN_INVALID: { http: 401, retry: 'no', meaning: 'The join token sent is unknown or mistyped.' },
  REEF_JOIN_TOKEN_NOT_ALLOWED: { http: 403, retry: 'no', meaning: 'A join token was sent to a route other than machine registration: it can register a machine and do nothing else.' },
  REEF_JOIN_TOKEN_OUT_OF_SCOPE: { http: 403, retry: 'no', meaning: 'A registration with a join token asked for a kind, environment, role or worker pool the token does not cover, or to replace a machine (`force`).' },
  REEF_JOIN_TOKEN_REVOKED: { http: 401, retry: 'no', meaning: 'The join token sent was revoked; an administrator makes a new one with `reef tokens create`.' },
  REEF_JOIN_TOKEN_USED_UP: { http: 401, retry: 'no', meaning: 'The join token sent has been used for all the registrations it allowed; an administrator makes a new one with `reef tokens create`.' },
  REEF_KEY_MISMATCH: { http: null, retry: 'no', meaning: 'The private key does not belong to the certificate.' },
  REEF_LISTENING_REFUSED: { http: null, retry: 'later', meaning: 'The server dialled a listening Tentacle until the pickup timeout and every connection was refused (TCP reset): nothing listens on its port, or a firewall rejects.' },
  REEF_LISTENING_TLS_FAILED: { http: null, retry: 'no', meaning: "TCP to a listening Tentacle connected, but the TLS handshake failed (timed out, reset, or not Reef's TLS): another service on the port, or a device on the way interfering." },
  REEF_LISTENING_UNREACHABLE: { http: null, retry: 'later', meaning: 'The server dialled a listening Tentacle until the pickup timeout and got no answer (a firewall dropping, the host down), an unreachable host or network, or a name that does not resolve.' },
  REEF_LOCK_TIMEOUT: { http: null, retry: 'later', meaning: "Another tentacle command kept the instance files' lock too long." },
  REEF_LOG_STREAM_LOST: { http: null, retry: 'no', meaning: "The CLI lost a task's log stream; the task keeps running (watch it again)." },
  REEF_MESSAGE_TOO_LARGE: { http: null, retry: 'no', meaning: 'An RPC message is larger than maxMessageBytes; large content goes in a streamed body.' },
  REEF_METHOD_NOT_ALLOWED: { http: 405, retry: 'no', meaning: 'The API route exists but not for this method; Allow lists the methods.' },
  REEF_MIGRATION_FAILED: { http: null, retry: 'no', meaning: 'A store migration failed and was rolled back.' },
  REEF_MIGRATION_INVALID: { http: null, retry: 'no', meaning: "The store's migration files are inconsistent (two share a number)." },
  REEF_NOTHING_TO_SERVE: { http: null, retry: 'no', meaning: 'A Tentacle instance has no server to poll and does not listen, so its agent has nothing to do.' },
  REEF_NOT_A_FILE: { http: null, retry: 'no', meaning: 'A file transfer names a directory or something else that is not a regular file.' },
  REEF_NOT_FOUND: { http: 404, retry: 'no', meaning: 'The named thing does not exist: a machine, task, file, environment, worker pool, API key, user, script ticket or Tentacle instance.' },
  REEF_NO_CLIENT_CERTIFICATE: { http: null, retry: 'no', meaning: 'Verdict: the comms peer presented no client certificate.' },
  REEF_NO_MACHINES: { http: 422, retry: 'no', meaning: "A task's target matches no machine." },
  REEF_NO_PRIVATE_KEY: { http: null, retry: 'no', meaning: 'A certificate was given without its private key.' },
  REEF_NO_ROUTE: { http: 404, retry: 'no', meaning: 'No API route matches the path.' },
  REEF_NO_SYSTEMD: { http: null, retry: 'no', meaning: 'systemd is not running on this machine, so there is no service manager to install into.' },
  REEF_OUT_OF_SCOPE: { http: 403, retry: 'no', meaning: "A task's target, a registration or a machine reaches outside the environments and worker pools the caller is limited to; nothing was done." },
  REEF_PASSWORD_REQUIRED: { http: null, retry: 'no', meaning: 'The private key or PKCS#12 file is encrypted and no password was given.' },
  REEF_PATH_NOT_ALLOWED: { http: null, retry: 'no', meaning: "A file transfer's path is outside the directories the Tentacle allows transfers in." },
  REEF_PATH_PROTECTED: { http: null, retry: 'no', meaning: "A file transfer's path is one of the Tentacle's own files (home, configuration, keys, workspace, logs, program)." },
  REEF_PEER_ERROR: { http: null, retry: 'no', meaning: 'Another Reef process (newer than this one) sent an error code this version does not know; its message says what happened.' },
  REEF_PORT_IN_USE: { http: null, retry: 'no', meaning: 'Another program already listens on the port.' },
  REEF_PROTOCOL_ERROR: { http: null, retry: 'no', meaning: 'The peer broke the protocol: a malformed frame, verdict or answer, or an answer that fails its schema.' },
  REEF_PROXY_AUTH_REQUIRED: { http: null, retry: 'no', meaning: 'The HTTP proxy wants credentials (407), or refused the ones given.' },
  REEF_PROXY_PROTOCOL: { http: null, retry: 'no', meaning: 'The HTTP proxy did not answer CONNECT in HTTP, or closed the connection before answering.' },
  REEF_PROXY_REFUSED: { http: null, retry: 'no', meaning: 'The HTTP proxy refused CONNECT to the target (its status line is in the message).' },
  REEF_PROXY_TIMEOUT: { http: null, retry: 'later', meaning: 'The HTTP proxy did not answer CONNECT in time.' },
  REEF_PROXY_UNREACHABLE: { http: null, retry: 'later', meaning: 'The HTTP proxy itself could not be reached.' },
  REEF_RATE_LIMITED: { http: 429, retry: 'later', meaning: 'Too many failed API key attempts from this address; Retry-After says when to try again.' },
  REEF_REFUSED: { http: null, retry: 'no', meaning: 'Verdict: the peer refused the connection without giving a code.' },
  REEF_REGISTRATION_ONLY: { http: null, retry: 'no', meaning: 'A registration-only comms session (a certificate dialled to register) was asked for anything but its one registration call, or for a second call.' },
  REEF_REGISTRATION_UNAVAILABLE: { http: null, retry: 'no', meaning: 'Registration over comms cannot be done: the server does not offer it (older), or the carrier cannot carry it end to end.' },
  REEF_ROTATION_IN_PROGRESS: { http: 409, retry: 'no', meaning: 'A server certificate rotation is already under way; complete it before starting another.' },
  REEF_ROTATION_NOT_CONFIRMED: { http: null, retry: 'later', meaning: 'A Tentacle switched to its new certificate but did not connect with it within the pickup timeout; the server accepts either until it does, and a re-run finishes the rotation.' },
  REEF_ROTATION_NOT_STARTED: { http: 409, retry: 'no', meaning: 'No server certificate rotation is under way (start one with "reef server rotate-certificate").' },
  REEF_SERVER_BUSY: { http: 503, retry: 'later', meaning: 'The server was saturated and turned a new comms connection away before TLS (a busy alert, or 503 on a WebSocket upgrade); the Tentacle waits the hint, at most 30 s, and tries again.' },
  REEF_SERVICE_NEEDS_ROOT: { http: null, retry: 'no', meaning: 'Installing or removing a systemd service needs root.' },
  REEF_SERVICE_NOT_INSTALLED: { http: null, retry: 'no', meaning: "The Tentacle instance's service is not installed." },
  REEF_SERVICE_RUNNING: { http: null, retry: 'no', meaning: "The Tentacle instance's agent is already running, or another start is in progress (its pid file)." },
  REEF_SERVICE_START_FAILED: { http: null, retry: 'no', meaning: "The Tentacle instance's supervised agent did not start; its log says why." },
  REEF_SESSION_EXPIRED: { http: 401, retry: 'no', meaning: 'The portal session has ended or is not valid; sign in again.' },
  REEF_SHELL_UNAVAILABLE: { http: null, retry: 'no', meaning: "The interpreter for the script's syntax is not on the Tentacle's PATH." },
  REEF_SHUTTING_DOWN: { http: 503, retry: 'reconnect', meaning: 'The server or Tentacle (or the part that was asked) is shutting down; ask again once it is back.' },
  REEF_STORE_BUSY: { http: null, retry: 'later', meaning: 'The SQLite store stayed locked by another process; one server per SQLite file.' },
  REEF_STORE_CLOSED: { http: null, retry: 'no', meaning: 'The store was used after it was closed.' },
  REEF_STORE_OPEN_FAILED: { http: null, retry: 'no', meaning: 'The store could not be opened or reached at start-up.' },
  REEF_STORE_TOO_NEW: { http: null, retry: 'no', meaning: 'The database was migrated by a newer Reef; run that version.' },
  REEF_STORE_UNAVAILABLE: { http: null, retry: 'later', meaning: 'The PostgreSQL store could not be reached.' },
  REEF_TASK_CANCELLED: { http: null, retry: 'no', meaning: 'CLI: the task it ran or watched ended Cancelled (exit code 1).' },
  REEF_TASK_FAILED: { http: null, retry: 'no', meaning: 'CLI: the task it ran or watched ended Failed (exit code 1).' },
  REEF_TASK_TIMEDOUT: { http: null, retry: 'no', meaning: 'CLI: the task it ran or watched ended TimedOut (exit code 1).' },
  REEF_TENTACLE_LOST: { http: null, retry: 'no', meaning: 'Contact with a Tentacle running a script was lost and it did not come back in time.' },
  REEF_TENTACLE_NOT_CONNECTED: { http: null, retry: 'later', meaning: 'A polling Tentacle did not connect to collect its work within the pickup timeout.' },
  REEF_THUMBPRINT_TAKEN: { http: 409, retry: 'no', meaning: "A Tentacle's new certificate thumbprint is already another machine's (current or pending), so it was not recorded." },
  REEF_TICKET_COMPLETED: { http: null, retry: 'no', meaning: 'The script ticket was completed already; a ticket runs once.' },
  REEF_TICKET_EXPIRED: { http: null, retry: 'no', meaning: 'The script finished but was not collected within the Tentacle\'s retention period, so its lines and outcome were removed.' },
  REEF_TICKET_RUNNING: { http: null, retry: 'later', meaning: 'The script is still running, so it cannot be completed yet.' },
  REEF_TOO_LARGE: { http: 413, retry: 'no', meaning: 'The request body or upload is over its limit.' },
  REEF_TOO_MANY_CONNECTIONS: { http: null, retry: 'later', meaning: 'Verdict: this Tentacle certificate has too many connections open already.' },
  REEF_TOO_MANY_REQUESTS: { http: 429, retry: 'later', meaning: 'This API key, portal user or (without credentials) client address has used its request budget for now; Retry-After says when to try again.' },
  REEF_TRUST_CHANGE_REFUSED: { http: null, retry: 'no', meaning: 'A Tentacle refused a change to its trusted server thumbprints (dropping the one the request came over, or no remote changes allowed).' },
  REEF_TRUST_REVOKED: { http: null, retry: 'no', meaning: 'Trust in the peer was withdrawn (a machine deleted, a server no longer trusted); its connections are closed.' },
  REEF_UNAUTHENTICATED: { http: 401, retry: 'no', meaning: 'No credentials: the request carried no API key or session, or the CLI was given no API key.' },
  REEF_UNIT_VALUE: { http: null, retry: 'no', meaning: 'A value cannot be written into a systemd unit (a control character, a relative path, a quote).' },
  REEF_UNKNOWN_METHOD: { http: null, retry: 'no', meaning: 'The Tentacle has no such RPC method (it is older than the server).' },
  REEF_UNSUPPORTED_KEY: { http: null, retry: 'no', meaning: 'The private key is of a type or curve TLS cannot use here.' },
  REEF_UNSUPPORTED_MEDIA_TYPE: { http: 415, retry: 'no', meaning: "The request's Content-Type (or charset) is not the one the endpoint takes." },
  REEF_UNTRUSTED_CERTIFICATE: { http: null, retry: 'no', meaning: 'The peer presented a certificate that is not the pinned or trusted one; nothing was sent.' },
  REEF_UPGRADE_CHECK_FAILED: { http: null, retry: 'no', meaning: 'A Tentacle refused a new executable: it did not run, or reported another version than expected, so nothing was swapped.' },
  REEF_UPGRADE_ROLLED_BACK: { http: null, retry: 'no', meaning: 'The new Tentacle version did not reach a server within the rollback limit, so the Tentacle went back to the previous executable.' },
  REEF_UPGRADE_UNSUPPORTED: { http: null, retry: 'no', meaning: 'The Tentacle cannot self-upgrade: it does not run as the single executable (installed from a git clone or npm), or its folder is not writable.' },
  REEF_UPLOAD_BUSY: { http: null, retry: 'later', meaning: 'Another upload to the same path is in progress on the Tentacle.' },
  REEF_UPLOAD_INCOMPLETE: { http: null, retry: 'later', meaning: 'An upload ended before all its bytes arrived; a Tentacle upload resumes from the offset the message names.' },
  REEF_UPLOAD_TOO_LARGE: { http: null, retry: 'no', meaning: 'An upload sent more bytes than it announced; they were discarded.' },
  REEF_URL_TOO_LONG: { http: 414, retry: 'no', meaning: "The request's URL (path and query) is over 16 KiB." },
  REEF_WEAK_KEY: { http: null, retry: 'no', meaning: 'The RSA key is shorter than Reef accepts.' },
  REEF_WEBSOCKET_FAILED: { http: null, retry: 'no', meaning: "The WebSocket's outer TLS handshake or upgrade failed (is the endpoint HTTPS?)." },
  REEF_WEBSOCKET_REFUSED: { http: null, retry: 'no', meaning: "The WebSocket endpoint answered with an HTTP status instead of accepting (check the server's --websocket-path)." },
  REEF_WEBSOCKET_TIMEOUT: { http: null, retry: 'later', meaning: 'The WebSocket was not open in time.' },
  REEF_WRONG_PASSWORD: { http: 403, retry: 'no', meaning: 'The current password given to change a password is not right.' },
  REEF_WRONG_PORT: { http: null, retry: 'no', meaning: "The address given to the admin CLI is a Reef server's comms port; the API is on its HTTPS port." },
} as const satisfies Record<`REEF_${string}`, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes that have an HTTP status: the only ones an `HttpError` may carry. */
export type HttpErrorCode = { [C in ErrorCode]: (typeof ERROR_CODES)[C]['http'] extends number ? C : never }[ErrorCode];

/**
 * Old names of merged codes that an older peer may still send (a Tentacle's RPC errors):
 * read on receipt as today's code. docs/protocol.md lists them.
 */
export const FORMER_CODES: Readonly<Record<string, ErrorCode>> = {
  REEF_BAD_PATH: 'REEF_INVALID_ARGUMENT',
  REEF_BAD_REQUEST: 'REEF_INVALID_ARGUMENT',
  REEF_BAD_TICKET: 'REEF_INVALID_ARGUMENT',
  REEF_CLOSED: 'REEF_SHUTTING_DOWN',
  REEF_CONNECTION_CLOSED: 'REEF_CONNECTION_LOST',
  REEF_TICKET_NOT_FOUND: 'REEF_NOT_FOUND',
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The HTTP status of an API answer with `code`, or null when the code is not an HTTP error. */
export function httpStatusOf(code: ErrorCode): number | null {
  return ERROR_CODES[code].http;
}

export function codesWhere(test: (info: ErrorCodeInfo) => boolean): ErrorCode[] {
  return (Object.keys(ERROR_CODES) as ErrorCode[]).filter((code) => test(ERROR_CODES[code]));
}
