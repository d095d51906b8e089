import type { LoadFigures } from './load.js';

export interface ReportRow {
  label: string;
  figures: LoadFigures;
  /** The server's own CPU time per completed request: steadier than req/s on a shared machine. */
  cpuMicrosPerRequest: number;
  peakRssBytes: number;
}

const LABEL_WIDTH = 22;
const COLUMNS = ['req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'peak RSS'] as const;
const COLUMN_WIDTH = 12;

function thousands(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** Whole milliseconds hide the difference between fast runs, so small values keep one decimal. */
function milliseconds(value: number): string {
  return value < 10 ? value.toFixed(1) : Math.round(value).toString();
}

function megabytes(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MB`;
}

export function formatTable(rows: ReportRow[]): string {
  const line = (label: string, cells: readonly string[]) =>
    label.padEnd(LABEL_WIDTH) + cells.map((cell) => cell.padStart(COLUMN_WIDTH)).join('');
  return [
    line('', COLUMNS),
    ...rows.map((row) =>
      line(row.label, [
        thousands(row.figures.requestsPerSecond),
        milliseconds(row.figures.p50Ms),
        milliseconds(row.figures.p99Ms),
        thousands(row.cpuMicrosPerRequest),
        megabytes(row.peakRssBytes),
      ]),
    ),
  ].join('\n');
}

/** The value at percentile `p` (0–100) of ascending `sorted` values (nearest rank); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
