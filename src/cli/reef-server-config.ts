import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ReefError } from '../errors.js';
import { MAX_ADMISSION_BOUND, MAX_LOG_QUOTA_MIB, MAX_PICKUP_TIMEOUT_SECONDS, MAX_REQUESTS_PER_MINUTE } from './reef-server.js';

/**
 * The JSON file of `reef server run --config FILE`: the same settings as the flags. In a
 * module of its own so that its schema (zod) loads only when a config file is given.
 */

const ConfigFile = z
  .object({
    dataDir: z.string().min(1).optional(),
    store: z.string().min(1).optional(),
    httpsPort: z.number().int().min(0).max(65535).optional(),
    commsPort: z.number().int().min(0).max(65535).optional(),
    host: z.string().min(1).optional(),
    nodeName: z.string().min(1).optional(),
    filesDir: z.string().min(1).optional(),
    fileRetentionDays: z.number().positive().max(36500).optional(),
    downloadsDir: z.string().min(1).optional(),
    pickupTimeoutSeconds: z.number().positive().max(MAX_PICKUP_TIMEOUT_SECONDS).optional(),
    pollingHostnames: z.array(z.string().min(1)).optional(),
    websocketPath: z.string().startsWith('/').optional(),
    proxyProtocol: z.boolean().optional(),
    logQuotaMiB: z.number().min(1).max(MAX_LOG_QUOTA_MIB).optional(),
    lostContactLimitSeconds: z.number().positive().max(MAX_PICKUP_TIMEOUT_SECONDS).optional(),
    httpsCertificate: z.string().min(1).optional(),
    httpsCertificateKey: z.string().min(1).optional(),
    httpsCertificatePassword: z.string().optional(),
    metricsListen: z.string().min(1).optional(),
    apiRequestsPerMinute: z.number().int().min(1).max(MAX_REQUESTS_PER_MINUTE).optional(),
    anonymousRequestsPerMinute: z.number().int().min(1).max(MAX_REQUESTS_PER_MINUTE).optional(),
    maxEventLoopDelayMs: z.number().int().min(0).max(MAX_ADMISSION_BOUND).optional(),
    maxHandshakesInFlight: z.number().int().min(0).max(MAX_ADMISSION_BOUND).optional(),
  })
  .strict();

export async function readConfigFile(file: string): Promise<z.infer<typeof ConfigFile>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ReefError('REEF_FILE_UNREADABLE', `Cannot read the config file ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ReefError('REEF_CONFIG_INVALID', `The config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ConfigFile.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    throw new ReefError('REEF_CONFIG_INVALID', `The config file ${file} is invalid: ${problems}`);
  }
  return parsed.data;
}
