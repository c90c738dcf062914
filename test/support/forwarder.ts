/**
 * A TCP forwarder on 127.0.0.1 that injects faults between a client and a target, so
 * tests can exercise heartbeats, half-open links, resumable transfers and reconnects on
 * real sockets:
 *
 *   client ──► forwarder (127.0.0.1:port) ──► target (targetHost:targetPort)
 *
 * "upstream" is client → target, "downstream" is target → client. Each accepted client
 * gets its own connection to the target; the two sockets form a pair. FIN is forwarded as
 * FIN (half-close is preserved); an error or reset on either side resets the other.
 *
 * Faults:
 * - setDelay(ms): every chunk (and FIN) is delivered no earlier than `ms` after it
 *   arrived, in arrival order, in both directions.
 * - pause(): a blackhole. Both sockets stay open, nothing is delivered either way, and
 *   bytes that arrive (or were waiting out a delay) are DROPPED, as is FIN: the peers see
 *   a silent, half-open link. resume() forwards only bytes that arrive afterwards, so a
 *   connection that lost bytes is corrupt (a TLS stream will fail); for "the link stalls
 *   and then recovers intact", use pause('hold') instead: reading stops, bytes wait in
 *   the kernel buffers (senders feel TCP backpressure), and resume() delivers them all.
 * - cutAfter(n, direction): once n more bytes have been forwarded in that direction,
 *   both sockets are reset. 'both' gives each direction its own budget of n. The rule
 *   applies to live pairs (counting from the call) and to every later pair (counting
 *   from its start) until replaced; cutAfter(Infinity) clears it.
 * - killAll(), refuse(on), setTarget(port, host): see the methods below.
 *
 * Kills use resetAndDestroy() (an RST, like a crashed peer or a middlebox dropping the
 * flow), falling back to destroy() while a socket is still connecting.
 *
 * Events: 'connection' when a pair is linked (target connected), 'disconnect' when a
 * pair stops being live. Targets must be loopback: tests never leave 127.0.0.0/8 or ::1.
 */
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export type Direction = 'upstream' | 'downstream';

export interface PairInfo {
  /** 1, 2, 3... in order of acceptance (refused connections take a number too). */
  id: number;
  /** The client's source port, to tell which client a pair belongs to. */
  clientPort: number;
}

export interface ForwarderEvents {
  connection: [PairInfo];
  disconnect: [PairInfo];
}

export interface Forwarder extends EventEmitter<ForwarderEvents> {
  /** Listening port on 127.0.0.1, chosen by the OS. */
  readonly port: number;
  /** Live forwarded pairs: accepted and not yet closed, killed or cut. */
  readonly connections: number;
  /** Connections accepted so far, refused ones included; reconnect tests count on it. */
  readonly accepted: number;
  /** Deliver each chunk `ms` after it arrived, both directions, order kept. 0 = at once. */
  setDelay(ms: number): void;
  /** Stop delivering both ways, keep sockets open; 'drop' (default) discards, 'hold' stalls. */
  pause(mode?: 'drop' | 'hold'): void;
  /** Deliver again: new bytes after 'drop', held bytes then new ones after 'hold'. */
  resume(): void;
  /** Reset both sockets of a pair once `bytes` more have been forwarded that way. */
  cutAfter(bytes: number, direction?: Direction | 'both'): void;
  /** Reset both sockets of every live pair now. */
  killAll(): void;
  /** While on, new connections are accepted and reset at once, never reaching the target. */
  refuse(on: boolean): void;
  /** Connections accepted from now on go to this target; live pairs are untouched. */
  setTarget(port: number, host?: string): void;
  /** Stop listening, reset every socket, resolve once every handle is closed. */
  close(): Promise<void>;
}

export interface ForwarderOptions {
  targetPort: number;
  /** Default 127.0.0.1. Must be loopback. */
  targetHost?: string;
}

export async function startForwarder(opts: ForwarderOptions): Promise<Forwarder> {
  const forwarder = new TcpForwarder(opts.targetPort, opts.targetHost ?? '127.0.0.1');
  await forwarder.listen();
  return forwarder;
}

/** One direction of a pair. A null chunk stands for FIN. */
interface Leg {
  readonly from: net.Socket;
  readonly to: net.Socket;
  queue: Array<{ due: number; chunk: Buffer | null }>;
  timer: NodeJS.Timeout | undefined;
  /** Bytes this leg may still forward before the pair is cut. */
  budget: number;
  /** `to` returned false from write(); `from` stays paused until 'drain'. */
  blocked: boolean;
}

