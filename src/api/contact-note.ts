/**
 * How a machine run's contact with its Tentacle reads in words (the CLI): waiting
 * on a lost Tentacle, failed for lost contact and awaiting a late report, or the late
 * report itself. The portal renders it with time elements (format.ts: contactCell; web/task.js: contactParts).
 */
import type { TaskMachineView, TaskView } from './contract.js';

export function contactNote(m: Pick<TaskMachineView, 'state' | 'lostContactSince' | 'lateReport'>): string {
  const late = m.lateReport;
  if (late) {
    if (late.state === null) return `late report ${late.receivedAt}: ${late.error ?? 'nothing more to collect'}`;
    const exit = late.exitCode === null ? '' : ` (exit code ${late.exitCode})`;
    return `late report ${late.receivedAt}: the script ended ${late.state}${exit}; ${late.lines} late line${late.lines === 1 ? '' : 's'} in the log`;
  }
  if (!m.lostContactSince) return '';
  if (m.state === 'Running') return `lost contact since ${m.lostContactSince}`;
  if (m.state === 'Failed') return `lost contact at ${m.lostContactSince}; a late report follows if the Tentacle comes back`;
  return '';
}

/** One line per machine run whose contact with its Tentacle is worth saying, named by machine. */
export function contactNotes(task: Pick<TaskView, 'machines'>): string[] {
  return (task.machines ?? []).flatMap((m) => {
    const note = contactNote(m);
    return note ? [`${m.machineName}: ${note}`] : [];
  });
}
