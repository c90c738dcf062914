import type { TaskKind, TaskKindName } from '../task-kind.js';
import { healthCheckKind } from './health-check.js';
import { pushFileKind } from './push-file.js';
import { rotateMachineCertificateKind } from './rotate-machine-certificate.js';
import { runScriptKind } from './run-script.js';
import { upgradeTentacleKind } from './upgrade-tentacle.js';

/** Every kind of task the REST contract accepts, by name: a kind missing here does not compile. */
export const TASK_KINDS: { readonly [K in TaskKindName]: TaskKind<K, object> } = {
  'run-script': runScriptKind,
  'push-file': pushFileKind,
  'health-check': healthCheckKind,
  'rotate-machine-certificate': rotateMachineCertificateKind,
  'upgrade-tentacle': upgradeTentacleKind,
};

/** The kind named, with its request typed as any kind's (the engine handles them alike). */
export function taskKind(name: TaskKindName): TaskKind<TaskKindName, object> {
  return TASK_KINDS[name] as TaskKind<TaskKindName, object>;
}
