/**
 * Comms' public surface: what the server and the tentacle may use. Everything else in
 * this folder is internal and may change shape without notice outside it.
 */
// The two ends of a comms link and their limits.
export { CommsServer, type TentacleAddress, type CommsServerOptions, type PickupOutcome } from './server.js';
export { TentacleComms, Poller, type PollTarget, type TentacleCommsOptions } from './tentacle.js';
export { DEFAULT_LIMITS, DEFAULT_FRONT_DOOR_LIMITS, resolveLimits, type CommsLimits, type FrontDoorLimits } from './limits.js';
export { RpcClient } from './rpc/client.js';
export { StreamingResult, type CallContext, type CallOptions, type Handler, type ServiceTable } from './rpc/types.js';
export type { PeerInfo, TrustCheck } from './peer.js';
export { COMMS_ALPN, baseTlsOptions } from './tls-config.js';
export { REGISTER_METHOD, type RegistrationHandler } from './registration-session.js';
export { registerOverComms, type RegistrationDial } from './registration-dial.js';
export { sourceAddress } from './acceptor.js';

// Carriers a tentacle dials through.
export { connectTcp } from './carriers/tcp.js';
export { connectThroughProxy, proxyFromEnvironment, type ProxySettings, type ProxySource } from './carriers/proxy.js';
export { connectWebSocket, createWebSocketEndpoint } from './carriers/websocket.js';

// The server's HTTPS port: the front door, and what it shares with the portal.
export { createFrontDoor } from './front-door/front-door.js';
export { remoteAddressOf, remoteEndpointOf, setAnnouncedAddress, type RemoteEndpoint } from './front-door/remote-address.js';
export { writeFriendlyPage } from './friendly-page.js';
