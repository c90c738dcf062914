import { CreateTaskRequest, itemsOf, LOG_STREAM_EVENTS, LogPage, LogPageQuery, LogStreamQuery, IdParams, TaskListQuery, TaskView } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { authorize } from '../../auth/roles.js';
import { checkTargetInScope, machineIdsInScope, machinesGuard, taskInScope } from '../../auth/scope.js';
import { auditRequest } from '../../audit/request.js';
import type { TaskWithMachines } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';
import { streamTaskLog } from '../sse.js';
import { logLineView, taskView } from '../views.js';

const NO_TASK = "No task has that id, or it runs on machines outside the caller's scope.";

export const taskRoutes: ApiRoute[] = [
  route({
    method: 'POST',
    path: '/api/tasks',
    tag: 'Tasks',
    summary: 'Create a task',
    description:
      'Run a script, push an uploaded file, or check health, on the machines its target names. A caller limited to environments or ' +
      'worker pools may target only machines wholly inside them; a target reaching outside is refused whole.',
    permission: 'tasks:write',
    body: { json: CreateTaskRequest },
    responses: { 201: { description: 'Queued.', json: TaskView } },
    errors: {
      403: "The target reaches outside the caller's scope (REEF_OUT_OF_SCOPE; the message names what is outside).",
      404: 'The target names an environment, pool or machine that does not exist, or push-file names a file not uploaded.',
      422: 'The target matches no machine (REEF_NO_MACHINES).',
      503: 'The server is shutting down (REEF_SHUTTING_DOWN); try again, on another node of a cluster or once it is back.',
    },
    handler: async (ctx, { body }) => {
      const { deps } = ctx;
      if (body.kind === 'push-file' && !(await deps.blobs.stat(body.file.sha256))) {
        throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${body.file.sha256}; upload it first (POST /api/files).`);
      }
      // A rotation reaches machines in every scope ('all'): only the whole-server permission may start one.
      if (body.kind === 'rotate-machine-certificate') authorize(ctx.actor!, 'machines:certificate', 'POST /api/tasks (rotate-machine-certificate)');
      // A fleet target of every machine names no group to check: the guard below checks each machine it reached.
      else if (!('all' in body.target)) await checkTargetInScope(deps.store, ctx.actor!, body.target);
      const task = await deps.engine.createTask(body, machinesGuard(ctx.actor!));
      ctx.logger.info({ task: task.id, kind: task.kind, machines: task.machines.length, apiKey: ctx.key?.id }, 'api: task created');
      await auditRequest(ctx, { kind: 'task.created', target: { id: task.id, name: null }, details: { kind: task.kind, target: task.target, machines: task.machines.length } });
      sendJson(ctx.res, 201, taskView(task));
    },
  }),
  route({
    method: 'GET',
    path: '/api/tasks',
    tag: 'Tasks',
    summary: 'List tasks',
    description: "`machines` is empty in the list; get one task for them. Tasks on machines outside the caller's scope are left out.",
    permission: 'tasks:read',
    query: TaskListQuery,
    responses: { 200: { description: 'Tasks, newest first.', json: itemsOf(TaskView) } },
    handler: async ({ res, deps, actor }, { query }) => {
      const onlyMachineIds = await machineIdsInScope(deps.store, actor!.scope);
      sendJson(res, 200, { items: (await deps.store.listTasks({ ...query, onlyMachineIds })).map(taskView) });
    },
  }),
  route({
    method: 'GET',
    path: '/api/tasks/:id',
    tag: 'Tasks',
    summary: 'Get a task',
    permission: 'tasks:read',
    params: IdParams,
    responses: { 200: { description: 'The task with each machine\'s part.', json: TaskView } },
    errors: { 404: NO_TASK },
    handler: async (ctx, { params }) => sendJson(ctx.res, 200, taskView(await find(ctx, params.id))),
  }),
  route({
    method: 'POST',
    path: '/api/tasks/:id/cancel',
    tag: 'Tasks',
    summary: 'Cancel a task',
    permission: 'tasks:write',
    description: 'No body. A finished task is returned as it is.',
    params: IdParams,
    responses: { 202: { description: 'Cancelling: the task with cancelRequestedAt.', json: TaskView } },
    errors: { 404: NO_TASK },
    handler: async (ctx, { params }) => {
      await find(ctx, params.id);
      const task = await ctx.deps.engine.cancelTask(params.id);
      if (!task) throw new ReefError('REEF_NOT_FOUND', `No task has id "${params.id}".`);
      ctx.logger.info({ task: task.id, apiKey: ctx.key?.id }, 'api: task cancel requested');
      // A task that had finished before the request is returned as it was: nothing changed.
      if (task.cancelRequestedAt) await auditRequest(ctx, { kind: 'task.cancelled', target: { id: task.id, name: null }, details: { state: task.state } });
      sendJson(ctx.res, 202, taskView(task));
    },
  }),
  route({
    method: 'GET',
    path: '/api/tasks/:id/log',
    tag: 'Tasks',
    summary: "A page of a task's log",
    permission: 'logs:read',
    description: 'Pass `lastSeq` as `after` to read on, until `items` is empty and `taskState` is final.',
    params: IdParams,
    query: LogPageQuery,
    responses: { 200: { description: 'The lines after `after`.', json: LogPage } },
    errors: { 404: NO_TASK },
    handler: async (ctx, { params, query }) => {
      // The state is read before the lines: a final state then guarantees the page is complete.
      const task = await find(ctx, params.id);
      const after = query.after ?? 0;
      const lines = await ctx.deps.store.readLog(task.id, after, query.limit);
      const page: LogPage = {
        items: lines.map(logLineView),
        lastSeq: lines.length ? lines[lines.length - 1]!.seq : after,
        taskState: task.state,
      };
      sendJson(ctx.res, 200, page);
    },
  }),
  route({
    method: 'GET',
    path: '/api/tasks/:id/log/stream',
    tag: 'Tasks',
    summary: "A task's log as it is written",
    permission: 'logs:read',
    description:
      'Server-Sent Events: the stored lines after `after` (or after Last-Event-ID, which wins), a `state` event, then live lines and a ' +
      '`state` on every change; when the task is final, the rest of the lines, a last `state`, `end`, and the stream closes. ' +
      '`: ping` comments every 15 s. Each `log` event has `id:` its sequence number.',
    params: IdParams,
    query: LogStreamQuery,
    responses: {
      200: { description: 'The event stream.', events: LOG_STREAM_EVENTS },
    },
    errors: { 404: `${NO_TASK} (JSON, before the stream starts)` },
    handler: async (ctx, { params, query }) => streamTaskLog(ctx, await find(ctx, params.id), query.after ?? 0),
  }),
];

export async function find(ctx: ApiContext, id: string): Promise<TaskWithMachines> {
  const task = await ctx.deps.store.getTask(id);
  // Outside the scope answers as missing, as for machines.
  if (!task || !(await taskInScope(ctx.deps.store, ctx.actor!.scope, task))) throw new ReefError('REEF_NOT_FOUND', `No task has id "${id}".`);
  return task;
}
