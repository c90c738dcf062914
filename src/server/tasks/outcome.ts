import { FINAL_STATES, type FinalState } from '../store/types.js';
import type { MachineOutcome } from './machine-run.js';

export function isFinal(state: string): state is FinalState {
  return (FINAL_STATES as readonly string[]).includes(state);
}

/**
 * A task's state from its machines' outcomes: Success when all succeeded; Cancelled when
 * it was cancelled and some part was; TimedOut when parts only timed out; else Failed.
 */
export function overall(outcomes: MachineOutcome[], cancelled: boolean): { state: FinalState; error: string | null } {
  const count = (state: FinalState) => outcomes.filter((o) => o.state === state).length;
  if (count('Success') === outcomes.length) return { state: 'Success', error: null };
  if (cancelled && count('Cancelled') > 0) return { state: 'Cancelled', error: null };
  const failed = count('Failed');
  if (failed === 0 && count('TimedOut') > 0) return { state: 'TimedOut', error: `${count('TimedOut')} of ${outcomes.length} machines timed out.` };
  return { state: 'Failed', error: `${failed + count('TimedOut') + count('Cancelled')} of ${outcomes.length} machines did not succeed.` };
}
