/**
 * When the lifecycle jobs ask a channel again. Each schedule lists seconds: the first entry after the
 * row was written (an attempt submitted, a refund accepted), each next one after the previous query;
 * past the end the last delay repeats, until the row reaches a final state.
 */
export interface LifecycleSchedules {
  /** Waiting attempts: is it paid? Default 60 s after submit, then backing off to hourly. */
  paymentQuery: readonly number[];
  /** Refunds still processing at the channel (WeChat finishes them later). */
  refundQuery: readonly number[];
  /** How long an expired order stays claimed by one worker while its attempts are closed. */
  expiryLeaseSeconds: number;
  /** How often each job looks for due rows, in milliseconds. */
  jobIntervalMs: number;
}

export const DEFAULT_LIFECYCLE_SCHEDULES: LifecycleSchedules = Object.freeze({
  paymentQuery: Object.freeze([60, 120, 300, 600, 1800, 3600]),
  refundQuery: Object.freeze([10, 30, 60, 300, 1800, 3600]),
  expiryLeaseSeconds: 60,
  jobIntervalMs: 2000,
});

/** The delay before query number `done + 1`, having made `done` queries so far. */
export function queryDelaySeconds(schedule: readonly number[], done: number): number {
  return schedule[Math.min(done, schedule.length - 1)] ?? 60;
}

export function addSeconds(date: Date, seconds: number): Date {
  return new Date(date.getTime() + seconds * 1000);
}
