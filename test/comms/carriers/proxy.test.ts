import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  bypassesProxy,
  connectThroughProxy,
  parseResponseHead,
  proxyFromEnvironment,
  type ProxySettings,
} from '../../../src/comms/carriers/proxy.js';
import { Writable } from 'node:stream';
import pino from 'pino';
import { proxyAuthRetryDelay } from '../../../src/comms/backoff.js';
import { TentacleComms } from '../../../src/comms/index.js';
import { echo as echoHandler, services, testIdentities } from '../harness.js';
import { closed, readBytes, startEchoServer, type EchoServer } from '../../support/net.js';
import { freePort, startTinyproxy, type Daemon } from '../../support/tinyproxy.js';

describe('proxyFromEnvironment', () => {
  it('reads https_proxy, then HTTPS_PROXY, in URL or bare form', () => {
    assert.deepEqual(proxyFromEnvironment('example.com', 443, { HTTPS_PROXY: 'http://proxy.corp:3128' }), { host: 'proxy.corp', port: 3128, configuredBy: 'HTTPS_PROXY' });
    assert.deepEqual(proxyFromEnvironment('example.com', 443, { https_proxy: 'proxy.corp:8080' }), { host: 'proxy.corp', port: 8080, configuredBy: 'HTTPS_PROXY' });
    assert.deepEqual(proxyFromEnvironment('example.com', 443, { https_proxy: 'http://a:1', HTTPS_PROXY: 'http://b:2' }), { host: 'a', port: 1, configuredBy: 'HTTPS_PROXY' });
    assert.deepEqual(proxyFromEnvironment('example.com', 443, { https_proxy: ' ', HTTPS_PROXY: 'http://b:2' }), { host: 'b', port: 2, configuredBy: 'HTTPS_PROXY' });
    assert.deepEqual(proxyFromEnvironment('example.com', 443, { HTTPS_PROXY: 'http://proxy.corp' }), { host: 'proxy.corp', port: 80, configuredBy: 'HTTPS_PROXY' });
    assert.deepEqual(proxyFromEnvironment('example.com', 443, { HTTPS_PROXY: 'http://[::1]:3128/' }), { host: '::1', port: 3128, configuredBy: 'HTTPS_PROXY' });
    assert.equal(proxyFromEnvironment('example.com', 443, {}), null);
    assert.equal(proxyFromEnvironment('example.com', 443, { HTTP_PROXY: 'http://p:1' }), null);
  });

  it('takes percent-encoded credentials from the URL', () => {
    assert.deepEqual(proxyFromEnvironment('example.com', 443, { HTTPS_PROXY: 'http://us%40er:p%3Ass@proxy:3128' }), {
      host: 'proxy',
      port: 3128,
      username: 'us@er',
      password: 'p:ss',
      configuredBy: 'HTTPS_PROXY',
    });
    assert.deepEqual(proxyFromEnvironment('example.com', 443, { HTTPS_PROXY: 'user:secret@proxy:3128' }), {
      host: 'proxy',
      port: 3128,
      username: 'user',
      password: 'secret',
      configuredBy: 'HTTPS_PROXY',
    });
  });

  it('refuses proxies it cannot speak to, without echoing the password', () => {
    assert.throws(() => proxyFromEnvironment('example.com', 443, { HTTPS_PROXY: 'socks5://u:topsecret@proxy:1080' }), (err: any) => {
      assert.equal(err.code, 'REEF_BAD_PROXY');
      assert.match(err.message, /socks5/);
      assert.doesNotMatch(err.message, /topsecret/);
      return true;
    });
    assert.throws(() => proxyFromEnvironment('example.com', 443, { HTTPS_PROXY: 'https://proxy:443' }), { code: 'REEF_BAD_PROXY' });
  });

  it('honours NO_PROXY and no_proxy', () => {
    assert.equal(proxyFromEnvironment('reef.example.com', 443, { HTTPS_PROXY: 'p:1', NO_PROXY: 'example.com' }), null);
    assert.equal(proxyFromEnvironment('reef.example.com', 443, { HTTPS_PROXY: 'p:1', no_proxy: 'example.com' }), null);
    assert.deepEqual(proxyFromEnvironment('reef.example.org', 443, { HTTPS_PROXY: 'p:1', NO_PROXY: 'example.com' }), { host: 'p', port: 1, configuredBy: 'HTTPS_PROXY' });
  });

  // [target host, target port, NO_PROXY, bypassed?]
  const cases: Array<[string, number, string, boolean]> = [
    ['example.com', 443, '*', true],
    ['example.com', 443, 'other.com, *', true],
    ['example.com', 443, 'example.com', true],
    ['EXAMPLE.com', 443, 'example.COM', true],
    ['example.com.', 443, 'example.com', true],
    ['reef.example.com', 443, 'example.com', true],
    ['reef.example.com', 443, '.example.com', true],
    ['example.com', 443, '.example.com', true],
    ['reef.example.com', 443, '*.example.com', true],
    ['notexample.com', 443, 'example.com', false],
    ['notexample.com', 443, '.example.com', false],
    ['example.com.evil.org', 443, 'example.com', false],
    ['example.com', 443, 'example.com:443', true],
    ['example.com', 10943, 'example.com:443', false],
    ['reef.example.com', 443, '.example.com:443', true],
    ['example.com', 443, ' foo.org ,, example.com ', true],
    ['example.com', 443, 'foo.org example.com', true],
    ['example.com', 443, '', false],
    ['example.com', 443, 'com.example', false],
    ['10.1.2.3', 443, '10.1.2.3', true],
    ['10.1.2.3', 443, '10.1.2.4', false],
    ['10.1.2.3', 443, '10.0.0.0/8', true],
    ['11.1.2.3', 443, '10.0.0.0/8', false],
    ['10.1.2.3', 443, '10.1.2.3:443', true],
    ['10.1.2.3', 80, '10.1.2.3:443', false],
    ['2.3', 443, '10.1.2.3', false], // a suffix match applies to names, not addresses
    ['::1', 443, '::1', true],
    ['[::1]', 443, '::1', true],
    ['::1', 443, '[::1]:443', true],
    ['::1', 10943, '[::1]:443', false],
    ['fd00::5', 443, 'fd00::/8', true],
    ['0:0:0:0:0:0:0:1', 443, '::1', true],
    ['localhost', 443, '127.0.0.1', false], // names are not resolved
  ];
  for (const [host, port, noProxy, expected] of cases) {
    it(`NO_PROXY=${JSON.stringify(noProxy)} ${expected ? 'exempts' : 'does not exempt'} ${host}:${port}`, () => {
      assert.equal(bypassesProxy(host, port, noProxy), expected);
    });
  }
});

