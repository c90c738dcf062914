/**
 * How a Tentacle installed by the install line polls: the comms port, the HTTPS port
 * (routed by SNI/ALPN), or a WebSocket. Apart from the zod contract so that the CLI can
 * offer the choices without loading zod at start-up (test/cli/startup.test.ts).
 */
export const INSTALL_CARRIERS = ['comms-port', 'https', 'websocket'] as const;
