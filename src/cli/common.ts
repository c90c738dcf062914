import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { isAbsolute, resolve } from 'node:path';
import { ReefError, isReefError } from '../errors.js';

/**
 * Helpers shared by the `reef` and `tentacle` command lines. Conventions: stdout carries only
 * command output (a thumbprint, JSON, a list) so scripts can capture it; everything meant for
 * a person goes to stderr; a failure is one line `error: <message>` on stderr and exit code 1.
 * Set REEF_DEBUG=1 to get stack traces.
 */

/** Prints an error the uniform way and returns the exit code to use. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    return err.exitCode; // commander has printed its own message (or help, with exit code 0)
  }
  const debug = process.env.REEF_DEBUG === '1';
  if (isReefError(err)) {
    process.stderr.write(`error: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`error: ${message}${debug ? '' : ' (set REEF_DEBUG=1 for details)'}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}

/**
 * Wraps a commander action so every failure is reported the same way and sets a non-zero
 * exit code instead of throwing out of commander.
 */
export function runAction<A extends unknown[]>(action: (...args: A) => unknown): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      process.exitCode = reportError(err);
    }
  };
}

/**
 * Parses argv with `program` and sets the exit code. Commander's own errors (unknown option,
 * missing argument) are printed by commander as `error: ...` and exit 1 as well.
 */
export async function runProgram(program: Command, argv: string[] = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

/** Applies the shared conventions to a root program; call before adding subcommands, which inherit them. */
export function configureProgram(program: Command): Command {
  return program
    .exitOverride()
    .showHelpAfterError(false)
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text) });
}

export const DEFAULT_INSTANCE = 'Tentacle';

export function addInstanceOption(command: Command): Command {
  return command.option('--instance <name>', 'name of the Tentacle instance', DEFAULT_INSTANCE);
}

/**
 * Adds a hidden alternative spelling for an option, stored under the same attribute.
 * Octopus spells some options camelCase (`--noListen`, `--apiKey`); we accept those and the
 * kebab form. `attribute` defaults to the camelCase of the alias, so `--api-key` lands on
 * `apiKey`; pass it when the two differ (`--worker-pool` -> `workerpool`). Aliases starting
 * with `--no-` are plain options here, not commander's negations.
 */
export function addOptionAlias(
  command: Command,
  flags: string,
  attribute?: string,
  parser?: (value: string, previous: any) => unknown, // eslint-disable-line @typescript-eslint/no-explicit-any
): Command {
  const option = new Option(flags).hideHelp();
  if (parser) option.argParser(parser);
  option.negate = false; // `--no-listen true` is an alias of `--noListen true`, not "listen = false"
  const name = attribute ?? option.attributeName();
  option.attributeName = () => name;
  return command.addOption(option);
}

/** Accumulator for repeatable options: `--trust A --trust B` -> ['A', 'B']. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function parsePort(value: string | number, option = '--port'): number {
  const text = String(value).trim();
  const port = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be a whole number from 1 to 65535, not "${value}".`);
  }
  return port;
}

/** `true`/`false` (also yes/no, 1/0, on/off); an option given without a value means true. */
export function parseBoolean(value: string | boolean, option: string): boolean {
  if (typeof value === 'boolean') return value;
  const text = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(text)) return true;
  if (['false', 'no', '0', 'off'].includes(text)) return false;
  throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be true or false, not "${value}".`);
}

export function parseFormat<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T, option = '--format'): T {
  if (value === undefined) return fallback;
  const found = allowed.find((a) => a === value.trim().toLowerCase());
  if (!found) throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be one of ${allowed.join(', ')}, not "${value}".`);
  return found;
}

/** A folder or file argument made absolute against the current directory. */
export function absolutePath(value: string, option: string): string {
  if (!value.trim()) throw new ReefError('REEF_INVALID_ARGUMENT', `${option} needs a path.`);
  return isAbsolute(value) ? resolve(value) : resolve(process.cwd(), value);
}

/** Command output: stdout, one line. */
export function printLine(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Messages for the person at the terminal: stderr, so stdout stays machine-readable. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/**
 * Whether this module was started as the program (through its bin/ launcher or directly),
 * rather than imported by a test or another module.
 */
export function isEntryPoint(moduleUrl: string, binPath: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    const real = realpathSync(entry);
    return real === binPath || real === fileURLToPath(moduleUrl);
  } catch {
    return false;
  }
}
