/**
 * The enumerations of the Tentacle contract, each written once: the REST contract, the
 * CLI, the portal, the server and the Tentacle import them from here.
 */

/** The languages a script can be written in; "powershell" runs with pwsh. */
export const SCRIPT_SYNTAXES = ['bash', 'sh', 'powershell'] as const;
export type ScriptSyntax = (typeof SCRIPT_SYNTAXES)[number];

export function isScriptSyntax(value: string): value is ScriptSyntax {
  return (SCRIPT_SYNTAXES as readonly string[]).includes(value);
}

/**
 * Running: still going. Complete: finished (see exitCode, cancelled, timedOut, error).
 * Orphaned: the Tentacle lost the script (it restarted and the process was gone without
 * an exit code); the log holds everything written until then and a line saying so.
 */
export const SCRIPT_STATES = ['Running', 'Complete', 'Orphaned'] as const;

/** Where a line of a script's log came from; "system" lines are the Tentacle's own notes. */
export const SCRIPT_LOG_STREAMS = ['stdout', 'stderr', 'system'] as const;
export type ScriptLogStream = (typeof SCRIPT_LOG_STREAMS)[number];

export const FILE_TYPES = ['file', 'directory', 'other'] as const;

/** `"a", "b" or "c"`: a list of choices as messages name them. */
export function describeChoices(values: readonly string[], quote = '"'): string {
  const quoted = values.map((v) => `${quote}${v}${quote}`);
  return quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}` : (quoted[0] ?? '');
}
