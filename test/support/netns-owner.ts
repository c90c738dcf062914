/**
 * A stand-in for a test file, for netns.test.ts: makes a namespace with a process inside,
 * prints its name, then waits to be ended (or calls process.exit when given `exit`).
 */
import { Topology } from './netns.js';

const topology = Topology.create('reefdials');
const ns = await topology.namespace('owned');
ns.spawn('sleep', ['300'], { stdio: 'ignore' });
console.log(ns.name);
if (process.argv[2] === 'exit') setTimeout(() => process.exit(3), 100);
setInterval(() => {}, 1000);
