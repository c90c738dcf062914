/** The plain values every store contract (types.ts, coordination.ts) is written in. */

/** ISO-8601 UTC timestamp with milliseconds. */
export type Timestamp = string;
export type TimeInput = Date | Timestamp;
/** A JSON object the store serializes as is; read it back through a schema. */
export type JsonObject = Record<string, unknown>;
