export { createPortalHandler } from './handler.js';
export type { PortalDeps, PortalOptions } from './context.js';
