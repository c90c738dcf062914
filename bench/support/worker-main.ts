/**
 * Entry of a benchmark worker process (see workers.ts): loads bench/roles/<role>.ts and
 * answers the parent's requests with its `operations`. It exits when the parent goes away,
 * so a benchmark killed half-way leaves no process behind.
 */
import { errorMessage } from '../../src/errors.js';
import type { Answer, Operations, Request } from './workers.js';

const role = process.argv[2];
const { operations } = (await import(`../roles/${role}.js`)) as { operations: Operations };

process.on('disconnect', () => process.exit(0));
process.on('message', (request: Request) => {
  const operation = operations[request.op];
  const answer = (message: Answer) => process.connected && process.send!(message);
  if (!operation) {
    answer({ id: request.id, error: `role ${role} has no operation "${request.op}"` });
    return;
  }
  operation(request.args).then(
    (result) => answer({ id: request.id, result }),
    (err: unknown) => answer({ id: request.id, error: errorMessage(err) }),
  );
});
process.send!('loaded');
