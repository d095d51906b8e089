import type { FastifyInstance } from 'fastify';
import { AppService } from './apps/app.service.js';
import { ChannelService } from './channels/channel.service.js';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config/config.js';
import { resolveAdminToken, resolveMasterKey } from './config/data-dir-secrets.js';
import { SecretBox } from './crypto/secret-box.js';
import { type Database, openDatabase } from './db/database.js';
import { isMigrated, migrateToLatest } from './db/migrate.js';
import { buildHttpServer } from './http/server.js';
import { OrderService } from './orders/order.service.js';

export interface Services {
  apps: AppService;
  channels: ChannelService;
  orders: OrderService;
}

export function createServices(database: Database, masterKey: Buffer, clock: Clock): Services {
  const secrets = new SecretBox(masterKey);
  return {
    apps: new AppService(database.db, secrets, clock),
    channels: new ChannelService(database.db, secrets, clock),
    orders: new OrderService(database.db, clock),
  };
}

export function openConfiguredDatabase(config: Config): Promise<Database> {
  return config.database.kind === 'postgres'
    ? openDatabase({ kind: 'postgres', url: config.database.url })
    : openDatabase({ kind: 'pglite', dataDir: config.dataDir });
}

export interface Runtime {
  readonly database: Database;
  readonly services: Services;
  readonly http: FastifyInstance;
  readonly adminTokenFile: string | undefined;
  close(): Promise<void>;
}

/**
 * Wires one paycenter instance: database (migrated), services, HTTP. The CLI's `start` and the tests
 * both come through here, so what is tested is what runs.
 */
export async function createRuntime(
  config: Config,
  options: { clock?: Clock; database?: Database; logStream?: NodeJS.WritableStream } = {},
): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const masterKey = resolveMasterKey(config);
  const admin = resolveAdminToken(config);
  const database = options.database ?? (await openConfiguredDatabase(config));
  try {
    await migrateToLatest(database.db);
    const services = createServices(database, masterKey, clock);
    const http = await buildHttpServer({
      config,
      adminToken: admin.token,
      ...services,
      readiness: async () => {
        try {
          return (await isMigrated(database.db))
            ? { ready: true }
            : { ready: false, reason: 'database migrations pending' };
        } catch (error) {
          return {
            ready: false,
            reason: `database unreachable: ${error instanceof Error ? error.message : String(error)}`,
          };
        }
      },
      ...(options.logStream ? { logStream: options.logStream } : {}),
    });
    return {
      database,
      services,
      http,
      adminTokenFile: admin.file,
      close: async () => {
        await http.close();
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
