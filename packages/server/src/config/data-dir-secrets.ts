import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { newAdminToken } from '../crypto/tokens.js';
import { type Config, ConfigError, parseMasterKey } from './config.js';

/**
 * In embedded mode a newcomer sets nothing: the master key and the admin token are generated once
 * into the data directory, readable by the owner only. With a PostgreSQL server they must come from
 * the environment, since every instance has to share them.
 */
function readOrCreate(file: string, create: () => string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    fs.writeFileSync(file, `${create()}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return fs.readFileSync(file, 'utf8').trim();
}

export function masterKeyFile(dataDir: string): string {
  return path.join(dataDir, 'master.key');
}

export function adminTokenFile(dataDir: string): string {
  return path.join(dataDir, 'admin-token');
}

export function resolveMasterKey(config: Config): Buffer {
  if (config.masterKey) return config.masterKey;
  if (config.database.kind !== 'pglite')
    throw new ConfigError('PAYCENTER_MASTER_KEY', 'is required with DATABASE_URL');
  const file = masterKeyFile(config.dataDir);
  return parseMasterKey(
    readOrCreate(file, () => randomBytes(32).toString('base64')),
    `the master key file ${file}`,
  );
}

/** The admin token and, when it was generated, the file that holds it. */
export function resolveAdminToken(config: Config): { token: string | undefined; file: string | undefined } {
  if (config.adminToken) return { token: config.adminToken, file: undefined };
  if (config.database.kind !== 'pglite') return { token: undefined, file: undefined };
  const file = adminTokenFile(config.dataDir);
  return { token: readOrCreate(file, newAdminToken), file };
}
