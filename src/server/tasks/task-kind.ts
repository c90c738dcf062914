import type { CreateTaskRequest } from '../../api/contract.js';
import type { CommsServer } from '../../comms/index.js';
import type { Machine, Store } from '../store/types.js';
import type { TentacleReleases } from '../tentacle-releases/index.js';
import type { BlobSource, MachineOutcome, MachineRun } from './machine-run.js';

export type TaskKindName = CreateTaskRequest['kind'];

/** The REST request that creates a task of kind K. */
type TaskRequest<K extends TaskKindName> = Extract<CreateTaskRequest, { kind: K }>;

/**
 * One kind of task: how its request becomes the spec stored with the task, and how one
 * machine's part runs. The engine knows nothing else of a kind, so adding one is a file in
 * kinds/, an entry in kinds/index.ts and one in the REST contract (CreateTaskRequest).
 */
export interface TaskKind<K extends TaskKindName, Spec extends object> {
  /** Checks what the request's schema cannot (an uploaded file exists) and builds the stored spec. */
  specOf(request: TaskRequest<K>, context: { blobs: BlobSource; releases?: TentacleReleases }): Promise<Spec>;
  /** The machines the request's target names, when the kind reads its target otherwise than tasks/targets.ts. */
  machinesOf?(request: TaskRequest<K>, context: { store: Store; comms: CommsServer }): Promise<Machine[]>;
  /**
   * Runs one machine's part to its outcome. Rejects when it cannot: the engine records
   * Failed with the error's message, or Cancelled once the task was cancelled.
   */
  perform(run: MachineRun, spec: Spec): Promise<MachineOutcome>;
  /**
   * Lets the Tentacle forget what it keeps for this part (a finished script's ticket).
   * Called once the outcome is stored, when perform resolved or the task was cancelled;
   * best effort, never rejects.
   */
  release?(run: MachineRun): Promise<void>;
}
