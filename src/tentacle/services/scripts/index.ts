/** Scripts on the Tentacle: README.md in this folder describes the design and its modules. */
export { ScriptService, type ScriptServiceOptions } from './service.js';
