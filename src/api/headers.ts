/**
 * The REST API's own header names, which both ends use. No zod here: the API client loads
 * with these alone, without the contract's schemas (its types are erased at build).
 */
export const API_KEY_HEADER = 'x-reef-apikey';
/** The SHA-256 an upload's bytes must have (POST /api/files). */
export const SHA256_HEADER = 'x-reef-sha256';
