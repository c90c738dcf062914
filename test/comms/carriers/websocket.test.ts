import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createAcceptor } from '../../../src/comms/acceptor.js';
import { connectWebSocket, createWebSocketEndpoint, type WebSocketConnectOptions } from '../../../src/comms/carriers/websocket.js';
import { dialSecure } from '../../../src/comms/dialer.js';
import { resolveLimits } from '../../../src/comms/limits.js';
import type { PeerInfo } from '../../../src/comms/peer.js';
import { silentLogger } from '../../../src/logging.js';
import { generateCertificate, type CertificateIdentity } from '../../../src/pki/certificate.js';
import { thumbprintOfDer } from '../../../src/pki/thumbprint.js';
import { startNginx } from '../../support/nginx.js';
import { freePort, startTinyproxy, type Daemon } from '../../support/tinyproxy.js';

const PATH = '/reef/comms';
const FRIENDLY = '<!doctype html><title>Reef comms listener</title>';
const OPTIONS: WebSocketConnectOptions = { timeoutMs: 5000 };

interface Ids {
  server: CertificateIdentity; // the inner, pinned server identity
  tentacle: CertificateIdentity;
  portal: CertificateIdentity; // the outer HTTPS certificate of our own server
  nginx: CertificateIdentity; // the outer certificate of a TLS-terminating nginx
}

/** An HTTP(S) server with the WebSocket endpoint at PATH; everything else is a 404. */
async function startWebServer(identity: CertificateIdentity | null, onStream: (stream: Duplex, req: http.IncomingMessage) => void) {
  const endpoint = createWebSocketEndpoint({
    path: PATH,
    onStream,
    friendlyPage: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(FRIENDLY);
    },
  });
  const server = identity ? https.createServer({ key: identity.keyPem, cert: identity.certPem }) : http.createServer();
  const servernames: Array<string | false | null> = [];
  server.on('secureConnection', (socket: tls.TLSSocket) => servernames.push(socket.servername));
  server.on('request', (req, res) => {
    if (!endpoint.handleRequest(req, res)) res.writeHead(404, { 'content-length': '0' }).end();
  });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    if (!endpoint.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    servernames,
    async close() {
      endpoint.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const echoStream = (stream: Duplex) => {
  stream.on('error', () => {});
  stream.pipe(stream);
};

/** Resolves with exactly `n` bytes from `stream`. */
function readExactly(stream: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= n) {
        stream.off('data', onData);
        stream.off('close', onClose);
        stream.pause();
        resolve(Buffer.concat(chunks).subarray(0, n));
      }
    };
    const onClose = () => reject(new Error(`stream closed after ${length} of ${n} bytes`));
    stream.on('data', onData);
    stream.once('close', onClose);
  });
}

async function assertEchoes(stream: Duplex, size: number): Promise<void> {
  const payload = randomBytes(size);
  const echoed = readExactly(stream, size);
  stream.write(payload);
  assert.ok((await echoed).equals(payload), `${size} bytes came back intact`);
}

