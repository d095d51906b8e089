/**
 * When a merchant webhook is retried: seconds after the previous try, the first try being immediate.
 * The default is the reference system's (15s, 15s, 30s, 3m, 30m, 30m, 30m, 1h: nine tries over ~4 h);
 * an app may set its own.
 */
export const DEFAULT_NOTIFY_SCHEDULE: readonly number[] = [15, 15, 30, 180, 1800, 1800, 1800, 3600];

export function maxAttemptsOf(schedule: readonly number[]): number {
  return schedule.length + 1;
}

/** Fills `{channelId}` and `{channelCode}` in a notify URL; absent values become empty. */
export function fillNotifyUrl(
  template: string,
  values: { channelId: string | null; channelCode: string | null },
): string {
  return template
    .replaceAll('{channelId}', encodeURIComponent(values.channelId ?? ''))
    .replaceAll('{channelCode}', encodeURIComponent(values.channelCode ?? ''));
}
