import type { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { pipeline } from 'node:stream';
import type { ApiClient } from '../api/client.js';
import type { CreateTaskRequest, TaskState, TaskTarget, TaskView, UploadedFile } from '../api/contract.js';
import { contactNotes } from '../api/contact-note.js';
import { SHA256_HEADER } from '../api/headers.js';
import { describeChoices, isScriptSyntax, SCRIPT_SYNTAXES, type ScriptSyntax } from '../api/tentacle/vocabulary.js';
import { ReefError } from '../errors.js';
import { absolutePath, collect, note, printJson, printLine, runAction } from './common.js';
import { cell, formatAge, formatTable } from './output.js';
import { countingStream, createProgress, progressMode } from './progress.js';
import { addConnectionOptions, connect, httpStatus, itemsOf, query, segment, type ConnectionOpts } from './reef-connection.js';

/**
 * Loaded by the commands that use them, so `reef --help` does not load them: following a
 * log (the API client) and the API contract's schemas (zod) that check a request.
 */
const follow = () => import('./reef-follow.js');
const contract = () => import('../api/contract.js');

/**
 * `reef tasks ...`. Routes:
 *   POST /api/tasks  CreateTaskRequest -> TaskView
 *   GET  /api/tasks?state=&limit=       -> { items: TaskView[] }
 *   GET  /api/tasks/:id                 -> TaskView
 *   POST /api/tasks/:id/cancel          -> TaskView
 *   GET  /api/files/:sha256             -> UploadedFile, 404 when the server does not have it
 *   POST /api/files  raw body, x-reef-sha256 -> UploadedFile
 * and the log routes in reef-follow.ts.
 */

/** What following a task prints, and its exit code: said once, by --follow and by `tasks watch`. */
const FOLLOW_OUTPUT = '"[machine] text" on stdout ("!" marks stderr and errors, "*" Reef\'s own messages), a summary on stderr; exit code 1 unless the task succeeds';
export const FOLLOW_HELP = `stream the log until the task ends: ${FOLLOW_OUTPUT}`;

export interface TargetOpts {
  environment?: string;
  role?: string;
  workerPool?: string;
  machine?: string[];
}

export interface FollowOpts extends ConnectionOpts {
  follow?: boolean;
}

export function registerTaskCommands(program: Command): void {
  const tasks = program.command('tasks').description('run scripts, push files and check health on machines; watch and cancel tasks');

  addConnectionOptions(
    addTargetOptions(
      tasks
        .command('run-script')
        .description('run a script on the target machines; prints the task id, or follows the log with --follow')
        .option('--script <text>', 'the script itself')
        .option('--file <file>', 'read the script from a file ("-" for stdin)')
        .option('--syntax <syntax>', `${describeChoices(SCRIPT_SYNTAXES, '')} (default: from the file extension, else bash)`)
        .option('--timeout <seconds>', 'fail the script on a machine that runs longer than this')
        .option('--lost-contact-limit <seconds>', "fail a machine's run when its Tentacle is out of contact longer than this (default: the server's, 30 minutes)")
        .option('--follow', FOLLOW_HELP),
    ),
  ).action(
    runAction(async (opts: FollowOpts & TargetOpts & { script?: string; file?: string; syntax?: string; timeout?: string; lostContactLimit?: string }) => {
      const target = targetOf(opts);
      const script = await scriptOf(opts);
      const timeoutSeconds = opts.timeout === undefined ? undefined : positiveInteger(opts.timeout, '--timeout');
      const lostContactLimitSeconds = opts.lostContactLimit === undefined ? undefined : positiveInteger(opts.lostContactLimit, '--lost-contact-limit');
      const request = await validRequest({
        kind: 'run-script',
        target,
        script,
        ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
        ...(lostContactLimitSeconds !== undefined ? { lostContactLimitSeconds } : {}),
      });
      await startTask(await connect(opts), request, opts);
    }),
  );

  addConnectionOptions(
    addTargetOptions(
      tasks
        .command('push-file')
        .description('upload a file to the server (skipped when it already has it) and copy it to the target machines')
        .argument('<src>', 'local file')
        .argument('<dest>', 'absolute path on the machines')
        .option('--follow', FOLLOW_HELP),
    ),
  ).action(
    runAction(async (src: string, dest: string, opts: FollowOpts & TargetOpts) => {
      const target = targetOf(opts);
      const file = absolutePath(src, 'SRC');
      const info = await stat(file).catch(() => null);
      if (!info?.isFile()) throw new ReefError('REEF_FILE_NOT_FOUND', `${file} is not a file that can be read.`);
      // Checked before hashing and uploading, so a bad DEST costs nothing.
      await validRequest({ kind: 'push-file', target, file: { sha256: '0'.repeat(64), destination: dest } });
      const api = await connect(opts);
      const sha256 = await hashFile(file);
      await ensureUploaded(api, file, sha256, info.size, opts.json === true);
      await startTask(api, await validRequest({ kind: 'push-file', target, file: { sha256, destination: dest } }), opts);
    }),
  );

  addConnectionOptions(
    addTargetOptions(
      tasks.command('health-check').description('check that the target machines answer and report their health').option('--follow', FOLLOW_HELP),
    ),
  ).action(
    runAction(async (opts: FollowOpts & TargetOpts) => {
      await startTask(await connect(opts), await validRequest({ kind: 'health-check', target: targetOf(opts) }), opts);
    }),
  );

  addConnectionOptions(
    tasks
      .command('watch')
      .description(`follow a task's log until it ends: ${FOLLOW_OUTPUT}`)
      .argument('<id>', 'task id'),
  ).action(
    runAction(async (id: string, opts: ConnectionOpts) => {
      const { assertSucceeded, followTask } = await follow();
      assertSucceeded(await followTask(await connect(opts), id, { json: opts.json === true }));
    }),
  );

  addConnectionOptions(
    tasks.command('cancel').description('ask the server to cancel a task on every machine it still runs on').argument('<id>', 'task id'),
  ).action(
    runAction(async (id: string, opts: ConnectionOpts) => {
      const task = await (await connect(opts)).json<TaskView>('POST', `/api/tasks/${segment(id)}/cancel`);
      if (opts.json) return printJson(task);
      note(
        (await follow()).isFinal(task.state)
          ? `Task ${task.id} already ended ${task.state}.`
          : `Cancellation requested for task ${task.id}; follow it with "reef tasks watch ${task.id}".`,
      );
    }),
  );

  addConnectionOptions(tasks.command('show').description('show a task and its state on each machine').argument('<id>', 'task id')).action(
    runAction(async (id: string, opts: ConnectionOpts) => {
      const task = await (await connect(opts)).json<TaskView>('GET', `/api/tasks/${segment(id)}`);
      if (opts.json) return printJson(task);
      printLine(describeTask(task));
    }),
  );

  addConnectionOptions(
    tasks
      .command('list')
      .description('list recent tasks, newest first')
      .option('--state <state>', 'only tasks in this state: Queued, Running, Success, Failed, Cancelled, TimedOut')
      .option('--limit <n>', 'at most this many'),
  ).action(
    runAction(async (opts: ConnectionOpts & { state?: string; limit?: string }) => {
      const state = opts.state === undefined ? undefined : taskState(opts.state);
      const limit = opts.limit === undefined ? undefined : positiveInteger(opts.limit, '--limit');
      const items = itemsOf<TaskView>(await (await connect(opts)).json('GET', `/api/tasks${query({ state, limit })}`));
      if (opts.json) return printJson(items);
      if (!items.length) return note('No tasks match.');
      printLine(
        formatTable(
          ['ID', 'KIND', 'STATE', 'MACHINES', 'CREATED', 'FINISHED'],
          items.map((t) => [t.id, t.kind, t.state, String(t.machineCount), formatAge(t.createdAt), t.finishedAt ? formatAge(t.finishedAt) : '-']),
        ),
      );
    }),
  );
}

export function addTargetOptions(command: Command): Command {
  return command
    .option('--environment <name>', 'target the machines in this environment')
    .option('--role <role>', 'with --environment: only machines with this role')
    .option('--worker-pool <name>', 'target the workers in this pool')
    .option('--machine <name>', 'target this machine (repeatable)', collect);
}

export function targetOf(opts: TargetOpts): TaskTarget {
  if (opts.role !== undefined && opts.environment === undefined) {
    throw new ReefError('REEF_INVALID_ARGUMENT', '--role needs --environment: roles select deployment targets within an environment.');
  }
  const chosen = [opts.environment !== undefined, opts.workerPool !== undefined, (opts.machine?.length ?? 0) > 0].filter(Boolean).length;
  if (chosen !== 1) {
    throw new ReefError(
      'REEF_INVALID_ARGUMENT',
      chosen === 0
        ? 'Say which machines: --environment NAME [--role ROLE], --worker-pool NAME, or --machine NAME (repeatable).'
        : 'Use only one of --environment, --worker-pool and --machine.',
    );
  }
  if (opts.environment !== undefined) return { environment: opts.environment, ...(opts.role !== undefined ? { role: opts.role } : {}) };
  if (opts.workerPool !== undefined) return { workerPool: opts.workerPool };
  return { machines: opts.machine ?? [] };
}

async function scriptOf(opts: { script?: string; file?: string; syntax?: string }): Promise<{ syntax: ScriptSyntax; body: string }> {
  if ((opts.script === undefined) === (opts.file === undefined)) {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'Give the script with exactly one of --script TEXT or --file FILE.');
  }
  let body: string;
  if (opts.script !== undefined) body = opts.script;
  else if (opts.file === '-') body = await readStdin();
  else {
    const file = absolutePath(opts.file!, '--file');
    body = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ReefError('REEF_FILE_NOT_FOUND', `Could not read the script file ${file}: ${err.code ?? err.message}.`);
    });
  }
  const fromExtension = opts.file && extname(opts.file).toLowerCase() === '.ps1' ? 'powershell' : opts.file?.toLowerCase().endsWith('.sh') ? 'bash' : undefined;
  const syntax = opts.syntax?.trim().toLowerCase() ?? fromExtension ?? 'bash';
  if (!isScriptSyntax(syntax)) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `--syntax must be ${describeChoices(SCRIPT_SYNTAXES, '')}, not "${opts.syntax}".`);
  }
  return { syntax, body };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const OPTION_OF_PATH: Record<string, string> = {
  'target.environment': '--environment',
  'target.role': '--role',
  'target.workerPool': '--worker-pool',
  'target.machines': '--machine',
  'script.body': 'the script',
  'file.destination': 'DEST',
  timeoutSeconds: '--timeout',
  lostContactLimitSeconds: '--lost-contact-limit',
  version: '--version',
  rollbackAfterSeconds: '--rollback-after',
  maxParallel: '--max-parallel',
};

