/**
 * The README's first command: a Reef server on the embedded store with a local polling
 * Tentacle registered to it, a script run on that Tentacle with its log printed, and then
 * both kept running until Ctrl+C. Everything lives under ./.reef (or $REEF_HOME), so a
 * second run reuses the same server, certificate and registration.
 *
 * Ports: REEF_HTTPS_PORT (default 8443) and REEF_COMMS_PORT (default 10943).
 *
 * The CLIs run from dist/: a fresh clone (or sources newer than the last build) is built
 * first, so `npm ci && npm run quickstart` works as the README says.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { buildDist, distState } from './build.js';

const repo = resolve(import.meta.dirname, '..');
const home = resolve(process.env.REEF_HOME || '.reef');
const dataDir = join(home, 'server');
const tentacleRoot = join(home, 'tentacle');
const httpsPort = Number(process.env.REEF_HTTPS_PORT || 8443);
const commsPort = Number(process.env.REEF_COMMS_PORT || 10943);
const server = `https://localhost:${httpsPort}`;
const instance = 'Quickstart';
const tentacleEnv = { ...process.env, REEF_TENTACLE_ROOT: tentacleRoot };

function bin(name: 'reef' | 'tentacle') {
  return join(repo, 'bin', `${name}.js`);
}

/** Runs a CLI command; returns stdout, or exits with its error. */
async function run(name: 'reef' | 'tentacle', args: string[], env: NodeJS.ProcessEnv = process.env, inherit = false): Promise<string> {
  const child = spawn(process.execPath, [bin(name), ...args], { env, stdio: inherit ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const [code] = (await once(child, 'close')) as [number];
  if (code !== 0) {
    process.stderr.write(`\n${name} ${args.join(' ')} failed:\n${err || out}\n`);
    throw Object.assign(new Error('step failed'), { exitCode: code });
  }
  return out.trim();
}

function step(text: string) {
  process.stdout.write(`\n==> ${text}\n`);
}

/** How long the server may take to print its start-up message; then the quick start gives up and says why. */
const SERVER_START_TIMEOUT_MS = 60_000;
/** The end of the server's stderr kept to explain a failed start (its log file has all of it). */
const STDERR_TAIL_BYTES = 16 * 1024;

class StartFailed extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * Starts a long-running process and waits for `ready` on its stdout, at most `timeoutMs`. If
 * it exits first or stays silent, the error it printed (its `error:` lines, else the end of
 * its stderr) is shown here, not left in the log file, and the quick start fails.
 */
async function startBackground(name: string, file: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = SERVER_START_TIMEOUT_MS): Promise<{ child: ChildProcess; banner: string }> {
  const logPath = join(home, `${name}.log`);
  const { createWriteStream } = await import('node:fs');
  const child = spawn(process.execPath, [file, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.pipe(createWriteStream(logPath, { flags: 'a' }));
  let stderrTail = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderrTail = (stderrTail + d).slice(-STDERR_TAIL_BYTES)));
  let out = '';
  child.stdout!.setEncoding('utf8');
  const explain = () => {
    const errors = stderrTail.split('\n').filter((line) => line.startsWith('error:'));
    return (errors.length ? errors : stderrTail.trim().split('\n').slice(-10)).join('\n');
  };
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new StartFailed(`${name} did not finish starting within ${timeoutMs / 1000} s; stopped it. Its last words (all in ${logPath}):\n${explain()}`, 1));
    }, timeoutMs);
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (ready.test(out)) {
        clearTimeout(timer);
        resolveReady();
      }
    });
    // 'close' comes once its output is all read, so the quote below is complete.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      reject(new StartFailed(`${name} could not start (exit code ${code ?? signal}):\n${explain()}\n(full log: ${logPath})`, code || 1));
    });
  });
  return { child, banner: out };
}

/** The password line of the server's first-run credentials file (`password: ...`), if it is still there. */
async function passwordIn(file: string): Promise<string | undefined> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(file, 'utf8').catch(() => '');
  return /^password:\s*(\S+)/m.exec(text)?.[1];
}

