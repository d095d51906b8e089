/**
 * `npm run bench -- orders`: throughput of `POST /api/v1/orders` on PostgreSQL, against a bare
 * Fastify + pg route inserting the same row into the same table (bench/baseline-orders-server.ts),
 * measured one after the other in the same run so the ratio is what counts, not the raw figures.
 */
import path from 'node:path';
import type { Cleanup } from './support/cleanup.js';
import { createScratchDatabase, postgresVersion, withClient } from './support/database.js';
import { assertAllSucceeded, figuresOf, fire } from './support/load.js';
import { buildServer, createApp, REPO_ROOT, startPaycenter } from './support/paycenter.js';
import { freePort, type ServerProcess, startServer } from './support/processes.js';
import { formatTable, type ReportRow } from './support/report.js';
import { adminDatabaseUrl, measuredSeconds } from './support/settings.js';
import { nodeArgsToRun } from './support/typescript.js';

const CONNECTIONS = 50;
const WARM_UP_SECONDS = 3;
const RATIO_AIM = 0.6;
const ORDERS_PATH = '/api/v1/orders';
/** `[<id>]` is replaced per request, so every request creates a new order (201), never a replay (200). */
const ORDER_BODY = JSON.stringify({
  merchantOrderId: 'bench-[<id>]',
  subject: 'Benchmark order',
  amount: 100,
});

function progress(message: string): void {
  console.error(`orders: ${message}`);
}

export async function run(cleanup: Cleanup): Promise<void> {
  const seconds = measuredSeconds();
  progress('building packages/server');
  await buildServer();
  const database = await createScratchDatabase(adminDatabaseUrl(), 'paycenter_bench');
  cleanup.defer(`drop database ${database.name}`, database.drop);
  progress(`created database ${database.name}`);

  const paycenter = await startPaycenter(database.url, cleanup);
  const app = await createApp(paycenter, 'bench');
  const paycenterRow = await measure('paycenter', paycenter.server, database.url, seconds, {
    authorization: `Bearer ${app.apiKey}`,
  });
  // One server at a time: on 2 cores an idle neighbour still costs timer ticks and memory.
  await paycenter.server.stop();

  const baseline = await startBaseline(database.url, app.id, cleanup);
  const baselineRow = await measure('baseline (fastify+pg)', baseline, database.url, seconds, {});
  await baseline.stop();

  const version = await postgresVersion(database.url);
  const ratio = paycenterRow.figures.requestsPerSecond / baselineRow.figures.requestsPerSecond;
  console.log(
    [
      `orders: POST ${ORDERS_PATH}, ${CONNECTIONS} connections, ${seconds} s each ` +
        `(after ${WARM_UP_SECONDS} s warm-up), PostgreSQL ${version}`,
      formatTable([paycenterRow, baselineRow]),
      `ratio paycenter/baseline: ${ratio.toFixed(2)} (aim >= ${RATIO_AIM})`,
      "CPU µs/req: the server process's own CPU per request (PostgreSQL's excluded); " +
        'steadier than req/s on a shared machine',
    ].join('\n'),
  );
}

/** The yardstick needs an app row for the orders' foreign key: paycenter's, in the same database. */
async function startBaseline(databaseUrl: string, appId: string, cleanup: Cleanup): Promise<ServerProcess> {
  const port = await freePort();
  return startServer(
    {
      label: 'baseline',
      nodeArgs: nodeArgsToRun(path.join(REPO_ROOT, 'bench/baseline-orders-server.ts')),
      cwd: REPO_ROOT,
      env: { DATABASE_URL: databaseUrl, BENCH_APP_ID: appId, HOST: '127.0.0.1', PORT: String(port) },
      port,
      readyPath: '/ready',
    },
    cleanup,
  );
}

async function measure(
  label: string,
  server: ServerProcess,
  databaseUrl: string,
  seconds: number,
  headers: Record<string, string>,
): Promise<ReportRow> {
  // Each server starts from an empty table, so neither pays for the index the other one grew.
  await withClient(databaseUrl, (client) => client.query('TRUNCATE orders CASCADE'));
  const load = {
    url: `${server.baseUrl}${ORDERS_PATH}`,
    method: 'POST' as const,
    headers,
    body: ORDER_BODY,
    connections: CONNECTIONS,
  };
  progress(`${label}: warming up for ${WARM_UP_SECONDS} s`);
  const warmUp = await fire({ ...load, title: `${label} warm-up`, seconds: WARM_UP_SECONDS });
  assertAllSucceeded(warmUp, server.output(), 201);
  progress(`${label}: measuring for ${seconds} s`);
  const cpuBefore = server.cpuSeconds();
  const result = await fire({ ...load, title: label, seconds });
  const cpuUsed = server.cpuSeconds() - cpuBefore;
  assertAllSucceeded(result, server.output(), 201);
  const figures = figuresOf(result);
  return {
    label,
    figures,
    cpuMicrosPerRequest: (cpuUsed * 1e6) / figures.completed,
    peakRssBytes: server.peakRssBytes(),
  };
}
