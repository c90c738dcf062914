/**
 * front door: Tentacles reaching the server through its own HTTPS port, routed by SNI
 * to comms without terminating TLS, against the usual alternative in the same run: nginx
 * `stream` with `ssl_preread` routing the same name to the comms port (the configuration
 * of docs/operations.md). Both end in the same server's comms acceptor.
 *
 * - Connection set-up: a polling tentacle's dial (TCP, the router, the full mutual TLS
 *   handshake, pinning, the server's verdict), fresh each time, one after the other from
 *   a tentacle process; rounds alternate between the two routes.
 * - Throughput: a push-file task of 256 MiB to a tentacle polling through each route.
 */
import { join } from 'node:path';
import type { Benchmark, Figure } from '../support/benchmark.js';
import { startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { timePush, uploadPayload } from '../support/payload.js';
import { POLLING_HOSTNAME, registerMachines, startBenchServer } from '../support/reef-server.js';
import { distribution, mibPerSecond, MiB } from '../support/stats.js';
import { startNginx } from '../../test/support/nginx.js';

const benchmark: Benchmark = {
  name: 'front-door',
  order: 6,
  title: 'connection set-up and throughput through the 443 front door',
  timeoutMs: 4 * 60_000,
  async run(context) {
    const rounds = context.param('rounds', 10);
    const connectsPerRound = context.param('connects-per-round', 30);
    const size = context.param('size-mib', 256) * MiB;
    const pushes = context.param('pushes', 2);
    const identities = await tentacleIdentities(3);

    const bench = await startBenchServer();
    context.defer(() => bench.removeData());
    context.defer(() => bench.close());
    const { commsPort, httpsPort } = bench.server;
    const nginx = await startNginx({
      stream: true,
      config: ({ ports }) => `stream {
  map $ssl_preread_server_name $reef_upstream {
    ${POLLING_HOSTNAME} 127.0.0.1:${commsPort};
    default 127.0.0.1:${httpsPort};
  }
  server { listen 127.0.0.1:${ports[0]}; ssl_preread on; proxy_pass $reef_upstream; }
}`,
    });
    context.defer(() => nginx.stop());
    const routes = {
      frontDoor: { address: `https://${POLLING_HOSTNAME}:${httpsPort}`, resolve: { [`${POLLING_HOSTNAME}:${httpsPort}`]: '127.0.0.1' } },
      nginx: { address: `https://${POLLING_HOSTNAME}:${nginx.port}`, resolve: { [`${POLLING_HOSTNAME}:${nginx.port}`]: '127.0.0.1' } },
    };
    await registerMachines(bench.server, [
      { name: 'front-door-1', thumbprint: identities[0]!.thumbprint },
      { name: 'nginx-1', thumbprint: identities[1]!.thumbprint },
      { name: 'dialer', thumbprint: identities[2]!.thumbprint },
    ]);
    const fleet = await startFleet(context, 1);
    const [frontDoorHome] = await fleet.grow({ ...routes.frontDoor, identities: [identities[0]!], serverThumbprint: bench.thumbprint }, 1);
    const [nginxHome] = await fleet.grow({ ...routes.nginx, identities: [identities[1]!], serverThumbprint: bench.thumbprint }, 1);
    const dialer = fleet.workers[0]!;

    context.log(`connection set-up: ${rounds} rounds of ${connectsPerRound} through each`);
    const connects = { frontDoor: [] as number[], nginx: [] as number[] };
    const timeConnects = (route: keyof typeof routes, count: number) =>
      dialer.call('timeConnects', { ...routes[route], serverThumbprint: bench.thumbprint, identity: identities[2]!, count });
    await timeConnects('frontDoor', 10); // warm-up
    await timeConnects('nginx', 10);
    for (let round = 0; round < rounds; round++) {
      connects.frontDoor.push(...(await timeConnects('frontDoor', connectsPerRound)));
      connects.nginx.push(...(await timeConnects('nginx', connectsPerRound)));
    }
    const setup = { frontDoor: distribution(connects.frontDoor), nginx: distribution(connects.nginx) };

    context.log(`throughput: ${pushes} pushes of ${size / MiB} MiB through each`);
    const file = await uploadPayload(bench.api, size);
    const throughput = { frontDoor: [] as number[], nginx: [] as number[] };
    for (let push = 0; push < pushes; push++) {
      throughput.frontDoor.push(mibPerSecond(size, await timePush(bench.api, 'front-door-1', file, join(frontDoorHome!, 'Applications', 'pushed.bin'))));
      throughput.nginx.push(mibPerSecond(size, await timePush(bench.api, 'nginx-1', file, join(nginxHome!, 'Applications', 'pushed.bin'))));
    }
    const best = { frontDoor: Math.max(...throughput.frontDoor), nginx: Math.max(...throughput.nginx) };

    const figures: Figure[] = [
      {
        what: 'connection set-up through the front door, p50',
        value: setup.frontDoor.p50,
        unit: 'ms',
        baseline: { what: 'nginx stream + ssl_preread, p50', value: setup.nginx.p50 },
        target: { kind: 'ratio-at-most', limit: 1 },
      },
      { what: 'connection set-up through the front door, p99', value: setup.frontDoor.p99, unit: 'ms', baseline: { what: 'nginx, p99', value: setup.nginx.p99 } },
      {
        what: `push-file of ${size / MiB} MiB through the front door (best of ${pushes})`,
        value: best.frontDoor,
        unit: 'MiB/s',
        baseline: { what: 'through nginx', value: best.nginx },
        target: { kind: 'ratio-at-least', limit: 1 },
      },
    ];
    return { figures, details: { connectionSetupMs: setup, throughputMiBps: throughput } };
  },
};

export default benchmark;
