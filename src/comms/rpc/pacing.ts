import type { Http2Session } from 'node:http2';
import { Transform, type Duplex, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Small calls first: a transfer may not fill the link's queues ahead of them.
 *
 * HTTP/2 multiplexes calls, but only above the socket: whatever a transfer has handed to
 * the TLS socket sits in the kernel's send buffer (which Linux grows to hundreds of KiB on
 * its own, and Node cannot bound), and every later frame, a PING, a `scripts.start`, waits
 * behind it. On a 512 kbit/s link 200 KiB is three seconds. So bulk bodies pass a gate that
 * keeps the bytes sent but not yet known to have arrived below a budget, and calls without
 * a body never wait at it.
 *
 * What has arrived is learnt from HTTP/2 PINGs: TCP delivers in order, so the answer to a
 * PING sent when the socket had accepted N bytes proves that those N bytes reached the
 * peer. Bulk bytes are let through a quarter of the budget at a time, and the next quarter
 * only once a probe marks the end of the last one in the socket, so answers come back
 * steadily, one per quarter, instead of all at once behind one burst. The budget is
 * what the link delivers (the fastest rate measured in the last minute) over its round trip
 * plus TARGET_QUEUE_MS, times two so that a faster link is found within a few round
 * trips, and never less than MIN_BUDGET_BYTES. A fast link is thus still filled (the
 * HTTP/2 windows remain the limit there), and a slow one queues a fraction of a second.
 *
 * The round trip is measured by a probe sent when a transfer starts on an otherwise idle
 * session, before the transfer's first byte: a probe sent later shares its TLS record with
 * bulk data, and the peer reads it only once the whole record has arrived. (The quarters
 * keep the records a small call's frames may share small too.)
 */
const MIN_BUDGET_BYTES = 16 * 1024;
/** Queueing a transfer may add for the calls behind it on a link it saturates (times GAIN). */
const TARGET_QUEUE_MS = 100;
const GAIN = 2;
/** Probes in flight at once (Node allows 10 unanswered PINGs per session; the heartbeat needs one). */
const MAX_PROBES = 4;
/** How often an active pacer looks whether a probe is due (bytes reach the socket asynchronously). */
const CHECK_MS = 10;
/**
 * A delivery rate is measured over the answers of the last RATE_SPAN_MS, once they span
 * MIN_RATE_SPAN_MS, or MIN_RATE_BYTES and two round trips (a burst a shaper lets through at
 * once must not pass for the link's rate; a fast link must not wait half a second to be
 * found fast); the budget uses the best rate of the last RATE_MEMORY_S seconds.
 */
const RATE_SPAN_MS = 2000;
const MIN_RATE_SPAN_MS = 500;
const MIN_RATE_BYTES = 128 * 1024;
const RATE_MEMORY_S = 60;
/** Bulk bytes go in pieces of a quarter of the budget, but no smaller than this. */
const SMALLEST_PIECE = 4 * 1024;
/** New socket bytes fewer than this are our own PINGs and the like, no reason for a probe. */
const CONTROL_BYTES = 64;

export class SendPacer {
  private readonly written: () => number;
  /** Socket bytes known to have reached the peer. */
  private delivered: number;
  private lastProbeMark: number;
  private probes = 0;
  /** The link's round trip without queueing, ms. */
  private baseRttMs = Infinity;
  private readonly answers: { at: number; mark: number }[] = [];
  /** Best delivery rate (bytes per ms) in each of the last seconds. */
  private readonly rates: { second: number; rate: number }[] = [];
  private readonly gates = new Set<PacedGate>();
  private waiting: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Set while the round-trip probe of a transfer that started on an idle session is out. */
  private measuringRtt = false;
  /** Bulk bytes let through since the last probe. */
  private releasedSinceProbe = 0;

  /** `socket` is the session's socket; one that counts no bytes written (an in-memory pair) is not paced. */
  constructor(
    private readonly session: Http2Session,
    socket: Duplex,
  ) {
    const counted = socket as Duplex & { bytesWritten?: unknown };
    this.written = typeof counted.bytesWritten === 'number' ? () => counted.bytesWritten as number : () => NaN;
    this.delivered = this.lastProbeMark = this.written();
  }

  /** Streams `body` into `stream` through the gate; resolves or fails as `pipeline` does. */
  send(body: Readable, stream: Writable): Promise<void> {
    if (Number.isNaN(this.delivered) || this.closed) return pipeline(body, stream);
    const gate = new PacedGate(this, stream);
    if (this.gates.size === 0 && this.probes < MAX_PROBES) this.probe(this.written(), true);
    this.gates.add(gate);
    gate.once('close', () => this.forget(gate));
    this.startChecking();
    return pipeline(body, gate, stream);
  }

  /** The session is gone: nothing waits any more. */
  close(): void {
    this.closed = true;
    this.stopChecking();
    this.wake();
  }

  /** Bytes sent on the session, or waiting to be, that the peer has not been seen to receive. */
  inflight(): number {
    return Math.max(0, this.written() - this.delivered) + this.pending();
  }

  budget(): number {
    const rate = this.bestRate();
    if (rate === 0 || !Number.isFinite(this.baseRttMs)) return MIN_BUDGET_BYTES;
    return Math.max(MIN_BUDGET_BYTES, GAIN * rate * (this.baseRttMs + TARGET_QUEUE_MS));
  }

  /** Passes `chunk` on in pieces as the budget allows, then calls `done`. */
  feed(gate: PacedGate, chunk: Buffer, done: () => void): void {
    let offset = 0;
    const step = () => {
      while (offset < chunk.length) {
        if (gate.destroyed) return;
        const quarter = this.quarter();
        const room = this.closed ? Infinity : this.measuringRtt ? 0 : Math.min(this.budget() - this.inflight(), quarter - this.releasedSinceProbe);
        if (room <= 0) {
          this.waiting.push(step);
          return;
        }
        const end = Math.min(chunk.length, offset + Math.max(SMALLEST_PIECE, room));
        gate.push(offset === 0 && end === chunk.length ? chunk : chunk.subarray(offset, end));
        this.releasedSinceProbe += end - offset;
        offset = end;
        // HTTP/2 hands the piece to the socket within this turn of the event loop; mark it then.
        setImmediate(() => this.maybeProbe());
      }
      done();
    };
    step();
  }

  private quarter(): number {
    return Math.max(SMALLEST_PIECE, this.budget() / 4);
  }

  private forget(gate: PacedGate): void {
    this.gates.delete(gate);
    this.wake();
  }

  private startChecking(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), CHECK_MS);
    this.timer.unref();
  }

  private stopChecking(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    if (this.session.destroyed || this.session.closed) return this.close();
    this.maybeProbe();
    if (this.waiting.length && !this.measuringRtt && this.budget() > this.inflight()) this.wake();
    // Once no transfer runs, stop: the probe just sent lets the next one start from what was delivered.
    if (this.gates.size === 0) this.stopChecking();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const step of waiting) step();
  }

  /**
   * A probe is due once a quarter of the budget has been let through (or a gate waits for
   * one to let more through), looked at one turn of the event loop after a piece, when HTTP/2
   * has handed to the socket what it could (bytes it holds back are marked by a later probe);
   * and when bytes nobody marked are out with no probe behind them.
   */
  private maybeProbe(): void {
    if (this.closed || this.probes >= MAX_PROBES) return;
    const mark = this.written();
    if (mark < this.lastProbeMark + CONTROL_BYTES) return;
    const quarterOut = this.releasedSinceProbe > 0 && (this.releasedSinceProbe >= this.quarter() || this.waiting.length > 0);
    if (quarterOut || this.probes === 0) this.probe(mark);
  }

  private pending(): number {
    let pending = 0;
    for (const gate of this.gates) pending += gate.pending();
    return pending;
  }

  /** `roundTrip`: the transfer waits for this probe's answer, which times the link's round trip. */
  private probe(mark: number, roundTrip = false): void {
    const sentAt = performance.now();
    let sent = false;
    try {
      sent = this.session.ping((err) => {
        this.probes--;
        if (roundTrip) this.measuringRtt = false;
        if (!err) this.answered(mark, roundTrip ? performance.now() - sentAt : undefined);
        else this.wake();
      });
    } catch {
      // the session is closing; close() follows
    }
    if (!sent) return;
    this.probes++;
    this.lastProbeMark = mark;
    this.releasedSinceProbe = 0;
    if (roundTrip) this.measuringRtt = true;
    this.wake();
  }

  private answered(mark: number, rttMs: number | undefined): void {
    const now = performance.now();
    if (rttMs !== undefined) this.baseRttMs = Math.min(this.baseRttMs, rttMs);
    if (mark > this.delivered) this.delivered = mark;
    this.measureRate(now, mark);
    this.wake();
    this.maybeProbe();
  }

  private measureRate(now: number, mark: number): void {
    this.answers.push({ at: now, mark });
    while (this.answers.length > 1 && now - this.answers[0]!.at > RATE_SPAN_MS) this.answers.shift();
    const first = this.answers[0]!;
    const span = now - first.at;
    if (span <= 0 || (span < MIN_RATE_SPAN_MS && (mark - first.mark < MIN_RATE_BYTES || span < 2 * this.baseRttMs))) return;
    const rate = (mark - first.mark) / span;
    const second = Math.floor(now / 1000);
    const last = this.rates.at(-1);
    if (last?.second === second) last.rate = Math.max(last.rate, rate);
    else this.rates.push({ second, rate });
    while (this.rates.length && this.rates[0]!.second <= second - RATE_MEMORY_S) this.rates.shift();
  }

  private bestRate(): number {
    let best = 0;
    for (const { rate } of this.rates) best = Math.max(best, rate);
    return best;
  }
}

/** A transfer's bytes on their way into its HTTP/2 stream, let through as the pacer allows. */
class PacedGate extends Transform {
  constructor(
    private readonly pacer: SendPacer,
    private readonly target: Writable,
  ) {
    super();
  }

  /** Bytes let through but not yet handed to the socket. */
  pending(): number {
    return this.readableLength + this.target.writableLength;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.pacer.feed(this, chunk, done);
  }
}