async function main() {
  const dist = await distState();
  if (dist.state !== 'fresh') {
    step(dist.state === 'missing' ? 'Building Reef (npm run build)' : `Building Reef again (npm run build): ${dist.newer} changed`);
    const built = await buildDist();
    process.stdout.write(`Built ${built.modules} modules in ${Math.round(built.ms)} ms\n`);
  }
  await mkdir(home, { recursive: true, mode: 0o700 });
  step(`Starting the Reef server (data in ${dataDir})`);
  const { child: serverProcess, banner } = await startBackground(
    'server',
    bin('reef'),
    ['server', 'run', '--data', dataDir, '--https-port', String(httpsPort), '--comms-port', String(commsPort)],
    process.env,
    /Stop it with Ctrl\+C/,
  );
  const stopAll: ChildProcess[] = [serverProcess];
  process.on('exit', () => stopAll.forEach((c) => c.kill('SIGTERM')));

  const thumbprint = await run('reef', ['server', 'show-thumbprint', '--data', dataDir]);
  const apiKey = await run('reef', ['apikey', 'create', '--data', dataDir, '--name', `quickstart-${Date.now()}`]);
  process.stdout.write(`Server thumbprint: ${thumbprint}\n`);

  step('Setting up a local polling Tentacle');
  const instances = await run('tentacle', ['list-instances'], tentacleEnv);
  if (!instances.split('\n').some((line) => line.split(/\s+/)[0] === instance)) {
    await run('tentacle', ['create-instance', '--instance', instance], tentacleEnv);
  }
  await run('tentacle', ['new-certificate', '--instance', instance, '--if-blank'], tentacleEnv);
  await run(
    'tentacle',
    ['register-with', '--instance', instance, '--server', server, '--server-thumbprint', thumbprint, '--apiKey', apiKey,
      '--comms-style', 'TentacleActive', '--server-comms-port', String(commsPort), '--environment', 'Development', '--role', 'demo',
      '--name', `${hostname()}-quickstart`, '--force'],
    tentacleEnv,
  );
  const agent = spawn(process.execPath, [bin('tentacle'), 'agent', '--instance', instance], { env: tentacleEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  const { createWriteStream } = await import('node:fs');
  agent.stderr!.pipe(createWriteStream(join(home, 'tentacle.log'), { flags: 'a' }));
  stopAll.push(agent);

  step('Running a script on every Development machine with the role "demo"');
  const adminEnv = { ...process.env, REEF_SERVER: server, REEF_API_KEY: apiKey, REEF_SERVER_THUMBPRINT: thumbprint };
  await run(
    'reef',
    ['tasks', 'run-script', '--environment', 'Development', '--role', 'demo', '--follow',
      '--script', 'echo "Hello from $(hostname), user $(id -un)"; uname -sr; echo "Reef ran this script through a polling Tentacle."'],
    adminEnv,
    true,
  );

  // Listen for Ctrl+C before saying it works: someone may press it the moment they read it.
  const stopRequested = new Promise<void>((resolveStop) => {
    process.once('SIGINT', resolveStop);
    process.once('SIGTERM', resolveStop);
  });
  step('Reef is running');
  // The first run prints the password; until admin first signs in, later runs find it in the file the server names.
  const credentialsFile = /First-run credentials kept in (.+) \(mode 0600\)/.exec(banner)?.[1];
  const adminPassword = /Admin sign-in[^:]*:\s+admin \/ (\S+)/.exec(banner)?.[1] ?? (credentialsFile ? await passwordIn(credentialsFile) : undefined);
  process.stdout.write(
    [
      `Portal:        ${server}/   (self-signed certificate, thumbprint ${thumbprint})`,
      adminPassword
        ? `Sign in:       admin / ${adminPassword}   (also in ${credentialsFile ?? 'the data directory'} until admin first signs in; keep it)`
        : 'Sign in:       as admin, with the password printed on the first run',
      `REST API:      ${server}/api`,
      `Admin commands: export REEF_SERVER=${server} REEF_SERVER_THUMBPRINT=${thumbprint} REEF_API_KEY=${apiKey}`,
      `               node bin/reef.js machines list`,
      `Logs:          ${join(home, 'server.log')}, ${join(home, 'tentacle.log')}`,
      'Press Ctrl+C to stop the server and the Tentacle.',
      '',
    ].join('\n'),
  );
  await stopRequested;
  for (const child of stopAll.reverse()) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

main().catch((err: Error & { exitCode?: number }) => {
  if (err.message !== 'step failed') process.stderr.write(`quickstart failed: ${err.message}\n`);
  process.exit(err.exitCode || 1);
});
