/**
 * glibc's own account of a process's heap, read from outside with gdb (malloc_info(3)
 * called in the stopped process): per arena, the bytes it holds from the system and the
 * bytes free inside them. Held minus free is what the program has allocated and not freed;
 * free bytes inside held pages are the allocator's fragmentation or high-water mark.
 * Only for experiments (bench/experiments/fleet-memory.ts): it stops the process for a
 * moment and needs gdb and ptrace rights over it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface MallocArena {
  /** 0 is the main arena (the brk heap); others are threads' arenas. */
  arena: number;
  /** Bytes the arena holds from the system. */
  system: number;
  /** Free bytes inside them (fast bins and the rest). */
  free: number;
}

export interface MallocInfo {
  arenas: MallocArena[];
  /** Totals over every arena, and blocks served by mmap of their own (large allocations, always in use). */
  system: number;
  free: number;
  mmap: number;
  /**
   * glibc's thresholds now (they move: freeing a block that was mmap'd raises both, up to
   * 32 MiB and 64 MiB), and the size of the main arena's top chunk, the free end of the
   * heap that is only given back beyond the trim threshold.
   */
  trimThreshold: number;
  mmapThreshold: number;
  topChunk: number;
}

export async function mallocInfo(pid: number): Promise<MallocInfo> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-malloc-info-'));
  const file = join(dir, 'malloc-info.xml');
  try {
    const { stdout } = await promisify(execFile)(
      'gdb',
      [
        '-p', String(pid), '-batch', '-nx',
        '-ex', `set $f = (void *) fopen("${file}", "w")`, '-ex', 'call (int) malloc_info(0, $f)', '-ex', 'call (int) fclose($f)',
        // Needs glibc's debug symbols (Debian's libc6-dbg or debuginfod); 0 without them.
        '-ex', 'printf "trim=%lu mmap=%lu top=%lu\\n", mp_.trim_threshold, mp_.mmap_threshold, main_arena.top->mchunk_size & ~7',
      ],
      { timeout: 60_000 },
    );
    const thresholds = /trim=(\d+) mmap=(\d+) top=(\d+)/.exec(stdout);
    return {
      ...parseMallocInfo(await readFile(file, 'utf8')),
      trimThreshold: Number(thresholds?.[1] ?? 0),
      mmapThreshold: Number(thresholds?.[2] ?? 0),
      topChunk: Number(thresholds?.[3] ?? 0),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function parseMallocInfo(xml: string): Omit<MallocInfo, 'trimThreshold' | 'mmapThreshold' | 'topChunk'> {
  const arenas: MallocArena[] = [];
  for (const heap of xml.matchAll(/<heap nr="(\d+)">([\s\S]*?)<\/heap>/g)) {
    arenas.push({ arena: Number(heap[1]), system: attribute(heap[2]!, 'system', 'current'), free: attribute(heap[2]!, 'total', 'fast') + attribute(heap[2]!, 'total', 'rest') });
  }
  const totals = xml.slice(xml.lastIndexOf('</heap>'));
  return { arenas, system: attribute(totals, 'system', 'current'), free: attribute(totals, 'total', 'fast') + attribute(totals, 'total', 'rest'), mmap: attribute(totals, 'total', 'mmap') };
}

function attribute(xml: string, element: string, type: string): number {
  const match = new RegExp(`<${element} type="${type}"(?: count="\\d+")? size="(\\d+)"/>`).exec(xml);
  return match ? Number(match[1]) : 0;
}
