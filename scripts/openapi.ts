/**
 * `npm run openapi`: prints the REST API's OpenAPI 3.1 document, as a running server serves
 * it at GET /api/openapi.json, without starting one (for client generators, CI diffs).
 */
import { openApiDocument } from '../src/server/http/routes/index.js';

process.stdout.write(`${JSON.stringify(openApiDocument(), null, 2)}\n`);
