/**
 * Which of glibc's main-arena chunks are resident, read from outside a process: its [heap]
 * is walked chunk by chunk (each chunk's size word, as malloc laid them out), and each
 * chunk's pages are looked up in /proc/PID/pagemap. Answers, by chunk size, how many bytes
 * are allocated and how many of those are in RAM: a large buffer whose pages were never
 * written costs address space, not memory, unless it was carved out of memory that an
 * earlier allocation had written and freed. Only for experiments
 * (bench/experiments/fleet-memory.ts); needs root (pagemap and /proc/PID/mem), and the
 * process should be idle while it is read.
 */
import { open, readFile } from 'node:fs/promises';

const PAGE = 4096;
const PRESENT = 1n << 63n;

export interface ChunkClass {
  /** Chunk size in bytes (the request plus glibc's 16-byte header, rounded up to 16). */
  size: number;
  count: number;
  bytes: number;
  /** Bytes of these chunks on pages in RAM. */
  resident: number;
}

export interface HeapChunks {
  heapBytes: number;
  heapResident: number;
  /** Where the walk stopped: the top chunk (the heap's unused end) unless a size word made no sense. */
  walkedBytes: number;
  inUse: { bytes: number; resident: number };
  free: { bytes: number; resident: number };
  /** In-use chunks of the sizes that hold most bytes, largest total first. */
  largestInUse: ChunkClass[];
}

export async function heapChunks(pid: number, classes = 12): Promise<HeapChunks> {
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
  const line = maps.split('\n').find((l) => l.endsWith('[heap]'));
  if (!line) throw new Error(`process ${pid} has no [heap] mapping`);
  const [start, end] = line.split(' ')[0]!.split('-').map((hex) => parseInt(hex, 16)) as [number, number];
  const pages = (end - start) / PAGE;
  const present = new Uint8Array(pages);
  const pagemap = await open(`/proc/${pid}/pagemap`, 'r');
  try {
    const entries = Buffer.alloc(pages * 8);
    await pagemap.read(entries, 0, entries.length, (start / PAGE) * 8);
    for (let i = 0; i < pages; i++) present[i] = entries.readBigUInt64LE(i * 8) & PRESENT ? 1 : 0;
  } finally {
    await pagemap.close();
  }
  // Only resident pages are read: reading the others would map them.
  const heap = Buffer.alloc(end - start);
  const mem = await open(`/proc/${pid}/mem`, 'r');
  try {
    for (let i = 0; i < pages; ) {
      if (!present[i]) {
        i++;
        continue;
      }
      let j = i;
      while (j < pages && present[j]) j++;
      await mem.read(heap, i * PAGE, (j - i) * PAGE, start + i * PAGE);
      i = j;
    }
  } finally {
    await mem.close();
  }
  /** Bytes of [from, to) on resident pages. */
  const residentIn = (from: number, to: number) => {
    let bytes = 0;
    for (let p = Math.floor(from / PAGE); p < Math.ceil(to / PAGE); p++) if (present[p]) bytes += Math.min(to, (p + 1) * PAGE) - Math.max(from, p * PAGE);
    return bytes;
  };
  const bySize = new Map<number, ChunkClass>();
  const inUse = { bytes: 0, resident: 0 };
  const free = { bytes: 0, resident: 0 };
  // Walk from the first chunk to the top chunk; a chunk is in use when the next one's PREV_INUSE bit says so.
  let offset = 0;
  while (offset + 16 <= heap.length) {
    const size = Number(heap.readBigUInt64LE(offset + 8) & ~7n);
    if (size < 32 || offset + size > heap.length) break;
    const next = offset + size;
    const used = next + 16 <= heap.length ? (heap.readBigUInt64LE(next + 8) & 1n) === 1n : false;
    if (next + 16 > heap.length) break; // the top chunk
    const resident = residentIn(offset, next);
    const account = used ? inUse : free;
    account.bytes += size;
    account.resident += resident;
    if (used) {
      const entry = bySize.get(size) ?? { size, count: 0, bytes: 0, resident: 0 };
      entry.count++;
      entry.bytes += size;
      entry.resident += resident;
      bySize.set(size, entry);
    }
    offset = next;
  }
  return {
    heapBytes: end - start,
    heapResident: residentIn(0, end - start),
    walkedBytes: offset,
    inUse,
    free,
    largestInUse: [...bySize.values()].sort((a, b) => b.bytes - a.bytes).slice(0, classes),
  };
}
