export { CommsServer, formatDuration, type TentacleAddress, type CommsServerOptions } from './server.js';
export { TentacleComms, Poller, type PollTarget, type TentacleCommsOptions } from './tentacle.js';
export { DEFAULT_LIMITS, resolveLimits, type CommsLimits } from './limits.js';
export { RpcClient } from './rpc/client.js';
export { StreamingResult, type CallContext, type CallOptions, type Handler, type ServiceTable } from './rpc/types.js';
export type { PeerInfo, TrustCheck } from './peer.js';
export { COMMS_ALPN } from './tls-config.js';