describe('parseResponseHead', () => {
  it('waits for the end of the head', () => {
    assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 200 Connection established\r\n')), null);
    assert.equal(parseResponseHead(Buffer.from('HTT')), null);
  });

  it('parses CRLF and bare-LF heads and reports their length', () => {
    const crlf = Buffer.from('HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\nTLS');
    const head = parseResponseHead(crlf)!;
    assert.equal(head.status, 200);
    assert.equal(head.statusLine, 'HTTP/1.1 200 Connection established');
    assert.equal(head.headers.get('proxy-agent'), 'x');
    assert.equal(crlf.subarray(head.length).toString(), 'TLS');

    const lf = Buffer.from('HTTP/1.0 407 Proxy Authentication Required\nProxy-Authenticate: Basic realm="x"\n\nbody');
    const head2 = parseResponseHead(lf)!;
    assert.equal(head2.status, 407);
    assert.equal(head2.headers.get('proxy-authenticate'), 'Basic realm="x"');
    assert.equal(lf.subarray(head2.length).toString(), 'body');

    assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 200\r\n\r\n'))!.status, 200);
  });

  it('rejects garbage, bad status lines, bad headers and oversized heads', () => {
    for (const text of ['SSH-2.0-OpenSSH_9.2\r\n', '\x16\x03\x01\x02\x00', 'HTTP/2 200\r\n\r\n', 'HTTP/1.1 20x OK\r\n\r\n', 'HTTP/1.1 200 OK\r\nno colon\r\n\r\n']) {
      assert.throws(() => parseResponseHead(Buffer.from(text, 'latin1')), { code: 'REEF_PROXY_PROTOCOL' }, JSON.stringify(text));
    }
    const long = Buffer.from('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(20_000));
    assert.throws(() => parseResponseHead(long), (err: any) => err.code === 'REEF_PROXY_PROTOCOL' && /16384 bytes/.test(err.message));
  });
});

describe('connectThroughProxy with tinyproxy', () => {
  let echo: EchoServer;
  let open: Daemon;
  let authed: Daemon;
  let strict: Daemon;
  before(async () => {
    echo = await startEchoServer();
    [open, authed, strict] = await Promise.all([
      startTinyproxy(),
      startTinyproxy({ basicAuth: { username: 'reef', password: 'tops3cret' } }),
      startTinyproxy({ connectPorts: [443] }),
    ]);
  });
  after(async () => {
    await Promise.all([open?.stop(), authed?.stop(), strict?.stop(), echo?.close()]);
  });

  async function roundTrip(proxy: ProxySettings) {
    const socket = await connectThroughProxy(proxy, '127.0.0.1', echo.port, { timeoutMs: 5000 });
    socket.on('error', () => {});
    const payload = Buffer.from('through the tunnel');
    socket.write(payload);
    assert.deepEqual(await readBytes(socket, payload.length), payload);
    socket.destroy();
    await closed(socket);
  }

  it('tunnels bytes to the target', async () => {
    await roundTrip({ host: '127.0.0.1', port: open.port });
  });

  it('authenticates with Basic credentials', async () => {
    await roundTrip({ host: '127.0.0.1', port: authed.port, username: 'reef', password: 'tops3cret' });
  });

  it('says how to set credentials when the proxy wants some', async () => {
    await assert.rejects(connectThroughProxy({ host: '127.0.0.1', port: authed.port }, '127.0.0.1', echo.port, { timeoutMs: 5000 }), (err: any) => {
      assert.equal(err.code, 'REEF_PROXY_AUTH_REQUIRED');
      assert.match(err.message, new RegExp(`The HTTP proxy at 127\\.0\\.0\\.1:${authed.port} requires authentication \\(407 `));
      assert.match(err.message, /Set it with: tentacle polling-proxy .*--proxyUsername .*--proxyPassword/);
      return true;
    });
  });

  it('names the command that configured the proxy: tentacle proxy for REST calls, HTTPS_PROXY from the environment', async () => {
    const rest = { host: '127.0.0.1', port: authed.port, configuredBy: 'tentacle proxy' as const };
    await assert.rejects(connectThroughProxy(rest, '127.0.0.1', echo.port, { timeoutMs: 5000 }), (err: any) => {
      assert.match(err.message, /Set it with: tentacle proxy --proxyHost/);
      assert.doesNotMatch(err.message, /polling-proxy/);
      return true;
    });
    const wrong = { ...rest, username: 'reef', password: 'wrong-pass' };
    await assert.rejects(connectThroughProxy(wrong, '127.0.0.1', echo.port, { timeoutMs: 5000 }), /check them with tentacle proxy\./);
    const fromEnvironment = { host: '127.0.0.1', port: authed.port, configuredBy: 'HTTPS_PROXY' as const };
    await assert.rejects(connectThroughProxy(fromEnvironment, '127.0.0.1', echo.port, { timeoutMs: 5000 }), (err: any) => {
      assert.match(err.message, /HTTPS_PROXY=http:\/\/<user>:<password>@<host>:<port>/);
      assert.doesNotMatch(err.message, /tentacle (polling-)?proxy/);
      return true;
    });
  });

  it('says the proxy refused the credentials given, never showing the password', async () => {
    const proxy = { host: '127.0.0.1', port: authed.port, username: 'reef', password: 'wrong-pass' };
    await assert.rejects(connectThroughProxy(proxy, '127.0.0.1', echo.port, { timeoutMs: 5000 }), (err: any) => {
      assert.equal(err.code, 'REEF_PROXY_AUTH_REQUIRED');
      assert.match(err.message, /requires authentication \(40[17] /); // tinyproxy says 401 Unauthorized
      assert.match(err.message, /refused the username\/password for user "reef"/);
      assert.doesNotMatch(err.message, /wrong-pass/);
      return true;
    });
  });

  it('reports a refused CONNECT with the status line', async () => {
    await assert.rejects(connectThroughProxy({ host: '127.0.0.1', port: strict.port }, '127.0.0.1', echo.port, { timeoutMs: 5000 }), (err: any) => {
      assert.equal(err.code, 'REEF_PROXY_REFUSED');
      assert.match(err.message, new RegExp(`refused CONNECT 127\\.0\\.0\\.1:${echo.port}: HTTP/1\\.[01] 403 `));
      assert.match(err.message, /Most proxies allow CONNECT only to port 443: poll through 443 instead, with --server-comms-address https:\/\/<server>/);
      assert.match(err.message, /--server-web-socket wss:\/\/<server>\/reef\/comms/);
      return true;
    });
  });

  it('reports a proxy that is not running', async () => {
    const port = await freePort();
    await assert.rejects(connectThroughProxy({ host: '127.0.0.1', port }, 'example.com', 443, { timeoutMs: 5000 }), (err: any) => {
      assert.equal(err.code, 'REEF_PROXY_UNREACHABLE');
      assert.match(err.message, new RegExp(`HTTP proxy at 127\\.0\\.0\\.1:${port} \\(to connect to example\\.com:443\\)`));
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
  });
});

describe('a refused proxy login is retried slowly (a wrong password must not lock the account)', () => {
  it('waits 5, 10, 20, then 30 minutes: at most four attempts in the first hour, two an hour after', () => {
    for (const random of [() => 0, () => 0.5, () => 0.999]) {
      const attempts: number[] = [0];
      for (let attempt = 0; attempts.at(-1)! < 3 * 3_600_000; attempt++) attempts.push(attempts.at(-1)! + proxyAuthRetryDelay(attempt, random));
      const inHour = (hour: number) => attempts.filter((t) => t >= hour * 3_600_000 && t < (hour + 1) * 3_600_000).length;
      assert.ok(inHour(0) <= 4, `first hour: ${inHour(0)} attempts`);
      assert.ok(inHour(1) <= 3 && inHour(2) <= 3, `later hours: ${inHour(1)}, ${inHour(2)} attempts`);
    }
    assert.equal(proxyAuthRetryDelay(0, () => 0), 5 * 60_000);
    assert.ok(proxyAuthRetryDelay(50, () => 0.999) <= 36 * 60_000);
  });

  it('a polling Tentacle behind a proxy refusing its password waits minutes, and says so as an error each time', async () => {
    const [echo, proxy] = await Promise.all([startEchoServer(), startTinyproxy({ basicAuth: { username: 'reef', password: 'tops3cret' } })]);
    const entries: { level: number; msg: string; retryInMs?: number }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) entries.push(JSON.parse(line));
        done();
      },
    });
    const ids = await testIdentities();
    const comms = new TentacleComms({ identity: ids.tentacle, services: services({ echo: echoHandler }), logger: pino({ level: 'info' }, sink) });
    const settings = { host: '127.0.0.1', port: proxy.port, username: 'reef', password: 'wrong-pass', configuredBy: 'tentacle polling-proxy' as const };
    let attempts = 0;
    const poller = comms.poll({
      host: '127.0.0.1',
      port: echo.port,
      carrier: 'tcp+proxy',
      trusted: () => [ids.server.thumbprint],
      transport: () => {
        attempts++;
        return connectThroughProxy(settings, '127.0.0.1', echo.port, { timeoutMs: 5000 });
      },
    });
    try {
      const [err, delay] = (await once(poller, 'failed')) as [Error & { code: string }, number];
      assert.equal(err.code, 'REEF_PROXY_AUTH_REQUIRED');
      assert.ok(delay >= 5 * 60_000 && delay <= 6 * 60_000, `next attempt in ${delay} ms`);
      const logged = entries.find((entry) => entry.msg.includes('REEF_PROXY_AUTH_REQUIRED') || entry.msg.includes('requires authentication'));
      assert.ok(logged, JSON.stringify(entries));
      assert.equal(logged.level, 50, 'logged as an error');
      assert.match(logged.msg, /Next attempt in [56] min: a refused proxy login is retried slowly/);
      assert.doesNotMatch(logged.msg, /wrong-pass/);
      // Nothing more within the next second and a half: no retry storm.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(attempts, 1);
    } finally {
      await comms.close();
      await Promise.all([proxy.stop(), echo.close()]);
    }
  });
});

