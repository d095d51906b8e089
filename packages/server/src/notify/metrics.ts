/**
 * In-memory counters of webhook delivery, read by the periodic log line and later by /metrics.
 * Per process; nothing depends on them for correctness.
 */
export type TryOutcome = 'delivered' | 'rejected' | 'error' | 'refused';

/** count/sum/min/max over all samples, quantiles over the most recent ones. */
export class Summary {
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;
  readonly #recent: number[] = [];
  #next = 0;

  constructor(private readonly window = 2048) {}

  observe(value: number): void {
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    if (this.#recent.length < this.window) this.#recent.push(value);
    else this.#recent[this.#next] = value;
    this.#next = (this.#next + 1) % this.window;
  }

  /** Quantile q (0…1) of the recent samples; 0 without any. */
  quantile(q: number): number {
    return quantileOf(this.#sorted(), q);
  }

  snapshot(): SummarySnapshot {
    const sorted = this.#sorted();
    return {
      count: this.count,
      sum: this.sum,
      min: this.count === 0 ? 0 : this.min,
      max: this.max,
      p50: quantileOf(sorted, 0.5),
      p90: quantileOf(sorted, 0.9),
      p99: quantileOf(sorted, 0.99),
    };
  }

  #sorted(): number[] {
    return [...this.#recent].sort((a, b) => a - b);
  }
}

function quantileOf(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

export interface SummarySnapshot {
  count: number;
  sum: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface NotifyMetricsSnapshot {
  /** HTTP tries by outcome: delivered; rejected (an answer that is not a delivery); error (no answer); refused (address check). */
  tries: Record<TryOutcome, number>;
  /** Tasks that ended: delivered, or failed after their last scheduled try. */
  tasks: { succeeded: number; failed: number };
  claims: number;
  claimedTasks: number;
  /** Claimed tasks given back untried for a while because their host's local queue was full. */
  handedBack: number;
  /** Queued tasks given back untried because their lease could no longer cover a try. */
  leaseTooShort: number;
  /** Duration of one HTTP try, ms. */
  tryDurationMs: SummarySnapshot;
  /** From the task's creation (its commit, within ms) to its delivery, ms; retries included. */
  deliveryLatencyMs: SummarySnapshot;
  /** From the task's creation to the start of its first try, ms. */
  firstTryLatencyMs: SummarySnapshot;
}

export class NotifyMetrics {
  readonly tries: Record<TryOutcome, number> = { delivered: 0, rejected: 0, error: 0, refused: 0 };
  readonly tasks = { succeeded: 0, failed: 0 };
  claims = 0;
  claimedTasks = 0;
  handedBack = 0;
  leaseTooShort = 0;
  readonly tryDurationMs = new Summary();
  readonly deliveryLatencyMs = new Summary();
  readonly firstTryLatencyMs = new Summary();

  snapshot(): NotifyMetricsSnapshot {
    return {
      tries: { ...this.tries },
      tasks: { ...this.tasks },
      claims: this.claims,
      claimedTasks: this.claimedTasks,
      handedBack: this.handedBack,
      leaseTooShort: this.leaseTooShort,
      tryDurationMs: this.tryDurationMs.snapshot(),
      deliveryLatencyMs: this.deliveryLatencyMs.snapshot(),
      firstTryLatencyMs: this.firstTryLatencyMs.snapshot(),
    };
  }

  /** Total tries so far, for "was anything done since the last log line". */
  totalTries(): number {
    return this.tries.delivered + this.tries.rejected + this.tries.error + this.tries.refused;
  }
}
