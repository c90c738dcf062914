import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CommsServer } from '../../src/comms/index.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { newCertificate } from '../../src/tentacle/certificate.js';
import { updateConfig } from '../../src/tentacle/config.js';
import { createInstance } from '../../src/tentacle/instances.js';
import { tentacleBin, tentacleCli, type TentacleCli } from '../cli/tentacle-cli.js';

/** `tentacle agent` as the service runs it: refuses to start without what it needs, stops cleanly on SIGTERM. */

let cli: TentacleCli;

before(async () => {
  cli = await tentacleCli();
});

after(async () => {
  await cli.close();
});

test('without a certificate the agent says how to make one and exits non-zero', async () => {
  await createInstance('NoCert', {}, cli.root);
  const result = await cli.run(['agent', '--instance', 'NoCert']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: No certificate at .*tentacle new-certificate --instance NoCert/m);
});

test('with nothing to poll and listening off the agent exits non-zero', async () => {
  const { config } = await createInstance('Idle', {}, cli.root);
  await newCertificate(config);
  const result = await cli.run(['agent', '--instance', 'Idle']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: Instance "Idle" has no server to poll and listening is off.*register-with --instance Idle/m);
});

test('the agent polls its server, serves calls, and exits 0 on SIGTERM', async () => {
  const serverId = await generateCertificate('Reef Server');
  const { config } = await createInstance('Agent', {}, cli.root);
  const tentacleTp = (await newCertificate(config)).thumbprint;
  const server = new CommsServer({ identity: serverId, trust: (tp) => tp === tentacleTp });
  const port = await server.listen(0, '127.0.0.1');
  try {
    await updateConfig(
      'Agent',
      (c) => {
        c.trust = [serverId.thumbprint];
        c.servers = [{ thumbprint: serverId.thumbprint, address: `tcp://127.0.0.1:${port}` }];
      },
      cli.root,
    );
    const child = spawn(process.execPath, [tentacleBin, 'agent', '--instance', 'Agent'], {
      env: { ...process.env, REEF_TENTACLE_ROOT: cli.root, REEF_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      await Promise.race([
        once(server, 'connected'),
        exited.then(() => assert.fail(`the agent exited early:\n${stderr}`)),
      ]);
      const ping = (await server.call({ thumbprint: tentacleTp }, 'health.ping', {})) as { time: string };
      assert.ok(ping.time);
    } finally {
      child.kill('SIGTERM');
    }
    const [code, signal] = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`"msg":"polling 127\\.0\\.0\\.1:${port} \\(tcp\\)"`));
    assert.match(stderr, /"msg":"agent stopped"/);
  } finally {
    await server.close();
  }
});
