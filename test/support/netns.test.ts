import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { netnsUnavailable, Topology } from './netns.js';
import { stopAll } from './processes.js';

const PREFIX = 'reefdials';
const unavailable = netnsUnavailable(PREFIX);

function namespaces(): string[] {
  return (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((line) => line.split(' ')[0]!).filter(Boolean);
}

/** Starts netns-owner.ts and reads the namespace it made. */
async function startOwner(mode: 'wait' | 'exit') {
  const owner = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'netns-owner.ts'), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(owner.stdout!.setEncoding('utf8'), 'data')) as [string];
  return { owner, name: line.trim() };
}

/** Node inside a namespace, connecting to host:port: prints "connected", or the error code. */
const CONNECT = `const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});s.setTimeout(1500,()=>{console.log('ETIMEDOUT');process.exit()});s.on('connect',()=>{console.log('connected');process.exit()});s.on('error',e=>{console.log(e.code);process.exit()})`;

describe('test/support/netns.ts', { skip: unavailable && `skipped: ${unavailable}` }, () => {
  after(() => stopAll());

  test('a link carries TCP between two namespaces; nftables rejects or drops it; destroy removes the namespaces and what ran inside', async () => {
    const topology = Topology.create(PREFIX);
    try {
      const a = await topology.namespace('a');
      const b = await topology.namespace('b');
      const link = await topology.link(a, '10.231.9.1/30', b, '10.231.9.2/30');
      assert.equal(link.b.address, '10.231.9.2');
      const listener = b.spawn(process.execPath, ['-e', `require('net').createServer(s=>s.end()).listen(9000,'${link.b.address}',()=>console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await once(listener.stdout!, 'data');
      const connect = () => a.ok(process.execPath, ['-e', CONNECT, link.b.address, '9000']);
      assert.equal(await connect(), 'connected');
      await b.nft('table inet t { chain input { type filter hook input priority filter; tcp dport 9000 reject with tcp reset; }; }');
      assert.equal(await connect(), 'ECONNREFUSED');
      await b.nft('table inet t { chain input { type filter hook input priority filter; tcp dport 9000 drop; }; }');
      assert.equal(await connect(), 'ETIMEDOUT');
      await b.nft('');
      await link.setUp(false);
      assert.equal(await connect(), 'ENETUNREACH');
      await link.setUp(true);
      await b.shape(link.b.ifname, { rate: '1mbit', burst: '32kbit', latency: '400ms' });
      assert.match(await b.ok('tc', ['qdisc', 'show', 'dev', link.b.ifname]), /tbf .*rate 1Mbit/);
      assert.equal(await connect(), 'connected');
      assert.ok(namespaces().includes(a.name) && namespaces().includes(b.name));
    } finally {
      await topology.destroy();
    }
    assert.deepEqual(namespaces().filter((name) => name.startsWith(`${PREFIX}-${process.pid}-`)), []);
  });

  test('a test process that exits removes its namespaces; one killed outright leaves them to the next topology, which spares a live owner', async () => {
    const exiting = await startOwner('exit');
    await once(exiting.owner, 'exit');
    assert.ok(!namespaces().includes(exiting.name), 'removed on process.exit');

    const killed = await startOwner('wait');
    const live = await startOwner('wait');
    try {
      killed.owner.kill('SIGKILL');
      await once(killed.owner, 'exit');
      assert.ok(namespaces().includes(killed.name), 'SIGKILL leaves it behind');
      Topology.create(PREFIX);
      assert.ok(!namespaces().includes(killed.name), 'the next topology removed the dead owner\'s namespace');
      assert.ok(namespaces().includes(live.name), 'a live owner\'s namespace is spared');
    } finally {
      live.owner.kill('SIGTERM');
      await once(live.owner, 'exit');
    }
    assert.ok(!namespaces().includes(live.name), 'removed when its owner was ended by SIGTERM');
  });
});
