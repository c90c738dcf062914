import type { EventEmitter } from 'node:events';
import type { CreateTaskRequest, NodeView } from '../../api/contract.js';
import type { TentacleLink } from '../store/coordination.js';
import type { TentacleRelease } from '../tentacle-releases/index.js';
import type { FinalState, LogLine, Machine, TaskKind, TaskWithMachines } from '../store/types.js';

/** Live links by tentacle thumbprint. */
export type TentacleLinks = ReadonlyMap<string, TentacleLink[]>;

/** What the task engine tells listeners (SSE streams, the portal). */
export interface TaskEvents {
  /** New durable log lines of a task, in sequence order. */
  log: [taskId: string, lines: LogLine[]];
  /** The task's or one of its machines' state changed. */
  changed: [taskId: string];
  /**
   * Another node stored log lines of this task (null: of any task, notifications may have
   * been missed): listeners read them from the store.
   */
  stored: [taskId: string | null];
  /**
   * This node recorded a final state: of a task (`seconds` since it was created) or of one
   * machine's part of it (`seconds` since the part started). Each is told once, by the node
   * that recorded it.
   */
  finished: [outcome: { of: 'task' | 'machine'; kind: TaskKind; state: FinalState; seconds: number }];
}

/** The part of the task engine the REST API uses. */
export interface TaskEngineApi {
  /**
   * Resolves the target to machines (REEF_NOT_FOUND naming the unknown environment, pool
   * or machine; REEF_NO_MACHINES when the target matches none), stores the task and
   * starts it. Resolves once stored. `guard` sees the resolved machines before anything is
   * stored and may throw to refuse (a scoped caller's last check).
   */
  createTask(request: CreateTaskRequest, guard?: (machines: Machine[]) => void): Promise<TaskWithMachines>;
  /** Requests cancellation; null when no such task. Finished tasks are returned as they are. */
  cancelTask(taskId: string): Promise<TaskWithMachines | null>;
  readonly events: EventEmitter<TaskEvents>;
  /** Every server node on the store, this one included, with its health. */
  nodes(): Promise<NodeView[]>;
  /** Which live nodes each tentacle is connected to, by thumbprint. */
  links(): Promise<TentacleLinks>;
  /** The Tentacle executables the server distributes (its downloads folder); none when absent. */
  releases?(): Promise<TentacleRelease[]>;
}
