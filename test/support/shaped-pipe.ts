/**
 * A slow link in memory: two connected Duplex ends whose bytes reach the other end at a
 * fixed rate, each way, while writes are accepted at once, as a kernel's send buffer
 * accepts them. So whatever a sender writes ahead queues in front of its later bytes,
 * exactly what a shaped network link does, without root, namespaces or tc.
 *
 * Each end counts `bytesWritten` (accepted) and `bytesRead` (delivered to it), as a
 * net.Socket does, which is what the comms heartbeat and send pacer read.
 * `cut()` turns the link into a blackhole: queued and later bytes vanish, nobody sees a
 * FIN or an error.
 */
import { Duplex, Readable } from 'node:stream';

export interface ShapedEnd extends Duplex {
  bytesWritten: number;
  bytesRead: number;
}

export interface ShapedPipe {
  a: ShapedEnd;
  b: ShapedEnd;
  /** Bytes written but not yet delivered, both ways. */
  queued(): number;
  cut(): void;
  close(): void;
}

const TICK_MS = 5;

export function shapedPipe(bytesPerSecond: number): ShapedPipe {
  let cut = false;
  const directions: Direction[] = [];
  const makeEnd = (): ShapedEnd => {
    const end = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        end.bytesWritten += chunk.length;
        if (!cut) outgoing.get(end)!.queue.push(chunk);
        done();
      },
    }) as ShapedEnd;
    end.bytesWritten = 0;
    end.bytesRead = 0;
    return end;
  };
  const a = makeEnd();
  const b = makeEnd();
  const outgoing = new Map<ShapedEnd, Direction>([
    [a, new Direction(b)],
    [b, new Direction(a)],
  ]);
  directions.push(...outgoing.values());

  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const allowance = ((now - last) / 1000) * bytesPerSecond;
    last = now;
    for (const direction of directions) direction.deliver(allowance);
  }, TICK_MS);

  function close() {
    clearInterval(timer);
  }

  return {
    a,
    b,
    queued: () => directions.reduce((sum, d) => sum + d.queued(), 0),
    cut() {
      cut = true;
      for (const direction of directions) direction.queue.length = 0;
    },
    close() {
      close();
      a.destroy();
      b.destroy();
    },
  };
}

class Direction {
  readonly queue: Buffer[] = [];
  private credit = 0;

  constructor(private readonly to: ShapedEnd) {}

  queued(): number {
    return this.queue.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  deliver(allowance: number): void {
    // Credit does not pile up while idle: a link has no bytes saved for later.
    this.credit = this.queue.length ? this.credit + allowance : 0;
    while (this.queue.length && this.credit >= 1 && !this.to.destroyed) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, Math.floor(this.credit));
      const piece = n === head.length ? this.queue.shift()! : head.subarray(0, n);
      if (n < head.length) this.queue[0] = head.subarray(n);
      this.credit -= n;
      this.to.bytesRead += n;
      this.to.push(piece);
    }
  }
}

/** `size` bytes as a readable stream, 64 KiB at a time: a body to push through a link. */
export function bytes(size: number): Readable {
  const block = Buffer.alloc(64 * 1024, 0x5a);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const chunk = block.subarray(0, Math.min(block.length, size - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}