describe('WebSocket carrier', () => {
  let ids: Ids;
  before(async () => {
    const [server, tentacle, portal, nginx] = await Promise.all(
      ['Reef Server', 'Tentacle', 'Reef Portal', 'Corporate nginx'].map((name) => generateCertificate(name)),
    );
    ids = { server: server!, tentacle: tentacle!, portal: portal!, nginx: nginx! };
  });

  describe('byte stream', () => {
    let web: Awaited<ReturnType<typeof startWebServer>>;
    before(async () => {
      web = await startWebServer(ids.portal, echoStream);
    });
    after(() => web.close());

    it('carries 1 MiB both ways over wss', async () => {
      const stream = await connectWebSocket(`wss://127.0.0.1:${web.port}${PATH}`, OPTIONS);
      await assertEchoes(stream, 1024 * 1024);
      stream.destroy();
    });

    it('dials resolveTo and sends the URL host as SNI', async () => {
      const stream = await connectWebSocket(`wss://comms.reef.invalid:${web.port}${PATH}`, { ...OPTIONS, resolveTo: '127.0.0.1' });
      await assertEchoes(stream, 100);
      stream.destroy();
      assert.equal(web.servernames.at(-1), 'comms.reef.invalid');
    });

    it('reports a wrong path with the status and what to check', async () => {
      await assert.rejects(connectWebSocket(`wss://127.0.0.1:${web.port}/wrong/path`, OPTIONS), (err: any) => {
        assert.equal(err.code, 'REEF_WEBSOCKET_REFUSED');
        assert.match(err.message, /answered 404 Not Found/);
        assert.match(err.message, /check the URL path/);
        return true;
      });
    });

    it('shows the friendly page to a plain GET on the path', async () => {
      for (const path of [PATH, `${PATH}/`, `${PATH}?from=browser`]) {
        const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
          https.get({ host: '127.0.0.1', port: web.port, path, rejectUnauthorized: false }, resolve).on('error', reject),
        );
        let body = '';
        for await (const chunk of res) body += chunk;
        assert.equal(res.statusCode, 200, path);
        assert.equal(body, FRIENDLY);
      }
    });

    it('answers other methods on the path with 405, and leaves other paths to the server', async () => {
      const request = (method: string, path: string) =>
        new Promise<number | undefined>((resolve, reject) => {
          const req = https.request({ host: '127.0.0.1', port: web.port, path, method, rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve(res.statusCode);
          });
          req.on('error', reject);
          req.end();
        });
      assert.equal(await request('POST', PATH), 405);
      assert.equal(await request('GET', '/reef/comms-other'), 404);
    });

    it('reports wss:// against a plain HTTP endpoint', async () => {
      const plain = await startWebServer(null, echoStream);
      try {
        await assert.rejects(connectWebSocket(`wss://127.0.0.1:${plain.port}${PATH}`, OPTIONS), (err: any) => {
          assert.equal(err.code, 'REEF_WEBSOCKET_FAILED');
          assert.match(err.message, /TLS handshake .* failed .*needs a ws:\/\/ URL/);
          return true;
        });
        const stream = await connectWebSocket(`ws://127.0.0.1:${plain.port}${PATH}`, OPTIONS);
        await assertEchoes(stream, 1000);
        stream.destroy();
      } finally {
        await plain.close();
      }
    });

    it('reports an endpoint that does not answer the upgrade in time', async () => {
      const silent = http.createServer();
      silent.on('upgrade', () => {}); // takes the socket, never answers
      silent.listen(0, '127.0.0.1');
      await once(silent, 'listening');
      try {
        const port = (silent.address() as net.AddressInfo).port;
        await assert.rejects(connectWebSocket(`ws://127.0.0.1:${port}${PATH}`, { timeoutMs: 300 }), {
          code: 'REEF_WEBSOCKET_TIMEOUT',
        });
      } finally {
        silent.closeAllConnections();
        silent.close();
      }
    });

    it('rejects URLs that are not WebSocket URLs', async () => {
      await assert.rejects(connectWebSocket('ftp://example.com/x', OPTIONS), { code: 'REEF_BAD_SERVER_ADDRESS' });
      await assert.rejects(connectWebSocket('not a url', OPTIONS), { code: 'REEF_BAD_SERVER_ADDRESS' });
    });

    it('goes through an HTTP proxy (CONNECT, then wss)', async () => {
      const proxy = await startTinyproxy({ basicAuth: { username: 'reef', password: 's3cret' } });
      try {
        const stream = await connectWebSocket(`wss://127.0.0.1:${web.port}${PATH}`, {
          ...OPTIONS,
          proxy: { host: '127.0.0.1', port: proxy.port, username: 'reef', password: 's3cret' },
        });
        await assertEchoes(stream, 256 * 1024);
        stream.destroy();
      } finally {
        await proxy.stop();
      }
    });

    it('reports a proxy that is down', async () => {
      const port = await freePort();
      await assert.rejects(connectWebSocket(`wss://127.0.0.1:${web.port}${PATH}`, { ...OPTIONS, proxy: { host: '127.0.0.1', port } }), {
        code: 'REEF_PROXY_UNREACHABLE',
      });
    });
  });

  describe('pinned mutual TLS inside the WebSocket', () => {
    /** Our server: HTTPS (its portal certificate) with the endpoint handing streams to the comms acceptor. */
    async function startCommsServer(outer: CertificateIdentity | null) {
      const sessions: PeerInfo[] = [];
      const acceptor = createAcceptor({
        identity: ids.server,
        trust: (tp) => tp === ids.tentacle.thumbprint,
        explainRefusal: (tp) => `untrusted ${tp}`,
        limits: resolveLimits({ handshakeTimeoutMs: 5000 }),
        logger: silentLogger,
        onSession(socket, peer) {
          sessions.push(peer);
          socket.on('error', () => {});
          socket.pipe(socket);
        },
      });
      const web = await startWebServer(outer, (stream) => acceptor.accept(stream, 'websocket'));
      return {
        port: web.port,
        sessions,
        async close() {
          await acceptor.close();
          await web.close();
        },
      };
    }

    function dial(url: string, expected = ids.server.thumbprint, options: Partial<WebSocketConnectOptions> = {}) {
      return dialSecure({
        identity: ids.tentacle,
        host: new URL(url).hostname,
        port: Number(new URL(url).port),
        transport: () => connectWebSocket(url, { ...OPTIONS, ...options }),
        expected: [expected],
        explainMismatch: (tp) => `The server presented ${tp}.`,
        carrier: 'websocket',
        handshakeTimeoutMs: 5000,
      });
    }

    let comms: Awaited<ReturnType<typeof startCommsServer>>;
    let plainComms: Awaited<ReturnType<typeof startCommsServer>>;
    let nginx: Daemon;
    let nginxToHttps: Daemon;
    before(async () => {
      comms = await startCommsServer(ids.portal);
      plainComms = await startCommsServer(null);
      // A reverse proxy that ends the outer TLS with its own certificate, as a corporate
      // load balancer would, and forwards the WebSocket to plain HTTP or to HTTPS.
      const nginxConfig = (upstream: string) => ({
        files: { 'nginx.crt': ids.nginx.certPem, 'nginx.key': ids.nginx.keyPem },
        config: ({ ports, dir, httpPaths }: { ports: number[]; dir: string; httpPaths: string }) => `
http {
  ${httpPaths}
  server {
    listen 127.0.0.1:${ports[0]} ssl;
    ssl_certificate ${dir}/nginx.crt;
    ssl_certificate_key ${dir}/nginx.key;
    location ${PATH} {
      proxy_pass ${upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_read_timeout 300s;
    }
    location / { return 404; }
  }
}`,
      });
      [nginx, nginxToHttps] = await Promise.all([
        startNginx(nginxConfig(`http://127.0.0.1:${plainComms.port}`)),
        startNginx(nginxConfig(`https://127.0.0.1:${comms.port}`)),
      ]);
    });
    after(async () => {
      await Promise.all([nginx?.stop(), nginxToHttps?.stop()]);
      await Promise.all([comms?.close(), plainComms?.close()]);
    });

    it('runs end to end over wss, 4 MiB echoed', async () => {
      const { socket, peer } = await dial(`wss://127.0.0.1:${comms.port}${PATH}`);
      assert.equal(peer.thumbprint, ids.server.thumbprint);
      await assertEchoes(socket, 4 * 1024 * 1024);
      socket.destroy();
      assert.equal(comms.sessions.at(-1)?.thumbprint, ids.tentacle.thumbprint);
    });

    it('runs through nginx terminating the outer TLS with its own certificate (upstream ws://)', async () => {
      // The outer certificate really is nginx's, not the server's.
      const outer = tls.connect({ host: '127.0.0.1', port: nginx.port, rejectUnauthorized: false });
      await once(outer, 'secureConnect');
      assert.equal(thumbprintOfDer(outer.getPeerCertificate().raw), ids.nginx.thumbprint);
      outer.destroy();

      const before = plainComms.sessions.length;
      const { socket, peer } = await dial(`wss://127.0.0.1:${nginx.port}${PATH}`);
      assert.equal(peer.thumbprint, ids.server.thumbprint);
      await assertEchoes(socket, 1024 * 1024);
      socket.destroy();
      assert.equal(plainComms.sessions.length, before + 1);
      assert.equal(plainComms.sessions.at(-1)?.thumbprint, ids.tentacle.thumbprint);
    });

    it('runs through nginx re-encrypting to an https upstream', async () => {
      const { socket, peer } = await dial(`wss://127.0.0.1:${nginxToHttps.port}${PATH}`);
      assert.equal(peer.thumbprint, ids.server.thumbprint);
      await assertEchoes(socket, 1024 * 1024);
      socket.destroy();
    });

    it('runs through tinyproxy and nginx together', async () => {
      const proxy = await startTinyproxy();
      try {
        const { socket } = await dial(`wss://127.0.0.1:${nginx.port}${PATH}`, undefined, { proxy: { host: '127.0.0.1', port: proxy.port } });
        await assertEchoes(socket, 64 * 1024);
        socket.destroy();
      } finally {
        await proxy.stop();
      }
    });

    it('still refuses a server whose inner certificate is not the pinned one', async () => {
      await assert.rejects(dial(`wss://127.0.0.1:${nginx.port}${PATH}`, ids.nginx.thumbprint), (err: any) => {
        assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
        assert.match(err.message, new RegExp(`presented ${ids.server.thumbprint}`));
        return true;
      });
    });

    it('reports a wrong path behind nginx', async () => {
      await assert.rejects(dial(`wss://127.0.0.1:${nginx.port}/OctopusComms`), (err: any) => {
        assert.equal(err.code, 'REEF_WEBSOCKET_REFUSED');
        assert.match(err.message, /404 Not Found/);
        return true;
      });
    });
  });
});
