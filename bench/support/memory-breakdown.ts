/**
 * Where a process's resident memory is, for experiments on memory per connection
 * (bench/experiments/fleet-memory.ts): Node's own counters, V8's heap spaces, and the
 * process's anonymous mappings from /proc/self/smaps grouped the way glibc's allocator
 * lays them out ([heap] is the main arena's brk heap; 64 MiB-aligned anonymous regions are
 * other threads' arenas; the rest are mmap'd blocks, V8's pages and thread stacks).
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';

export interface MemoryBreakdown {
  memoryUsage: NodeJS.MemoryUsage;
  /** V8 heap spaces: committed (physical) and used bytes. */
  heapSpaces: Record<string, { physical: number; used: number }>;
  /** Rss (bytes) by kind of mapping. */
  smaps: Record<string, { rss: number; mappings: number }>;
}

export function memoryBreakdown(): MemoryBreakdown {
  const heapSpaces: MemoryBreakdown['heapSpaces'] = {};
  for (const space of v8.getHeapSpaceStatistics()) heapSpaces[space.space_name] = { physical: space.physical_space_size, used: space.space_used_size };
  return { memoryUsage: process.memoryUsage(), heapSpaces, smaps: smapsByKind(readFileSync('/proc/self/smaps', 'utf8')) };
}

function smapsByKind(text: string): MemoryBreakdown['smaps'] {
  const kinds: MemoryBreakdown['smaps'] = {};
  let kind = '';
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const size = parseInt(head[2]!, 16) - parseInt(head[1]!, 16);
      const name = head[3]!;
      kind = name === '' ? (size >= 32 * 2 ** 20 ? 'anon >= 32 MiB' : size >= 1 * 2 ** 20 ? 'anon 1-32 MiB' : 'anon < 1 MiB') : name.startsWith('/') ? 'files' : name;
      const entry = (kinds[kind] ??= { rss: 0, mappings: 0 });
      entry.mappings++;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && kind) kinds[kind]!.rss += Number(rss[1]) * 1024;
  }
  return kinds;
}
