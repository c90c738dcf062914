/** Tasks, the machines each runs on, and their state transitions (see types.ts for the rules). */
import { ReefError } from '../../errors.js';
import { newTicket, taskIdOf, taskNumOf } from './ids.js';
import { checkFinalState, checkTaskKind, clampLimit, invalid, toTimestamp } from './input.js';
import { groupBy, toTask, toTaskMachine, type TaskMachineRow, type TaskRow } from './rows.js';
import { sql, where, type Database, type Db, type Sql } from './sql.js';
import type { Store, TaskWithMachines } from './types.js';

const UNFINISHED_TASK = sql`('Queued', 'Running')`;
const UNFINISHED_MACHINE = sql`('Pending', 'Running')`;

async function withMachines(db: Db, rows: TaskRow[]): Promise<TaskWithMachines[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const machineRows = await db.all<TaskMachineRow>(sql`SELECT * FROM task_machines WHERE ${db.dialect.inList(sql`task_id`, ids)}
    ORDER BY lower(machine_name), machine_id`);
  const machines = groupBy(machineRows.map(toTaskMachine), (m) => m.taskId);
  return rows.map((r) => ({ ...toTask(r), machines: machines.get(r.id) ?? [] }));
}

/**
 * Applies a transition `update`: true when it changed the row, false when the row is in a
 * state the transition does not start from, REEF_NOT_FOUND when there is no such row.
 */
async function transition(db: Db, taskId: string, machineId: string | undefined, update: Sql): Promise<boolean> {
  if ((await db.run(update)) > 0) return true;
  if (machineId === undefined) {
    if (!(await db.one(sql`SELECT 1 FROM tasks WHERE id = ${taskId}`))) {
      throw new ReefError('REEF_NOT_FOUND', `No task has id ${taskId}.`);
    }
  } else if (!(await db.one(sql`SELECT 1 FROM task_machines WHERE task_id = ${taskId} AND machine_id = ${machineId}`))) {
    throw new ReefError('REEF_NOT_FOUND', `Task ${taskId} has no machine ${machineId}.`);
  }
  return false;
}

type Tasks = Pick<
  Store,
  'createTask' | 'getTask' | 'getTaskMachineByTicket' | 'listTasks' | 'listUnfinishedTasks' | 'startTask' |
  'finishTask' | 'requestCancel' | 'startTaskMachine' | 'finishTaskMachine' | 'setLostContact' | 'listLostContact' |
  'recordLateReport'
>;

