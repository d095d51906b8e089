import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { AppService } from '../../src/apps/app.service.js';
import { ManualClock, systemClock } from '../../src/clock.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { NotifyDispatcher } from '../../src/notify/dispatcher.js';
import { backends, testDatabaseUrlFor } from '../helpers/backends.js';
import { Receiver } from '../helpers/webhook-receiver.js';
import { enqueueEvents, gate, taskRows } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/dispatcher-child.ts', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

describe.runIf(backends().includes('postgres'))('a dispatcher process killed with SIGKILL mid-batch', () => {
  const name = `paycenter_test_${randomBytes(6).toString('hex')}`;
  const masterKey = randomBytes(32);
  let database: Database;
  let receiver: Receiver;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: inject('testDatabaseUrl') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    database = await openDatabase({ kind: 'postgres', url: testDatabaseUrlFor(name) });
    await migrateToLatest(database.db);
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await receiver.close();
    await database.close();
    const admin = new pg.Client({ connectionString: inject('testDatabaseUrl') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  it('loses no task: a second dispatcher finishes every one after the lease, duplicates keeping their webhook-id', async () => {
    const apps = new AppService(database.db, new SecretBox(masterKey), systemClock);
    const app = await apps.create({ name: 'Crash shop', notifyUrl: receiver.url('/crash') });
    // The first 5 requests are answered; after that the receiver hangs, so the child dies mid-batch.
    let childPhase = true;
    const hang = gate();
    receiver.respond = async (_request, index) => {
      if (childPhase && index >= 5) {
        await hang.wait;
        return { destroy: true };
      }
      return { status: 200, body: 'SUCCESS' };
    };
    const recorded = await enqueueEvents(database.db, systemClock, app.id, 40);

    child = spawn(process.execPath, ['--import', TSX_LOADER, CHILD], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        TMPDIR: process.env.TMPDIR ?? '/tmp',
        DATABASE_URL: testDatabaseUrlFor(name),
        PAYCENTER_MASTER_KEY: masterKey.toString('base64'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    await vi.waitFor(() => expect(receiver.requests.length, stderr).toBeGreaterThanOrEqual(15), {
      timeout: 20_000,
      interval: 20,
    });
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    childPhase = false;
    hang.open();

    // Tasks the child claimed and never finished are leased to it.
    const leased = await database.db
      .selectFrom('notify_tasks')
      .select('id')
      .where('status', '=', 'pending')
      .where('locked_until', 'is not', null)
      .execute();
    expect(leased.length).toBeGreaterThanOrEqual(10);

    const clock = new ManualClock(new Date());
    const survivor = new NotifyDispatcher(
      { db: database.db, clock, webhookSecret: (appId) => apps.webhookSecret(appId) },
      { allowPrivate: true, metricsLogIntervalMs: 0, workerId: 'survivor' },
    );
    try {
      // Before the lease ends, only what the child never claimed is taken.
      await survivor.drain();
      const stillLeased = await database.db
        .selectFrom('notify_tasks')
        .select('id')
        .where('status', '=', 'pending')
        .execute();
      expect(stillLeased.map((r) => r.id).sort()).toEqual(leased.map((r) => r.id).sort());
      clock.advance(61_000);
      expect(await survivor.drain()).toBe(leased.length);
    } finally {
      await survivor.close();
    }

    const tasks = await taskRows(database.db, recorded);
    expect(tasks).toHaveLength(40);
    expect(tasks.every((task) => task.status === 'succeeded' && task.locked_until === null)).toBe(true);
    // Every event reached the receiver; a repeated try carries the same webhook-id and the same body.
    const counts = receiver.countsById();
    for (const r of recorded) expect(counts.get(r.eventId), r.eventId).toBeGreaterThanOrEqual(1);
    const bodies = new Map<string, Set<string>>();
    for (const request of receiver.requests) {
      bodies.set(request.id, (bodies.get(request.id) ?? new Set()).add(request.body));
    }
    expect([...bodies.values()].every((set) => set.size === 1)).toBe(true);
    expect([...counts.values()].some((n) => n > 1)).toBe(true);
  });
});
