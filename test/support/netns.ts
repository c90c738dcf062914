/**
 * Small real networks for tests, built from Linux network namespaces: a namespace per
 * host, veth pairs with addresses between them, routes through a namespace that forwards
 * (a router), commands and processes run inside, nftables rules (a firewall that rejects
 * or drops), `tc tbf` shaping (this kernel has no netem).
 *
 * Needs root, `ip` (iproute2) and `nft` (nftables); `netnsUnavailable()` says why not, for
 * a test to skip with. Each test file picks a prefix of its own (`reefdials`, ...); its
 * namespaces are named `<prefix>-<pid>-<label>`, so concurrent files never share one and a
 * leftover's owner is known: creating a topology first removes the leftovers of owners that
 * are gone (a file killed mid-test), never those of a live one.
 *
 * Addresses live only inside the namespaces (nothing is added to the host's own network),
 * so any fixed port is free there. Processes started inside are tracked by
 * test/support/processes.ts (killed with their group by `stopAll`); `Topology.destroy`
 * kills whatever still runs in its namespaces and deletes them (their veth pairs go with
 * them), and the same happens synchronously if the test file's process ends first.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { runTracked, spawnTracked, type RunResult } from './processes.js';

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** Why namespaces cannot be made here, or undefined when they can (checked once per prefix). */
export function netnsUnavailable(prefix: string): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces, veth and nftables need root';
  for (const [tool, pkg] of [['ip', 'iproute2'], ['nft', 'nftables']]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing (apt-get install ${pkg})`;
  }
  const probe = `${prefix}-${process.pid}-probe`;
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.status !== 0) return `cannot create a network namespace here: ${made.stderr.trim()}`;
  const nft = spawnSync('ip', ['netns', 'exec', probe, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', probe]);
  if (nft.status !== 0) return `nftables does not work in a network namespace here: ${nft.stderr.trim()}`;
  return undefined;
}

/** One end of a veth pair: its namespace, interface name and address (CIDR). */
export interface LinkEnd {
  ns: Namespace;
  ifname: string;
  /** With its prefix length, e.g. 10.231.0.1/30. */
  cidr: string;
  /** Without it, e.g. 10.231.0.1: what the other end dials. */
  address: string;
}

export interface Link {
  a: LinkEnd;
  b: LinkEnd;
  /** Takes the link down (both ends) or up again: a cable pulled and plugged back. */
  setUp(up: boolean): Promise<void>;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A network namespace: a host of the test's network. */
export class Namespace {
  constructor(readonly name: string) {}

  /** Runs a command inside to its end (killed with its group after `timeoutMs`, default 30 s). */
  run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return runTracked('ip', ['netns', 'exec', this.name, command, ...args], { timeoutMs: options.timeoutMs ?? 30_000, env: options.env, cwd: options.cwd });
  }

  /** Runs a command inside that must succeed; resolves with its trimmed stdout. */
  async ok(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
    const result = await this.run(command, args, options);
    if (result.code !== 0) {
      throw new Error(`in ${this.name}: ${command} ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    }
    return result.stdout.trim();
  }

  /** Starts a long-running process inside, tracked (killed with its group by `stopAll`). */
  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    return spawnTracked('ip', ['netns', 'exec', this.name, command, ...args], options);
  }

  /** Sends what has no link of its own through `via`, a neighbour's address: a default route. */
  async routeVia(via: string): Promise<void> {
    await this.ok('ip', ['route', 'replace', 'default', 'via', via]);
  }

  /** Makes this namespace a router: it forwards IPv4 packets between its links (off in a new namespace). */
  async forwardIpv4(): Promise<void> {
    await this.ok('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  }

  /** Replaces this namespace's whole nftables ruleset with `ruleset` (nft syntax). */
  async nft(ruleset: string): Promise<void> {
    await feed(['ip', 'netns', 'exec', this.name, 'nft', '-f', '-'], `flush ruleset\n${ruleset}\n`);
  }

  /** Shapes what leaves `ifname` with a token bucket (tc tbf): rate, burst and queue as tc spells them. */
  async shape(ifname: string, tbf: { rate: string; burst: string; latency: string }): Promise<void> {
    await this.ok('tc', ['qdisc', 'replace', 'dev', ifname, 'root', 'tbf', 'rate', tbf.rate, 'burst', tbf.burst, 'latency', tbf.latency]);
  }
}

/**
 * The nftables ruleset of a host that reaches one TCP port of one address and nothing else:
 * everything inbound is dropped but replies, everything outbound but `daddr:dport` (and
 * loopback). For `Namespace.nft`; `table` names the table (the test's prefix).
 */
export function outboundOnlyTo(table: string, daddr: string, dport: number): string {
  return `table inet ${table} {
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    ct state established,related accept
  }
  chain output {
    type filter hook output priority filter; policy drop;
    oif "lo" accept
    ip daddr ${daddr} tcp dport ${dport} accept
  }
}`;
}

/**
 * The namespaces and links of one test's network. Make it with `Topology.create(prefix)`,
 * add hosts with `namespace(label)` and cables with `link(...)`, and `destroy()` it in a
 * finally or `after` hook.
 */
export class Topology {
  private readonly namespaces: Namespace[] = [];
  private links = 0;

  private constructor(readonly prefix: string) {}

  /** A new, empty topology; first removes namespaces left by earlier runs with this prefix whose process is gone. */
  static create(prefix: string): Topology {
    if (!NAME.test(prefix)) throw new Error(`namespace prefix "${prefix}" must be lowercase letters and digits`);
    removeLeftovers(prefix);
    return new Topology(prefix);
  }

  /** A namespace with its loopback up. */
  async namespace(label: string): Promise<Namespace> {
    if (!NAME.test(label)) throw new Error(`namespace label "${label}" must be lowercase letters and digits`);
    const ns = new Namespace(`${this.prefix}-${process.pid}-${label}`);
    await ip(['netns', 'add', ns.name]);
    this.namespaces.push(ns);
    owned.add(ns.name);
    await ip(['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /**
   * A veth pair between two namespaces, with an address on each end (e.g. 10.231.0.1/30
   * and 10.231.0.2/30), both up. Made inside `a` with its peer placed straight into `b`,
   * so its interface names never meet the host's.
   */
  async link(a: Namespace, aCidr: string, b: Namespace, bCidr: string): Promise<Link> {
    const n = this.links++;
    const ends = [
      { ns: a, ifname: `veth${n}a`, cidr: aCidr, address: aCidr.split('/')[0]! },
      { ns: b, ifname: `veth${n}b`, cidr: bCidr, address: bCidr.split('/')[0]! },
    ] as const;
    await ip(['-n', a.name, 'link', 'add', ends[0].ifname, 'type', 'veth', 'peer', 'name', ends[1].ifname, 'netns', b.name]);
    for (const end of ends) {
      await ip(['-n', end.ns.name, 'address', 'add', end.cidr, 'dev', end.ifname]);
      await ip(['-n', end.ns.name, 'link', 'set', end.ifname, 'up']);
    }
    return {
      a: ends[0],
      b: ends[1],
      setUp: async (up) => {
        for (const end of ends) await ip(['-n', end.ns.name, 'link', 'set', end.ifname, up ? 'up' : 'down']);
      },
    };
  }

  /** Kills whatever still runs in this topology's namespaces and deletes them. Safe to call twice. */
  async destroy(): Promise<void> {
    for (const ns of this.namespaces.splice(0).reverse()) {
      removeNamespace(ns.name);
      owned.delete(ns.name);
    }
  }
}

/** Namespaces this process made and has not removed yet: removed when it ends. */
const owned = new Set<string>();

async function ip(args: readonly string[]): Promise<void> {
  const result = await runTracked('ip', args, { timeoutMs: 15_000 });
  if (result.code !== 0) throw new Error(`ip ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
}

/** Runs a command with `input` on its stdin; rejects with its stderr when it fails. */
function feed(command: readonly string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command.join(' ')} exited ${code}: ${stderr.trim()}\ninput:\n${input}`));
    });
    child.stdin!.end(input);
  });
}

/** Kills the processes inside a namespace, then deletes it (synchronous: also used at exit). */
function removeNamespace(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  spawnSync('ip', ['netns', 'del', name]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes `<prefix>-<pid>-*` namespaces whose pid is no longer running. */
export function removeLeftovers(prefix: string): string[] {
  const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const pattern = new RegExp(`^${prefix}-(\\d+)-\\S+`);
  const removed: string[] = [];
  for (const line of listed.split('\n')) {
    const match = pattern.exec(line.trim());
    if (!match || alive(Number(match[1]))) continue;
    removeNamespace(match[0]);
    removed.push(match[0]);
  }
  return removed;
}

process.on('exit', () => {
  for (const name of owned) removeNamespace(name);
  owned.clear();
});