export function tasks(database: Database): Tasks {
  const d = database.dialect;
  return {
    createTask: async (input) => {
      const kind = checkTaskKind(input.kind);
      const machineIds = [...new Set(input.machineIds)];
      return database.transaction(async (db) => {
        const machines = await db.all<{ id: string; name: string }>(
          sql`SELECT id, name FROM machines WHERE ${d.inList(sql`id`, machineIds)}`,
        );
        if (machines.length !== machineIds.length) {
          const found = new Set(machines.map((m) => m.id));
          const missing = machineIds.filter((id) => !found.has(id));
          throw new ReefError(
            'REEF_NOT_FOUND',
            `Cannot create the task: no machine has id ${missing.join(', ')}. It may have been deleted; list machines again.`,
          );
        }
        // The counter row's lock queues concurrent creations from every node: numbers stay gap-free.
        const { value: num } = (await db.one<{ value: number }>(
          sql`UPDATE counters SET value = value + 1 WHERE name = 'task' RETURNING value`,
        ))!;
        const id = taskIdOf(num);
        const task = (await db.one<TaskRow>(sql`INSERT INTO tasks (id, num, kind, spec, target, state, created_at)
          VALUES (${id}, ${num}, ${kind}, ${d.json(input.spec ?? {})}, ${d.json(input.target ?? {})}, 'Queued',
            ${new Date().toISOString()}) RETURNING *`))!;
        const picked = d.textRows(['id', 'name', 'ticket'], machines.map((m) => [m.id, m.name, newTicket()]));
        await db.run(sql`INSERT INTO task_machines (task_id, machine_id, machine_name, state, ticket)
          SELECT ${id}, id, name, 'Pending', ticket FROM (${picked}) AS m`);
        return (await withMachines(db, [task]))[0]!;
      });
    },

    getTask: async (id) => {
      const row = await database.one<TaskRow>(sql`SELECT * FROM tasks WHERE id = ${id}`);
      return row ? (await withMachines(database, [row]))[0]! : null;
    },

    getTaskMachineByTicket: async (ticket) => {
      const row = await database.one<TaskMachineRow>(sql`SELECT * FROM task_machines WHERE ticket = ${ticket}`);
      return row ? toTaskMachine(row) : null;
    },

    listTasks: async (filter = {}) => {
      const conditions: Sql[] = [];
      if (filter.state !== undefined) conditions.push(sql`state = ${filter.state}`);
      if (filter.before !== undefined) {
        const num = taskNumOf(filter.before);
        if (num === null) throw invalid(`"${filter.before}" is not a task id (expected T-000123).`);
        conditions.push(sql`num < ${num}`);
      }
      if (filter.onlyMachineIds !== undefined) {
        conditions.push(sql`NOT EXISTS (SELECT 1 FROM task_machines tm WHERE tm.task_id = t.id AND NOT (${d.inList(sql`tm.machine_id`, filter.onlyMachineIds)}))`);
      }
      const limit = clampLimit(filter.limit, 50, 1000);
      const rows = await database.all<TaskRow & { machine_count: number }>(sql`SELECT t.*,
          (SELECT count(*) FROM task_machines tm WHERE tm.task_id = t.id) AS machine_count
        FROM tasks t ${where(conditions)} ORDER BY num DESC LIMIT ${limit}`);
      return rows.map((r) => ({ ...toTask(r), machineCount: Number(r.machine_count) }));
    },

    listUnfinishedTasks: async () =>
      withMachines(database, await database.all<TaskRow>(sql`SELECT * FROM tasks WHERE state IN ${UNFINISHED_TASK} ORDER BY num`)),

    startTask: async (taskId, at) => {
      const when = toTimestamp(at);
      return transition(database, taskId, undefined, sql`UPDATE tasks SET state = 'Running', started_at = ${when}
        WHERE id = ${taskId} AND state = 'Queued'`);
    },

    finishTask: async (taskId, finish) => {
      const [state, when] = [checkFinalState(finish.state), toTimestamp(finish.at)];
      return transition(database, taskId, undefined, sql`UPDATE tasks SET state = ${state}, finished_at = ${when},
        error = ${finish.error ?? null} WHERE id = ${taskId} AND state IN ${UNFINISHED_TASK}`);
    },

    requestCancel: async (taskId, at) => {
      const when = toTimestamp(at);
      return transition(database, taskId, undefined, sql`UPDATE tasks SET cancel_requested_at = ${when}
        WHERE id = ${taskId} AND state IN ${UNFINISHED_TASK} AND cancel_requested_at IS NULL`);
    },

    startTaskMachine: async (taskId, machineId, at) => {
      const when = toTimestamp(at);
      return transition(database, taskId, machineId, sql`UPDATE task_machines SET state = 'Running', started_at = ${when}
        WHERE task_id = ${taskId} AND machine_id = ${machineId} AND state = 'Pending'`);
    },

    finishTaskMachine: async (taskId, machineId, finish) => {
      const [state, when] = [checkFinalState(finish.state), toTimestamp(finish.at)];
      if (finish.exitCode != null && !Number.isInteger(finish.exitCode)) {
        throw invalid(`exitCode must be an integer, got ${finish.exitCode}.`);
      }
      return transition(database, taskId, machineId, sql`UPDATE task_machines SET state = ${state},
        exit_code = ${finish.exitCode ?? null}, error = ${finish.error ?? null}, finished_at = ${when}
        WHERE task_id = ${taskId} AND machine_id = ${machineId} AND state IN ${UNFINISHED_MACHINE}`);
    },

    setLostContact: async (taskId, machineId, since) => {
      const when = since === null ? null : toTimestamp(since);
      // lost_cursor: the log cursor when contact was lost; lines past it were collected after.
      const cursor = when === null ? sql`NULL` : sql`log_cursor`;
      return transition(database, taskId, machineId, sql`UPDATE task_machines SET lost_contact_at = ${when}, lost_cursor = ${cursor}
        WHERE task_id = ${taskId} AND machine_id = ${machineId} AND state = 'Running'`);
    },

    listLostContact: async (machineId) => {
      const conditions = [sql`lost_contact_at IS NOT NULL`, sql`late_report_at IS NULL`, sql`state IN ('Running', 'Failed')`];
      if (machineId !== undefined) conditions.push(sql`machine_id = ${machineId}`);
      const rows = await database.all<TaskMachineRow>(sql`SELECT * FROM task_machines ${where(conditions)} ORDER BY lost_contact_at, task_id`);
      return rows.map(toTaskMachine);
    },

    recordLateReport: async (taskId, machineId, report) => {
      const when = toTimestamp(report.at);
      const state = report.state === null ? null : checkFinalState(report.state);
      return transition(database, taskId, machineId, sql`UPDATE task_machines SET late_report_at = ${when}, late_state = ${state},
        late_exit_code = ${report.exitCode}, late_error = ${report.error}
        WHERE task_id = ${taskId} AND machine_id = ${machineId} AND lost_contact_at IS NOT NULL AND late_report_at IS NULL`);
    },
  };
}
