import { CreateTaskRequest, type LogPage } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import type { TaskState, TaskWithMachines } from '../../store/types.js';
import { readJson } from '../body.js';
import type { ApiContext, RouteTable } from '../context.js';
import { sendJson } from '../respond.js';
import { streamTaskLog } from '../sse.js';
import { parseWith, queryEnum, queryInt, queryString } from '../validation.js';
import { logLineView, taskView } from '../views.js';

const TASK_STATES: readonly TaskState[] = ['Queued', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut'];

export function taskRoutes(routes: RouteTable): void {
  routes.add('POST', '/api/tasks', create);
  routes.add('GET', '/api/tasks', list);
  routes.add('GET', '/api/tasks/:id', async (ctx) => sendJson(ctx.res, 200, taskView(await find(ctx))));
  routes.add('POST', '/api/tasks/:id/cancel', cancel);
  routes.add('GET', '/api/tasks/:id/log', logPage);
  routes.add('GET', '/api/tasks/:id/log/stream', async (ctx) => streamTaskLog(ctx, await find(ctx)));
}

export async function find(ctx: ApiContext): Promise<TaskWithMachines> {
  const id = ctx.params.id!;
  const task = await ctx.deps.store.getTask(id);
  if (!task) throw new ReefError('REEF_NOT_FOUND', `No task has id "${id}".`);
  return task;
}

async function create(ctx: ApiContext): Promise<void> {
  const { deps } = ctx;
  const request = parseWith(CreateTaskRequest, await readJson(ctx.req, deps.limits.maxJsonBytes));
  if (request.kind === 'push-file' && !(await deps.blobs.stat(request.file.sha256))) {
    throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${request.file.sha256}; upload it first (POST /api/files).`);
  }
  const task = await deps.engine.createTask(request);
  ctx.logger.info({ task: task.id, kind: task.kind, machines: task.machines.length, apiKey: ctx.key?.id }, 'api: task created');
  sendJson(ctx.res, 201, taskView(task));
}

async function list(ctx: ApiContext): Promise<void> {
  const state = queryEnum(ctx.query, 'state', TASK_STATES);
  const limit = queryInt(ctx.query, 'limit', 1, 1000);
  const before = queryString(ctx.query, 'before');
  const tasks = await ctx.deps.store.listTasks({ state, limit, before });
  sendJson(ctx.res, 200, { items: tasks.map(taskView) });
}

async function cancel(ctx: ApiContext): Promise<void> {
  const task = await ctx.deps.engine.cancelTask(ctx.params.id!);
  if (!task) throw new ReefError('REEF_NOT_FOUND', `No task has id "${ctx.params.id}".`);
  ctx.logger.info({ task: task.id, apiKey: ctx.key?.id }, 'api: task cancel requested');
  sendJson(ctx.res, 202, taskView(task));
}

async function logPage(ctx: ApiContext): Promise<void> {
  // The state is read before the lines: a final state then guarantees the page is complete.
  const task = await find(ctx);
  const after = queryInt(ctx.query, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
  const limit = queryInt(ctx.query, 'limit', 1, 10_000);
  const lines = await ctx.deps.store.readLog(task.id, after, limit);
  const page: LogPage = {
    items: lines.map(logLineView),
    lastSeq: lines.length ? lines[lines.length - 1]!.seq : after,
    taskState: task.state,
  };
  sendJson(ctx.res, 200, page);
}
