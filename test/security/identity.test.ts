/**
 * Identity, both ways, on every route into a real server node: an unknown Tentacle
 * certificate is refused (comms port, 443 front door by SNI and by ALPN, WebSocket path)
 * with a verdict naming its thumbprint; a Tentacle refuses a server it does not pin,
 * including behind a proxy that re-signs the traffic. nginx terminating the outer TLS of
 * the WebSocket changes nothing: the pinned inner TLS is still end to end.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { COMMS_ALPN, TentacleComms } from '../../src/comms/index.js';
import { ReefError } from '../../src/errors.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { thumbprintOfDer } from '../../src/pki/thumbprint.js';
import { startNginx } from '../support/nginx.js';
import type { Daemon } from '../support/tinyproxy.js';
import { dialRoute, ROUTES, startSecurityServer, WEBSOCKET_PATH, type SecurityServer } from './server.js';

function isReef(code: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ReefError, `expected a ReefError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

describe('security: pinned identity on every route', () => {
  let s: SecurityServer;
  let nginx: Daemon;
  let nginxCert: CertificateIdentity;
  before(async () => {
    s = await startSecurityServer();
    nginxCert = await generateCertificate('corporate load balancer');
    // A reverse proxy that ends the outer TLS with its own certificate and re-encrypts to
    // the server's HTTPS port (the front door), as a corporate load balancer would.
    nginx = await startNginx({
      files: { 'lb.crt': nginxCert.certPem, 'lb.key': nginxCert.keyPem },
      config: ({ ports, dir, httpPaths }) => `
http {
  ${httpPaths}
  server {
    listen 127.0.0.1:${ports[0]} ssl;
    ssl_certificate ${dir}/lb.crt;
    ssl_certificate_key ${dir}/lb.key;
    location ${WEBSOCKET_PATH} {
      proxy_pass https://127.0.0.1:${s.running.httpsPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
    }
    location / { return 404; }
  }
}`,
    });
  });
  after(async () => {
    await nginx?.stop();
    await s?.close();
  });

  for (const route of ROUTES) {
    test(`${route}: the registered Tentacle is let in, and sees the server's own thumbprint`, async () => {
      const { socket, peer } = await dialRoute(s, route, { identity: s.tentacle });
      assert.equal(peer.thumbprint, s.running.info.commsThumbprint);
      socket.destroy();
    });

    test(`${route}: an unknown client certificate is refused, the verdict naming its thumbprint`, async () => {
      await assert.rejects(dialRoute(s, route, { identity: s.stranger }), isReef('REEF_UNTRUSTED_CERTIFICATE', new RegExp(`thumbprint ${s.stranger.thumbprint}.*tentacle register-with`)));
    });

    test(`${route}: a Tentacle refuses the server when it pins another thumbprint`, async () => {
      await assert.rejects(
        dialRoute(s, route, { identity: s.tentacle, expected: [s.stranger.thumbprint] }),
        isReef('REEF_UNTRUSTED_CERTIFICATE', new RegExp(`presented certificate thumbprint ${s.running.info.commsThumbprint}`)),
      );
    });
  }

  test('a polling TentacleComms with an unknown certificate reports the refusal naming its thumbprint', async () => {
    const comms = new TentacleComms({ identity: s.stranger, services: new Map() });
    const poller = comms.poll({ host: '127.0.0.1', port: s.running.commsPort, carrier: 'tcp', trusted: () => [s.running.info.commsThumbprint] });
    try {
      const [err] = (await once(poller, 'failed')) as [ReefError];
      assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
      assert.match(err.message, new RegExp(s.stranger.thumbprint));
    } finally {
      await comms.close();
    }
  });

  test('behind nginx terminating the outer TLS: the outer certificate is nginx\'s, the pinned inner one still the server\'s', async () => {
    const outer = tls.connect({ host: '127.0.0.1', port: nginx.port, rejectUnauthorized: false });
    await once(outer, 'secureConnect');
    assert.equal(thumbprintOfDer(outer.getPeerCertificate().raw), nginxCert.thumbprint);
    outer.destroy();

    const url = `wss://127.0.0.1:${nginx.port}${WEBSOCKET_PATH}`;
    const { socket, peer } = await dialRoute(s, 'WebSocket', { identity: s.tentacle, websocketUrl: url });
    assert.equal(peer.thumbprint, s.running.info.commsThumbprint);
    socket.destroy();
    // Pinning the proxy's certificate does not help: the inner TLS is the server's.
    await assert.rejects(
      dialRoute(s, 'WebSocket', { identity: s.tentacle, expected: [nginxCert.thumbprint], websocketUrl: url }),
      isReef('REEF_UNTRUSTED_CERTIFICATE', new RegExp(`presented certificate thumbprint ${s.running.info.commsThumbprint}`)),
    );
    // And the server still checks the Tentacle through it.
    await assert.rejects(dialRoute(s, 'WebSocket', { identity: s.stranger, websocketUrl: url }), isReef('REEF_UNTRUSTED_CERTIFICATE', new RegExp(s.stranger.thumbprint)));
  });

  test('a proxy that re-signs the comms TLS itself (a man in the middle) is refused by the Tentacle, and learns nothing', async () => {
    // Terminates the Tentacle's TLS with its own certificate (ALPN reef-comms, so it looks
    // like a Reef listener) and relays the plaintext into its own TLS to the server.
    const relayed: Buffer[] = [];
    const mitm = tls.createServer({ key: nginxCert.keyPem, cert: nginxCert.certPem, requestCert: true, rejectUnauthorized: false, ALPNProtocols: [COMMS_ALPN] }, (client) => {
      client.on('error', () => {});
      client.on('data', (d: Buffer) => relayed.push(d));
      const upstream = tls.connect({ host: '127.0.0.1', port: s.running.commsPort, rejectUnauthorized: false, ALPNProtocols: [COMMS_ALPN], key: nginxCert.keyPem, cert: nginxCert.certPem });
      upstream.on('error', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    mitm.listen(0, '127.0.0.1');
    await once(mitm, 'listening');
    const port = (mitm.address() as net.AddressInfo).port;
    try {
      const { dialSecure } = await import('../../src/comms/dialer.js');
      await assert.rejects(
        dialSecure({
          identity: s.tentacle,
          host: '127.0.0.1',
          port,
          carrier: 'tcp',
          expected: [s.running.info.commsThumbprint],
          explainMismatch: (tp) => `The server presented certificate thumbprint ${tp}, which this Tentacle does not trust.`,
          handshakeTimeoutMs: 5000,
        }),
        isReef('REEF_UNTRUSTED_CERTIFICATE', new RegExp(`presented certificate thumbprint ${nginxCert.thumbprint}`)),
      );
      // The Tentacle closed right after the handshake: no application byte reached the proxy.
      assert.equal(Buffer.concat(relayed).length, 0);
    } finally {
      mitm.close();
    }
  });
});