/** Checks the request against the contract the server enforces, naming the option at fault. */
export async function validRequest(request: CreateTaskRequest): Promise<CreateTaskRequest> {
  const result = (await contract()).CreateTaskRequest.safeParse(request);
  if (result.success) return request;
  const issue = result.error.issues[0]!;
  const path = issue.path.filter((p) => typeof p === 'string').join('.');
  const what = OPTION_OF_PATH[path] ?? (path || 'the request');
  const message = issue.code === 'invalid_union' ? 'is not valid' : issue.message;
  throw new ReefError('REEF_INVALID_ARGUMENT', `${what} ${message}${/[.]$/.test(message) ? '' : '.'}`);
}

export async function startTask(api: ApiClient, request: CreateTaskRequest, opts: FollowOpts): Promise<void> {
  const task = await api.json<TaskView>('POST', '/api/tasks', { body: request });
  if (!opts.follow) {
    if (opts.json) printJson(task);
    else printLine(task.id);
    return;
  }
  if (!opts.json) note(`Task ${task.id} created on ${task.machines?.length ?? 0} machine(s); following its log (Ctrl-C stops following, not the task).`);
  const { assertSucceeded, followTask } = await follow();
  assertSucceeded(await followTask(api, task.id, { json: opts.json === true }));
}

