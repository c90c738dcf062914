import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * Who listens on a TCP port, for the message of a start-up that found it taken: Linux's
 * /proc/net/tcp{,6} name the listening socket's inode and owner, and the process holding
 * that inode is found among /proc/<pid>/fd. Another user's processes cannot be looked into
 * (unless running as root), so then only the owner is named. Best effort and bounded in
 * time: anything unreadable (another OS, a container without /proc) just says less.
 */

export interface PortHolder {
  /** Set when the process was found. */
  pid?: number;
  command?: string;
  /** The socket's owner, from /proc/net/tcp. */
  uid: number;
  user?: string;
}

/** The scan of /proc/<pid>/fd stops after this long (thousands of processes on a busy host). */
const SCAN_BUDGET_MS = 500;
const TCP_LISTEN = '0A';

const PROC = '/proc';

export async function findPortHolder(port: number): Promise<PortHolder | undefined> {
  const sockets = [...(await listeners(`${PROC}/net/tcp`, port)), ...(await listeners(`${PROC}/net/tcp6`, port))];
  if (sockets.length === 0) return undefined;
  const inodes = new Set(sockets.map((s) => s.inode));
  const found = processHolding(inodes);
  const uid = sockets[0]!.uid;
  const user = await userName(uid);
  return { ...found, uid, ...(user ? { user } : {}) };
}

/** "held by nginx, pid 812, user www-data", or "held by a process of user www-data (uid 33) this user cannot look into". */
export function describePortHolder(holder: PortHolder): string {
  if (holder.pid !== undefined) return `held by ${holder.command ?? 'a process'}, pid ${holder.pid}, user ${holder.user ?? holder.uid}`;
  return `held by a process of user ${holder.user ? `${holder.user} (uid ${holder.uid})` : holder.uid} this user cannot look into`;
}

/** The describing phrase, or undefined when nothing is known (or looking failed). */
export async function portHolderPhrase(port: number): Promise<string | undefined> {
  try {
    const holder = await findPortHolder(port);
    return holder ? describePortHolder(holder) : undefined;
  } catch {
    return undefined;
  }
}

interface ListeningSocket {
  uid: number;
  inode: string;
}

/** Rows of /proc/net/tcp: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`; the port is hexadecimal after the colon. */
async function listeners(file: string, port: number): Promise<ListeningSocket[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const found: ListeningSocket[] = [];
  // A busy host lists tens of thousands of sockets: only rows naming the port are split.
  const portHex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const line of text.split('\n').slice(1)) {
    if (!line.includes(portHex)) continue;
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== TCP_LISTEN) continue;
    const local = fields[1]!;
    if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue;
    if (fields[9] === '0') continue; // no inode: not a socket any process holds
    found.push({ uid: Number(fields[7]), inode: fields[9]! });
  }
  return found;
}

/**
 * Synchronous on purpose: thousands of readlinks through the thread pool take far longer
 * than the same calls made directly, and this runs once, on a start-up that is failing.
 */
function processHolding(inodes: Set<string>): { pid?: number; command?: string } {
  const targets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const deadline = Date.now() + SCAN_BUDGET_MS;
  let pids: string[];
  try {
    pids = readdirSync(PROC).filter((name) => /^\d+$/.test(name));
  } catch {
    return {};
  }
  for (const pid of pids) {
    if (Date.now() > deadline) return {};
    let fds: string[];
    try {
      fds = readdirSync(`${PROC}/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      let link = '';
      try {
        link = readlinkSync(`${PROC}/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      if (targets.has(link)) return { pid: Number(pid), command: commandOf(`${PROC}/${pid}`) };
    }
  }
  return {};
}

/** The program's name (comm), or undefined. */
function commandOf(dir: string): string | undefined {
  try {
    return readFileSync(`${dir}/comm`, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

async function userName(uid: number): Promise<string | undefined> {
  try {
    for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
      const [name, , id] = line.split(':');
      if (name && Number(id) === uid) return name;
    }
  } catch {
    // no passwd file: the uid is all there is
  }
  return undefined;
}
