export { createApiHandler } from './handler.js';
export type { ApiDeps, ApiLimits } from './context.js';
export { SHA256_HEADER } from './routes/files.js';
