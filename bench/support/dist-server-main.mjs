/**
 * Entry of the reconnect benchmark's restarted server: plain `node` loading the built
 * dist/, as `reef server run` does in production (no tsx compiling the sources on the
 * way), so "server process start to listening" is the figure an operator's restart has.
 * It speaks the worker protocol of workers.ts (the operations of DistServerOperations in
 * server-worker.ts).
 * Plain JavaScript on purpose: anything loaded through tsx here would be in the figure.
 */
const enteredMs = performance.now();
const { startReefServer } = await import('../../dist/server/runtime.js');
const importedMs = performance.now();

/** @type {Awaited<ReturnType<typeof startReefServer>> | undefined} */
let running;
/** Tentacle connections accepted since the start, by whether the TLS handshake resumed a session. */
const handshakes = { resumed: 0, full: 0 };

const operations = {
  /** Starts on the data directory and ports of the first start; `listeningMs` is this process's age once every port listens. */
  async start({ dataDir, commsPort, httpsPort, limits }) {
    running = await startReefServer({ dataDir, commsPort, httpsPort, host: '127.0.0.1', pollingHostnames: ['polling.reef.bench'], limits });
    running.comms.on('connected', (client) => void (client.peer.resumed ? handshakes.resumed++ : handshakes.full++));
    // Where the time went: Node's own start (until this module ran), loading dist/, then startReefServer.
    return { listeningMs: performance.now(), enteredMs, importedMs, commsPort: running.commsPort, httpsPort: running.httpsPort, thumbprint: running.info.commsThumbprint };
  },
  async links() {
    return running?.comms.links.size ?? 0;
  },
  async handshakes() {
    return { ...handshakes };
  },
  /** CPU time this process has used so far (user + system), in ms. */
  async cpuMs() {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  },
  /** The signals admission control watches (src/comms/admission.ts), sampled by the benchmark. */
  async admission() {
    const admission = running?.comms.admission;
    return { handshakesInFlight: admission?.handshakesInFlight ?? 0, eventLoopDelayMs: admission?.eventLoopDelayMs ?? 0 };
  },
};

process.on('disconnect', () => process.exit(0));
process.on('message', (request) => {
  const operation = operations[request.op];
  const answer = (message) => process.connected && process.send(message);
  if (!operation) return answer({ id: request.id, error: `the dist server has no operation "${request.op}"` });
  operation(request.args).then(
    (result) => answer({ id: request.id, result }),
    (err) => answer({ id: request.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.send('loaded');
