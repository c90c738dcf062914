import { Command } from 'commander';
import { configureProgram, isEntryPoint, reportError, runProgram } from './common.js';
import { registerApiKeyCommands } from './reef-apikeys.js';
import { registerUserCommands } from './reef-users.js';
import { registerAuditCommands } from './reef-audit.js';
import { reefBinPath } from './reef-bin.js';
import { registerMachineCommands } from './reef-machines.js';
import { registerNodeCommands } from './reef-nodes.js';
import { registerServerCommands } from './reef-server.js';
import { registerTaskCommands } from './reef-tasks.js';
import { registerTokenCommands } from './reef-tokens.js';

/**
 * The `reef` command line: the server's own commands (`reef server ...`) and the admin
 * commands that talk to a server's REST API (machines, environments, worker pools, tasks,
 * API keys, server nodes). stdout carries only results; notes, progress and summaries go to stderr.
 * Exit code 0 on success, 1 on any error or on a followed task that did not succeed.
 */
export function buildReefProgram(): Command {
  const program = configureProgram(new Command('reef'))
    .description('Reef: deployment server and admin commands. Run "reef <command> --help" for details.')
    .helpCommand(true);
  for (const register of [registerServerCommands, registerMachineCommands, registerTaskCommands, registerApiKeyCommands, registerTokenCommands, registerUserCommands, registerNodeCommands, registerAuditCommands]) register(program);
  return program;
}

if (isEntryPoint(import.meta.url, reefBinPath)) {
  try {
    await runProgram(buildReefProgram());
  } catch (err) {
    process.exitCode = reportError(err);
  }
}
