import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Job, JobRunner } from '../../src/jobs/job-runner.js';

function logger() {
  return { error: vi.fn(), warn: vi.fn(), info: vi.fn(), debug: vi.fn() };
}

/** A job that handles the counts it is given, one per pass, then nothing. */
function scripted(name: string, counts: (number | Error)[]): Job & { passes: number } {
  const job = {
    name,
    passes: 0,
    run: async () => {
      const next = counts[job.passes++] ?? 0;
      if (next instanceof Error) throw next;
      return next;
    },
  };
  return job;
}

describe('JobRunner', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs each job every interval, and again at once while a pass finds work', async () => {
    const busy = scripted('busy', [5, 3, 0]);
    const idle = scripted('idle', []);
    const runner = new JobRunner([busy, idle], { intervalMs: 1000, logger: logger() });
    runner.start();
    await vi.advanceTimersByTimeAsync(999);
    expect(busy.passes).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(busy.passes).toBe(3); // 5 rows, 3 rows, then quiet
    expect(idle.passes).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(busy.passes).toBe(4);
    expect(idle.passes).toBe(2);
    await runner.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(busy.passes).toBe(4);
  });

  it('logs a failed pass and keeps the job on its schedule', async () => {
    const log = logger();
    const flaky = scripted('flaky', [new Error('database went away'), 0]);
    const runner = new JobRunner([flaky], { intervalMs: 100, logger: log });
    runner.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(log.error).toHaveBeenCalledWith(
      expect.objectContaining({ job: 'flaky', err: expect.any(Error) }),
      'lifecycle job pass failed',
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(flaky.passes).toBe(2);
    await runner.stop();
  });

  it('runUntilQuiet passes until nothing is found, and refuses to go on for ever', async () => {
    const finite = scripted('finite', [2, 1, 0]);
    expect(await new JobRunner([finite], { intervalMs: 1000, logger: logger() }).runUntilQuiet()).toBe(3);
    const endless: Job = { name: 'endless', run: async () => 1 };
    await expect(
      new JobRunner([endless], { intervalMs: 1000, logger: logger() }).runUntilQuiet(5),
    ).rejects.toThrow(/still found work after 5 passes/);
  });

  it('waits on stop for a pass in progress', async () => {
    let finish: (() => void) | undefined;
    const slow: Job = {
      name: 'slow',
      run: () =>
        new Promise<number>((resolve) => {
          finish = () => resolve(0);
        }),
    };
    const runner = new JobRunner([slow], { intervalMs: 10, logger: logger() });
    runner.start();
    await vi.advanceTimersByTimeAsync(10);
    let stopped = false;
    const stopping = runner.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(stopped).toBe(false);
    finish?.();
    await stopping;
    expect(stopped).toBe(true);
  });
});
