import { normalize } from 'node:path';
import { ReefError } from '../errors.js';

/**
 * Writing values into systemd unit files. Each setting has its own syntax (systemd.syntax(7),
 * systemd.service(5), systemd.exec(5)); the rules below were checked against systemd 252
 * (`systemctl show` on units written with them, and `systemd-analyze verify`):
 *
 * - Every value: `%` starts a specifier, so a literal `%` is written `%%`. A line ending in a
 *   backslash continues on the next line; surrounding whitespace is dropped. Newlines,
 *   carriage returns and other control characters cannot be written into a value that is
 *   taken literally, and systemd refuses values that are not valid UTF-8.
 * - ExecStart=: words, split on whitespace; a word in double quotes keeps its spaces, with
 *   `\\` and `\"` inside it; `$` expands environment variables in the arguments (`$$` is a
 *   literal `$`). The executable (first word) is different: systemd never expands `$` in it,
 *   and it refuses one containing quotes or backslashes ("Executable name contains special
 *   characters").
 * - Environment=: quoted words as above, but `$` is taken literally.
 * - WorkingDirectory=, EnvironmentFile=: the rest of the line, literally: quotes would be
 *   part of the path (systemd then says "path is not absolute").
 * - ReadWritePaths= and other lists of paths: quoted words as in Environment=.
 */

const CONTROL = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Rejects what no unit file can carry. `what` names the value for the error ("the Tentacle's home"). */
export function checkUnitValue(value: string, what: string): string {
  if (CONTROL.test(value)) {
    throw new ReefError(
      'REEF_UNIT_VALUE',
      `${what} ${JSON.stringify(value)} cannot be written into a systemd unit: it contains a control character (a newline, tab or similar). Use a path without one.`,
    );
  }
  if (LONE_SURROGATE.test(value)) {
    throw new ReefError('REEF_UNIT_VALUE', `${what} ${JSON.stringify(value)} cannot be written into a systemd unit: it is not valid UTF-8.`);
  }
  return value;
}

/** An absolute path as systemd accepts it: normalized (no `.`, `..` or `//`), since systemd refuses others. */
export function checkUnitPath(path: string, what: string): string {
  checkUnitValue(path, what);
  if (!path.startsWith('/')) {
    throw new ReefError('REEF_UNIT_VALUE', `${what} "${path}" must be an absolute path to be written into a systemd unit.`);
  }
  if (path !== '/' && (normalize(path) !== path || path.endsWith('/'))) {
    throw new ReefError('REEF_UNIT_VALUE', `${what} "${path}" must be a normalized path (no ".", ".." or repeated or trailing "/") in a systemd unit; use ${normalize(path).replace(/(.)\/$/, '$1')}.`);
  }
  return path;
}

const escapeSpecifiers = (value: string) => value.replace(/%/g, '%%');

/** A double-quoted word with systemd's escapes for `\` and `"` (ExecStart= arguments, Environment=). */
function quoted(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Characters that never need quoting in a word. */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * A path taken literally by its setting (WorkingDirectory=, EnvironmentFile=): no quotes,
 * `%` doubled. Leading and trailing whitespace, and a trailing backslash (which would continue
 * the line), cannot be written.
 */
export function unitPathValue(path: string, what: string): string {
  checkUnitPath(path, what);
  if (/\s$/.test(path) || path.endsWith('\\')) {
    throw new ReefError('REEF_UNIT_VALUE', `${what} "${path}" ends with whitespace or a backslash, which a systemd unit cannot hold.`);
  }
  return escapeSpecifiers(path);
}

/** One path in a list of paths (ReadWritePaths=), quoted only when it has to be. */
export function unitPathWord(path: string, what: string): string {
  checkUnitPath(path, what);
  return escapeSpecifiers(PLAIN_WORD.test(path) ? path : quoted(path));
}

/** `ExecStart=` etc.: the executable (absolute) and its arguments, each quoted only when it has to be. */
export function unitCommandLine(argv: readonly string[], what: string): string {
  const [executable, ...args] = argv;
  if (executable === undefined) throw new ReefError('REEF_UNIT_VALUE', `${what} is empty.`);
  checkUnitPath(executable, `The program of ${what}`);
  if (/["'\\]/.test(executable)) {
    throw new ReefError(
      'REEF_UNIT_VALUE',
      `The program of ${what}, "${executable}", contains a quote or backslash, which systemd refuses in an executable's path. Install it under a path without them.`,
    );
  }
  const first = escapeSpecifiers(PLAIN_WORD.test(executable) ? executable : quoted(executable));
  const rest = args.map((arg) => {
    checkUnitValue(arg, `An argument of ${what}`);
    const word = PLAIN_WORD.test(arg) ? arg : quoted(arg);
    return escapeSpecifiers(word).replace(/\$/g, '$$$$');
  });
  return [first, ...rest].join(' ');
}

/** One `Environment=` assignment, quoted only when it has to be (`$` is literal there). */
export function unitEnvironment(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new ReefError('REEF_UNIT_VALUE', `"${name}" is not a valid environment variable name.`);
  checkUnitValue(value, `The value of ${name}`);
  const assignment = `${name}=${value}`;
  return escapeSpecifiers(PLAIN_WORD.test(assignment) ? assignment : quoted(assignment));
}

/** A value of a free-text setting such as Description=: specifiers escaped, control characters refused. */
export function unitText(value: string, what: string): string {
  checkUnitValue(value, what);
  return escapeSpecifiers(value.trim());
}

export type UnitSection = readonly (readonly [key: string, value: string] | string)[];

/**
 * A unit file from its sections, in order. A plain string inside a section is a comment
 * line (`# ...`) explaining the settings after it; values must already be escaped.
 */
export function renderUnitFile(header: readonly string[], sections: ReadonlyArray<readonly [name: string, entries: UnitSection]>): string {
  const lines = header.map((line) => `# ${line}`);
  for (const [name, entries] of sections) {
    if (lines.length > 0) lines.push('');
    lines.push(`[${name}]`);
    for (const entry of entries) lines.push(typeof entry === 'string' ? `# ${entry}` : `${entry[0]}=${entry[1]}`);
  }
  return `${lines.join('\n')}\n`;
}