interface Pair {
  readonly info: PairInfo;
  readonly client: net.Socket;
  readonly target: net.Socket;
  readonly legs: Record<Direction, Leg>;
  /** connecting: target not connected yet; cutting: last bytes in flight before the reset. */
  state: 'connecting' | 'linked' | 'cutting' | 'dead';
}

class TcpForwarder extends EventEmitter<ForwarderEvents> implements Forwarder {
  private readonly server: net.Server;
  private readonly pairs = new Set<Pair>();
  /** Every socket whose handle is still open, pairs or not, so close() can wait for all. */
  private readonly sockets = new Set<net.Socket>();
  private delayMs = 0;
  private paused: 'drop' | 'hold' | null = null;
  private cut: { bytes: number; direction: Direction | 'both' } | null = null;
  private refusing = false;
  private acceptedCount = 0;
  private closing: Promise<void> | undefined;

  constructor(
    private targetPort: number,
    private targetHost: string,
  ) {
    super();
    assertTarget(targetPort, targetHost);
    // pauseOnConnect: the client's bytes wait in the kernel until the target is connected.
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
      this.accept(socket),
    );
  }

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get connections(): number {
    return this.pairs.size;
  }

  get accepted(): number {
    return this.acceptedCount;
  }

  setDelay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`forwarder delay must be a finite number of ms >= 0, got ${ms}`);
    }
    this.delayMs = ms;
  }

  pause(mode: 'drop' | 'hold' = 'drop'): void {
    this.paused = mode;
    for (const pair of this.pairs) {
      for (const leg of legsOf(pair)) {
        if (mode === 'drop') clearLeg(leg);
        else if (leg.timer) {
          clearTimeout(leg.timer);
          leg.timer = undefined;
        }
        this.updateFlow(pair, leg);
      }
    }
  }

  resume(): void {
    this.paused = null;
    for (const pair of this.pairs) {
      for (const leg of legsOf(pair)) {
        this.flush(pair, leg);
        this.updateFlow(pair, leg);
      }
    }
  }

  cutAfter(bytes: number, direction: Direction | 'both' = 'both'): void {
    if (bytes !== Infinity && !(Number.isInteger(bytes) && bytes > 0)) {
      throw new RangeError(
        `cutAfter needs a whole number of bytes > 0 (or Infinity to clear the rule), got ${bytes}`,
      );
    }
    this.cut = bytes === Infinity ? null : { bytes, direction };
    for (const pair of this.pairs) this.applyCutRule(pair);
  }

  killAll(): void {
    for (const pair of this.pairs) this.destroyPair(pair);
  }

  refuse(on: boolean): void {
    this.refusing = on;
  }

  setTarget(port: number, host = '127.0.0.1'): void {
    assertTarget(port, host);
    this.targetPort = port;
    this.targetHost = host;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const pair of this.pairs) this.destroyPair(pair);
      const closed = [...this.sockets].map((socket) => {
        // Not events.once: it would reject on the socket's 'error'.
        const done = new Promise((resolve) => socket.once('close', resolve));
        kill(socket);
        return done;
      });
      await Promise.all([stopped, ...closed]);
    })();
    return this.closing;
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    // Resets and refused targets are the point of this tool; 'close' does the cleanup.
    socket.on('error', () => {});
  }

  private accept(client: net.Socket): void {
    this.track(client);
    const id = ++this.acceptedCount;
    if (this.refusing || this.closing) {
      kill(client);
      return;
    }
    client.setNoDelay(true);
    const target = net.connect({ port: this.targetPort, host: this.targetHost, allowHalfOpen: true });
    this.track(target);
    target.setNoDelay(true);
    const leg = (from: net.Socket, to: net.Socket): Leg => ({
      from,
      to,
      queue: [],
      timer: undefined,
      budget: Infinity,
      blocked: false,
    });
    const pair: Pair = {
      info: { id, clientPort: client.remotePort ?? 0 },
      client,
      target,
      legs: { upstream: leg(client, target), downstream: leg(target, client) },
      state: 'connecting',
    };
    this.pairs.add(pair);
    this.applyCutRule(pair);

    target.once('connect', () => {
      if (pair.state !== 'connecting') return;
      pair.state = 'linked';
      // Listen only now: a 'data' listener starts reading, and until the target answered
      // the client's bytes belong in the kernel buffer.
      for (const l of legsOf(pair)) {
        l.from.on('data', (chunk: Buffer) => this.receive(pair, l, chunk));
        l.from.on('end', () => this.receive(pair, l, null));
        this.updateFlow(pair, l);
      }
      this.emit('connection', pair.info);
    });
    let open = 2;
    const onClose = (hadError: boolean): void => {
      open -= 1;
      // A reset or error on one side is passed on as a reset; a clean close waits for the
      // other side to finish its own half-close.
      if (hadError || open === 0) this.destroyPair(pair);
    };
    client.once('close', onClose);
    target.once('close', onClose);
  }

  private applyCutRule(pair: Pair): void {
    const { cut } = this;
    pair.legs.upstream.budget = cut && cut.direction !== 'downstream' ? cut.bytes : Infinity;
    pair.legs.downstream.budget = cut && cut.direction !== 'upstream' ? cut.bytes : Infinity;
  }

  private receive(pair: Pair, leg: Leg, chunk: Buffer | null): void {
    if (pair.state !== 'linked' || this.paused === 'drop') return;
    if (this.delayMs === 0 && leg.queue.length === 0 && this.paused === null) {
      this.deliver(pair, leg, chunk);
      return;
    }
    const last = leg.queue[leg.queue.length - 1];
    // max() keeps order when the delay shrinks while chunks are queued.
    const due = Math.max(performance.now() + this.delayMs, last?.due ?? 0);
    leg.queue.push({ due, chunk });
    this.schedule(pair, leg);
  }

  private schedule(pair: Pair, leg: Leg): void {
    const head = leg.queue[0];
    if (leg.timer || !head || this.paused !== null || pair.state !== 'linked') return;
    const wait = Math.max(0, Math.ceil(head.due - performance.now()));
    leg.timer = setTimeout(() => {
      leg.timer = undefined;
      this.flush(pair, leg);
    }, wait);
  }

  /** Deliver every queued item that is due; timers may fire a little early, so re-check. */
  private flush(pair: Pair, leg: Leg): void {
    while (pair.state === 'linked' && this.paused === null) {
      const head = leg.queue[0];
      if (!head || head.due > performance.now()) break;
      leg.queue.shift();
      this.deliver(pair, leg, head.chunk);
    }
    this.schedule(pair, leg);
  }

  private deliver(pair: Pair, leg: Leg, chunk: Buffer | null): void {
    if (chunk === null) {
      leg.to.end();
      return;
    }
    if (chunk.length >= leg.budget) {
      // Let the last allowed bytes reach the kernel before the reset, so the peer sees
      // exactly the budget unless its receive buffer was full (then it sees fewer).
      const last = chunk.subarray(0, leg.budget);
      pair.state = 'cutting';
      for (const l of legsOf(pair)) clearLeg(l);
      leg.to.write(last, () => this.destroyPair(pair));
      return;
    }
    leg.budget -= chunk.length;
    if (!leg.to.write(chunk) && !leg.blocked) {
      leg.blocked = true;
      leg.to.once('drain', () => {
        leg.blocked = false;
        this.updateFlow(pair, leg);
      });
      this.updateFlow(pair, leg);
    }
  }

  /** Read from a leg's source only when its bytes can go somewhere. */
  private updateFlow(pair: Pair, leg: Leg): void {
    if (pair.state !== 'linked') return;
    if (leg.blocked || this.paused === 'hold') leg.from.pause();
    else leg.from.resume();
  }

  private destroyPair(pair: Pair): void {
    if (pair.state === 'dead') return;
    pair.state = 'dead';
    for (const leg of legsOf(pair)) clearLeg(leg);
    kill(pair.client);
    kill(pair.target);
    this.pairs.delete(pair);
    this.emit('disconnect', pair.info);
  }
}

function legsOf(pair: Pair): Leg[] {
  return [pair.legs.upstream, pair.legs.downstream];
}

function clearLeg(leg: Leg): void {
  if (leg.timer) clearTimeout(leg.timer);
  leg.timer = undefined;
  leg.queue = [];
}

/** RST when the socket is connected; a socket still connecting has nothing to reset. */
function kill(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

function assertTarget(port: number, host: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`forwarder target port must be 1..65535, got ${port}`);
  }
  const loopback =
    host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
  if (!loopback) {
    throw new RangeError(
      `forwarder target host ${JSON.stringify(host)} is not loopback; tests may only reach ` +
        '127.0.0.0/8, ::1 or localhost',
    );
  }
}
