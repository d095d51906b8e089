import type { FastifyBaseLogger } from 'fastify';

/** A periodic job: finds due rows, claims them (so other instances skip them), handles them. */
export interface Job {
  readonly name: string;
  /** One pass; returns how many rows it handled. Errors about single rows are the job's to log. */
  run(): Promise<number>;
}

type JobLogger = Pick<FastifyBaseLogger, 'error' | 'warn' | 'info' | 'debug'>;

/** A pass that handled rows runs again at once (there may be a backlog), up to this many times. */
const BURST_PASSES = 20;

/**
 * Runs the lifecycle jobs on every worker instance, each on its own timer. Correctness never depends
 * on which instance runs a job, or on how many do: each job claims its rows in the database.
 */
export class JobRunner {
  readonly #jobs: readonly Job[];
  readonly #intervalMs: number;
  readonly #logger: JobLogger;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #running = new Set<Promise<unknown>>();
  #started = false;

  constructor(jobs: readonly Job[], options: { intervalMs: number; logger: JobLogger }) {
    this.#jobs = jobs;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const job of this.#jobs) this.#schedule(job);
  }

  /** Stops the timers and waits for passes in progress. */
  async stop(): Promise<void> {
    this.#started = false;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#running]);
  }

  /** One pass of every job, in order; the rows handled in total. For tests and the CLI. */
  async runOnce(): Promise<number> {
    let handled = 0;
    for (const job of this.#jobs) handled += await this.#pass(job);
    return handled;
  }

  /** Passes until one handles nothing (bounded), e.g. a test after moving its clock. */
  async runUntilQuiet(maxPasses = 50): Promise<number> {
    let total = 0;
    for (let pass = 0; pass < maxPasses; pass++) {
      const handled = await this.runOnce();
      total += handled;
      if (handled === 0) return total;
    }
    throw new Error(`the lifecycle jobs still found work after ${maxPasses} passes`);
  }

  #schedule(job: Job): void {
    if (!this.#started) return;
    const timer = setTimeout(() => {
      this.#timers.delete(job.name);
      const run = (async () => {
        for (let burst = 0; burst < BURST_PASSES && this.#started; burst++) {
          if ((await this.#pass(job)) === 0) break;
        }
      })().finally(() => {
        this.#running.delete(run);
        this.#schedule(job);
      });
      this.#running.add(run);
    }, this.#intervalMs);
    timer.unref();
    this.#timers.set(job.name, timer);
  }

  async #pass(job: Job): Promise<number> {
    try {
      return await job.run();
    } catch (error) {
      // A failed pass (the database went away) is retried at the next tick; its rows stay due.
      this.#logger.error({ err: error, job: job.name }, 'lifecycle job pass failed');
      return 0;
    }
  }
}
