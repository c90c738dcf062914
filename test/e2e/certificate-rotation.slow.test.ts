/**
 * Server certificate rotation end to end, with a real `reef server run` and real polling
 * `tentacle agent`s: one Tentacle online throughout learns the new thumbprint, moves to
 * the new certificate and drops the old one; one offline throughout (its agent first
 * started after completion and a server restart) still gets in on the old certificate by
 * asking for it, learns the new one and ends on it. The grace period is 0 so nothing
 * waits on a timer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CertificateRotationView, MachineView } from '../../src/api/contract.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

describe('server certificate rotation', () => {
  let server: ServerProcess;
  let dataDir: string;
  let root: string;
  let adminKey: string;
  let httpsPort: number;
  let commsPort: number;
  const oldThumbprint = () => server.thumbprint;
  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
  const trustOf = async (instance: string): Promise<string[]> => JSON.parse(await tentacle(['show-configuration', '--instance', instance])).trust;
  const reef = (args: string[], thumbprint = oldThumbprint()) => cli('reef', args, { ...server.env(adminKey), REEF_SERVER_THUMBPRINT: thumbprint });
  const rotate = async (args: string[], thumbprint?: string): Promise<CertificateRotationView> => {
    const result = await reef(['server', 'rotate-certificate', '--json', ...args], thumbprint);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as CertificateRotationView;
  };
  const online = async (name: string, thumbprint: string) => {
    const result = await reef(['machines', 'show', name, '--json'], thumbprint);
    return result.code === 0 && (JSON.parse(result.stdout) as MachineView).online;
  };

  before(async () => {
    [dataDir, root, httpsPort, commsPort] = await Promise.all([tempDir('rotate-server'), tempDir('rotate-tentacles'), freePort(), freePort()]);
    server = await startServer({ dataDir, httpsPort, commsPort, name: 'rotate-server' });
    adminKey = server.adminKey!;
    for (const [instance, name] of [['Online1', 'online-1'], ['Offline1', 'offline-1']] as const) {
      await tentacle(['create-instance', '--instance', instance]);
      await tentacle(['new-certificate', '--instance', instance]);
      await tentacle(['register-with', '--instance', instance, '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', adminKey,
        '--server-comms-port', String(commsPort), '--environment', 'Test', '--role', 'web', '--name', name]);
    }
    await startAgent(root, 'Online1');
    await waitFor('online-1 to connect', () => online('online-1', oldThumbprint()));
  });

  after(() => stopAll());

  test('a rotation ends with the online Tentacle on the new certificate and the offline one let in and moved over', async () => {
    const started = await rotate(['--grace', '0s']);
    assert.equal(started.state, 'under-way');
    assert.equal(started.oldThumbprint, oldThumbprint());
    assert.notEqual(started.newThumbprint, started.oldThumbprint);
    const newThumbprint = started.newThumbprint;

    // The connected Tentacle is told at once and writes it to its configuration.
    await waitFor('online-1 to trust the new thumbprint', async () => (await trustOf('Online1')).includes(newThumbprint));
    assert.deepEqual(await trustOf('Online1'), [oldThumbprint(), newThumbprint]);
    const status = await rotate(['--status']);
    assert.equal(status.trusting, 1);
    assert.equal(status.machines, 2);
    assert.deepEqual(status.notTrusting.map((m) => [m.name, m.connected]), [['offline-1', false]]);
    const text = await reef(['server', 'rotate-certificate', '--status']);
    assert.match(text.stdout, /Tentacles trusting the new thumbprint: 1 of 2/);
    assert.match(text.stdout, /^offline-1\s+no\s/m);

    // A second rotation cannot start while this one is under way.
    const again = await reef(['server', 'rotate-certificate']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /under way already/);

    // Before completing, scripts accept both thumbprints.
    const both = `${oldThumbprint()},${newThumbprint}`;
    const completed = await rotate(['--complete'], both);
    assert.equal(completed.state, 'completed');
    assert.equal((await ok('reef', ['server', 'show-thumbprint', '--data', dataDir])).trim(), newThumbprint, 'the data directory holds the new certificate');

    // The portal presents the new certificate too: the old pin alone is refused, the new one works.
    const oldPin = await reef(['machines', 'list']);
    assert.equal(oldPin.code, 1);
    assert.match(oldPin.stderr, new RegExp(`presented certificate thumbprint ${newThumbprint}`));

    // Grace 0: the online Tentacle drops the old thumbprint and ends connected on the new certificate.
    await waitFor('online-1 to drop the old thumbprint', async () => (await trustOf('Online1')).length === 1);
    assert.deepEqual(await trustOf('Online1'), [newThumbprint]);
    await waitFor('online-1 to be connected (it trusts only the new certificate now)', () => online('online-1', newThumbprint));

    // A restart keeps presenting the new certificate, and still holds the old one for those that ask.
    await server.kill();
    server = await startServer({ dataDir, httpsPort, commsPort, name: 'rotate-server-2' });
    assert.equal(server.thumbprint, newThumbprint);

    // The Tentacle offline throughout trusts only the old certificate: it asks for it, is told the new one, and moves over.
    assert.deepEqual(await trustOf('Offline1'), [started.oldThumbprint]);
    const offline = await startAgent(root, 'Offline1');
    await waitFor('offline-1 to trust only the new thumbprint', async () => JSON.stringify(await trustOf('Offline1')) === JSON.stringify([newThumbprint]));
    await waitFor('offline-1 to be connected', () => online('offline-1', newThumbprint));
    assert.ok(offline.child.exitCode === null, 'the agent runs on');
    assert.match(offline.log(), /asking it for the trusted one/, 'it got in by asking for the old certificate');

    const final = await rotate(['--status'], newThumbprint);
    assert.equal(final.trusting, 2);
    assert.equal(final.dropped, 2);
    assert.deepEqual(final.notTrusting, []);
  });
});