async function hashFile(file: string): Promise<string> {
  const { createHash } = await import('node:crypto'); // loaded here: reef's other commands start faster without it
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function ensureUploaded(api: ApiClient, file: string, sha256: string, size: number, json: boolean): Promise<void> {
  const existing = await api.json<UploadedFile>('GET', `/api/files/${sha256}`).catch((err: unknown) => {
    if (httpStatus(err) === 404) return null;
    throw err;
  });
  if (existing) {
    if (!json) note(`The server already has ${basename(file)} (sha256 ${sha256}); skipping the upload.`);
    return;
  }
  const progress = createProgress(size, { label: `Uploading ${basename(file)}`, mode: progressMode(json) });
  const counter = countingStream((bytes) => progress.update(bytes));
  const source = createReadStream(file);
  pipeline(source, counter, (err) => {
    if (err) counter.destroy(err);
  });
  try {
    const uploaded = await api.json<UploadedFile>('POST', '/api/files', {
      stream: counter,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), [SHA256_HEADER]: sha256 },
      timeoutMs: 120_000,
    });
    if (uploaded?.sha256 && uploaded.sha256 !== sha256) {
      throw new ReefError('REEF_HASH_MISMATCH', `The server stored the upload as sha256 ${uploaded.sha256}, but the file's is ${sha256}; try again.`);
    }
    progress.done();
  } catch (err) {
    progress.abort();
    source.destroy();
    throw err;
  }
}

function describeTask(task: TaskView): string {
  const lines = [
    `Task ${task.id}: ${task.kind}, ${task.state}`,
    `Target: ${JSON.stringify(task.target)}`,
    `Created: ${task.createdAt}${task.startedAt ? `  Started: ${task.startedAt}` : ''}${task.finishedAt ? `  Finished: ${task.finishedAt}` : ''}`,
  ];
  if (task.cancelRequestedAt) lines.push(`Cancel requested: ${task.cancelRequestedAt}`);
  if (task.error) lines.push(`Error: ${task.error}`);
  lines.push(
    '',
    formatTable(
      ['MACHINE', 'STATE', 'EXIT CODE', 'STARTED', 'FINISHED', 'ERROR'],
      (task.machines ?? []).map((m) => [m.machineName, m.state, cell(m.exitCode), cell(m.startedAt), cell(m.finishedAt), cell(m.error)]),
    ),
  );
  const notes = contactNotes(task);
  if (notes.length) lines.push('', ...notes);
  return lines.join('\n');
}

const TASK_STATES: readonly TaskState[] = ['Queued', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut'];

function taskState(value: string): TaskState {
  const found = TASK_STATES.find((s) => s.toLowerCase() === value.trim().toLowerCase());
  if (!found) throw new ReefError('REEF_INVALID_ARGUMENT', `--state must be one of ${TASK_STATES.join(', ')}, not "${value}".`);
  return found;
}

export function positiveInteger(value: string, option: string): number {
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be a whole number above 0, not "${value}".`);
  }
  return n;
}
