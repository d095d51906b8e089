/**
 * `npm run bench -- <name>`: runs one benchmark. Each lives in its own file and is imported only
 * when chosen, so one benchmark's dependencies never slow down or break another.
 */
import { Cleanup } from './support/cleanup.js';

interface Benchmark {
  summary: string;
  load: () => Promise<{ run: (cleanup: Cleanup) => Promise<void> }>;
}

const BENCHMARKS = new Map<string, Benchmark>([
  [
    'orders',
    {
      summary: 'POST /api/v1/orders on PostgreSQL, against a bare Fastify + pg route',
      load: () => import('./orders.js'),
    },
  ],
  [
    'callbacks',
    {
      summary: 'verified payment callbacks applied per second, against the crypto and the SQL alone',
      load: () => import('./callbacks.js'),
    },
  ],
  [
    'live',
    {
      summary:
        '1,000 SSE streams, orders paid by another instance: commit-to-browser latency, memory per stream',
      load: () => import('./live.js'),
    },
  ],
  [
    'notify',
    {
      summary: 'webhooks delivered per second, against pg-boss and graphile-worker; commit-to-try latency',
      load: () => import('./notify.js'),
    },
  ],
]);

function usage(): string {
  const width = Math.max(...[...BENCHMARKS.keys()].map((name) => name.length));
  return [
    'Usage: npm run bench -- <benchmark>',
    '',
    'Benchmarks:',
    ...[...BENCHMARKS].map(([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`),
    '',
    'Environment: BENCH_SECONDS (length of each measured run, default 10),',
    '             BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).',
  ].join('\n');
}

async function main(name: string | undefined): Promise<number> {
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage());
    return 0;
  }
  const benchmark = BENCHMARKS.get(name);
  if (benchmark === undefined) {
    console.error(`unknown benchmark "${name}"\n\n${usage()}`);
    return 2;
  }
  const cleanup = new Cleanup();
  // Ctrl-C must still stop the servers and drop the scratch database; then exit as interrupted.
  const interrupt = (signal: NodeJS.Signals, code: number) =>
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void cleanup.run().finally(() => process.exit(code));
    });
  interrupt('SIGINT', 130);
  interrupt('SIGTERM', 143);
  try {
    await (await benchmark.load()).run(cleanup);
    return 0;
  } catch (error) {
    console.error(`bench ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await cleanup.run();
  }
}

process.exitCode = await main(process.argv[2]);
