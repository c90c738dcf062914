import { access, mkdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ReefError } from '../errors.js';
import { defaultConfig, readConfigFile, writeConfigFile, type TentacleConfig } from './config.js';
import { readInstanceIndex, updateInstanceIndex, type InstanceRecord } from './instance-index.js';
import { defaultAppDir, defaultConfigPath, defaultHome, homeFiles, OWN_HOME_ENTRIES, tentacleRoot, validateInstanceName } from './paths.js';
import { serviceStatus } from './service.js';

export { resolveInstance, type InstanceRecord } from './instance-index.js';

export interface CreateInstanceOptions {
  /** Config file path; default `<root>/instances/<name>/tentacle.json`. */
  config?: string;
  /** Home folder; default the config file's folder. */
  home?: string;
}

export interface CreateInstanceResult extends InstanceRecord {
  config: TentacleConfig;
  /** false when the instance already existed with the same config file (create-instance is idempotent). */
  created: boolean;
}

/**
 * Registers an instance and writes its config file. Running it again for the same name and
 * config file changes nothing, so provisioning scripts can call it unconditionally. An
 * existing config file at `--config` is adopted (validated, renamed to this instance),
 * which is how an instance is moved to another machine or re-added after delete-instance.
 */
export async function createInstance(
  name: string,
  options: CreateInstanceOptions = {},
  root = tentacleRoot(),
): Promise<CreateInstanceResult> {
  validateInstanceName(name);
  const configPath = resolve(options.config ?? defaultConfigPath(name, root));
  return updateInstanceIndex(async (index) => {
    const existing = index[name];
    if (existing !== undefined) {
      if (existing !== configPath) {
        throw new ReefError(
          'REEF_CONFLICT',
          `Instance "${name}" already exists with config file ${existing}. ` +
            `Use another --instance name, or delete it first with "tentacle delete-instance --instance ${name}".`,
        );
      }
      return { name, configPath, config: await readConfigFile(configPath), created: false };
    }
    const other = Object.entries(index).find(([, path]) => path === configPath);
    if (other) {
      throw new ReefError('REEF_CONFLICT', `Config file ${configPath} already belongs to instance "${other[0]}"; pass another --config.`);
    }

    let config: TentacleConfig;
    if (await exists(configPath)) {
      config = await readConfigFile(configPath);
      config.instance = name;
      if (options.home !== undefined) config = moveHome(config, resolve(options.home));
    } else {
      config = defaultConfig(name, resolve(options.home ?? (options.config !== undefined ? dirname(configPath) : defaultHome(name, root))));
    }
    await prepareFolders(config);
    await writeConfigFile(configPath, config);
    index[name] = configPath; // only after the config file exists, so the index never points at nothing
    return { name, configPath, config, created: true };
  }, root);
}

export interface DeleteInstanceOptions {
  /**
   * Also remove what Reef itself put on disk: the config file, the certificate, workspace/,
   * logs/, and the home and Applications folders if that leaves them empty. Deployed
   * applications are never removed. Without purge only the index entry goes, so the
   * instance can be re-added with `create-instance --config <file>`.
   */
  purge?: boolean;
}

export async function deleteInstance(name: string, options: DeleteInstanceOptions = {}, root = tentacleRoot()): Promise<InstanceRecord> {
  validateInstanceName(name);
  const record = await updateInstanceIndex(async (index) => {
    const configPath = index[name];
    if (configPath === undefined) {
      throw new ReefError('REEF_NOT_FOUND', `No Tentacle instance named "${name}"; "tentacle list-instances" shows the instances.`);
    }
    const config = await readConfigFile(configPath).catch(() => null);
    if (config) {
      const status = await serviceStatus(config);
      if (status.installed || status.running) {
        throw new ReefError(
          'REEF_IN_USE',
          `Instance "${name}" still has a ${status.manager} service ${status.running ? 'running' : 'installed'}. ` +
            `Remove it first with "tentacle service --instance ${name} --uninstall".`,
        );
      }
    }
    delete index[name];
    return { name, configPath, config };
  }, root);
  if (options.purge) await purgeInstanceFiles(record.configPath, record.config);
  return { name: record.name, configPath: record.configPath };
}

export async function listInstances(root = tentacleRoot()): Promise<InstanceRecord[]> {
  const index = await readInstanceIndex(root);
  return Object.entries(index)
    .map(([name, configPath]) => ({ name, configPath }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Changes home, carrying along what was derived from it: an app folder still at its default
 * `<old home>/Applications` follows, and allowedRoots entries for the old home/app are replaced.
 */
export function moveHome(config: TentacleConfig, home: string): TentacleConfig {
  if (home === config.home) return config;
  const app = config.app === defaultAppDir(config.home) ? defaultAppDir(home) : config.app;
  return moveApp({ ...config, home, allowedRoots: replaceRoot(config.allowedRoots, config.home, home) }, app);
}

export function moveApp(config: TentacleConfig, app: string): TentacleConfig {
  if (app === config.app) return config;
  return { ...config, app, allowedRoots: replaceRoot(config.allowedRoots, config.app, app) };
}

function replaceRoot(roots: string[], from: string, to: string): string[] {
  const replaced = roots.map((r) => (r === from ? to : r));
  return [...new Set(replaced)];
}

/** Creates home (0700: it holds the private key), its workspace/ and logs/, and the app folder. */
export async function prepareFolders(config: TentacleConfig): Promise<void> {
  await mkdir(config.home, { recursive: true, mode: 0o700 });
  await mkdir(join(config.home, homeFiles.workspace), { recursive: true, mode: 0o700 });
  await mkdir(join(config.home, homeFiles.logs), { recursive: true, mode: 0o700 });
  await mkdir(config.app, { recursive: true, mode: 0o755 });
}

async function purgeInstanceFiles(configPath: string, config: TentacleConfig | null): Promise<void> {
  await rm(configPath, { force: true });
  if (config) {
    const { home } = config;
    for (const entry of OWN_HOME_ENTRIES) {
      await rm(join(home, entry), { recursive: true, force: true });
    }
    await removeIfEmpty(config.app);
    await removeIfEmpty(home);
  }
  await removeIfEmpty(dirname(configPath));
}

async function removeIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch(() => undefined); // fails when not empty or already gone, both fine
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