describe('connectThroughProxy with a stub proxy', () => {
  /** A one-shot fake proxy: collects the request head, then runs `answer`. */
  async function stubProxy(answer: (socket: net.Socket, request: string) => void) {
    const requests: string[] = [];
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      let text = '';
      socket.on('data', function onData(chunk) {
        text += chunk.toString('latin1');
        if (!text.includes('\r\n\r\n')) return;
        socket.off('data', onData);
        requests.push(text);
        answer(socket, text);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      proxy: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port } as ProxySettings,
      requests,
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  it('sends CONNECT with Host and Proxy-Authorization, and keeps bytes that follow the head', async () => {
    const stub = await stubProxy((socket) => socket.write('HTTP/1.1 200 OK\r\n\r\nearly bytes'));
    try {
      const socket = await connectThroughProxy({ ...stub.proxy, username: 'u', password: 'p:w' }, 'reef.example.com', 10943, { timeoutMs: 5000 });
      assert.equal((await readBytes(socket, 11)).toString(), 'early bytes');
      socket.destroy();
      assert.equal(
        stub.requests[0],
        'CONNECT reef.example.com:10943 HTTP/1.1\r\nHost: reef.example.com:10943\r\n' +
          `Proxy-Authorization: Basic ${Buffer.from('u:p:w').toString('base64')}\r\n\r\n`,
      );
    } finally {
      await stub.close();
    }
  });

  it('brackets an IPv6 target', async () => {
    const stub = await stubProxy((socket) => socket.write('HTTP/1.1 200 OK\r\n\r\n'));
    try {
      const socket = await connectThroughProxy(stub.proxy, '::1', 443, { timeoutMs: 5000 });
      socket.destroy();
      assert.match(stub.requests[0]!, /^CONNECT \[::1\]:443 HTTP\/1\.1\r\nHost: \[::1\]:443\r\n\r\n$/);
    } finally {
      await stub.close();
    }
  });

  it('reports garbage as a protocol error', async () => {
    const stub = await stubProxy((socket) => socket.write(Buffer.from('\x15\x03\x03\x00\x02\x02\x46garbage', 'latin1')));
    try {
      await assert.rejects(connectThroughProxy(stub.proxy, 'example.com', 443, { timeoutMs: 5000 }), (err: any) => {
        assert.equal(err.code, 'REEF_PROXY_PROTOCOL');
        assert.match(err.message, /is not speaking HTTP/);
        return true;
      });
    } finally {
      await stub.close();
    }
  });

  it('reports a proxy that hangs up without answering', async () => {
    const stub = await stubProxy((socket) => socket.end('HTTP/1.1 200'));
    try {
      await assert.rejects(connectThroughProxy(stub.proxy, 'example.com', 443, { timeoutMs: 5000 }), (err: any) => {
        assert.equal(err.code, 'REEF_PROXY_PROTOCOL');
        assert.match(err.message, /closed the connection before answering CONNECT example\.com:443 \(after 12 bytes/);
        return true;
      });
    } finally {
      await stub.close();
    }
  });

  it('gives up on a proxy that never answers', async () => {
    const stub = await stubProxy(() => {});
    try {
      await assert.rejects(connectThroughProxy(stub.proxy, 'example.com', 443, { timeoutMs: 200 }), (err: any) => {
        assert.equal(err.code, 'REEF_PROXY_TIMEOUT');
        assert.match(err.message, /did not answer CONNECT example\.com:443 within 200 ms/);
        return true;
      });
    } finally {
      await stub.close();
    }
  });

  it('stops when the signal aborts', async () => {
    const stub = await stubProxy(() => {});
    try {
      const controller = new AbortController();
      const pending = connectThroughProxy(stub.proxy, 'example.com', 443, { timeoutMs: 5000, signal: controller.signal });
      while (stub.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      controller.abort();
      await assert.rejects(pending, { code: 'REEF_CALL_CANCELLED' });
    } finally {
      await stub.close();
    }
  });
});
