import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cleanup } from './cleanup.js';

export interface ProcessSpec {
  label: string;
  /** Arguments to `node`: the process runs on its own, so its memory and CPU can be read alone. */
  nodeArgs: string[];
  cwd: string;
  env: Record<string, string>;
}

export interface ServerSpec extends ProcessSpec {
  port: number;
  /** Answers 200 once the server takes requests. */
  readyPath: string;
}

export interface WorkerSpec extends ProcessSpec {
  /** Printed (stdout or stderr) once the process is ready: a worker has no port to ask. */
  readyOutput: RegExp;
  /** How long to wait for it. Default 10 s. */
  readyTimeoutMs?: number;
}

export interface ChildProcessHandle {
  readonly label: string;
  readonly pid: number;
  /** The tail of what the process printed, for error messages. */
  output(): string;
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRssBytes(): number;
  /** CPU time used so far, user plus system, in seconds. */
  cpuSeconds(): number;
  /** SIGTERM, then SIGKILL if it has not exited after a grace period. Safe to call twice. */
  stop(): Promise<void>;
}

export interface ServerProcess extends ChildProcessHandle {
  readonly baseUrl: string;
}

const OUTPUT_TAIL_CHARS = 16 * 1024;
const READY_TRIES = 100;
const READY_INTERVAL_MS = 100;
const STOP_GRACE_MS = 5000;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second for user space. */
const USER_HZ = 100;

export function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unreadable /proc/${pid}/stat`);
  return (utime + stime) / USER_HZ;
}

export function readPeakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * Spawns a Node server, registers its stop with `cleanup` at once (so a failed start leaks nothing),
 * and waits until `readyPath` answers 200.
 */
export async function startServer(spec: ServerSpec, cleanup: Cleanup): Promise<ServerProcess> {
  const { handle, exitReason } = spawnNode(spec, cleanup);
  const baseUrl = `http://127.0.0.1:${spec.port}`;
  const server: ServerProcess = { ...handle, baseUrl };
  await waitUntilReady(server, `${baseUrl}${spec.readyPath}`, exitReason);
  return server;
}

/**
 * Spawns a Node process without a port (a queue worker), registers its stop with `cleanup` at once,
 * and waits until it prints `readyOutput`.
 */
export async function startWorker(spec: WorkerSpec, cleanup: Cleanup): Promise<ChildProcessHandle> {
  const { handle, exitReason } = spawnNode(spec, cleanup);
  const timeoutMs = spec.readyTimeoutMs ?? 10_000;
  const deadline = performance.now() + timeoutMs;
  while (!spec.readyOutput.test(handle.output())) {
    const reason = exitReason();
    if (reason !== undefined) {
      throw new Error(
        `${spec.label} stopped before it was ready (${reason}); it printed:\n${handle.output()}`,
      );
    }
    if (performance.now() > deadline) {
      throw new Error(
        `${spec.label} did not print ${spec.readyOutput} within ${timeoutMs / 1000} s; ` +
          `it printed:\n${handle.output() || '(nothing)'}`,
      );
    }
    await sleep(READY_INTERVAL_MS / 5);
  }
  return handle;
}

function spawnNode(
  spec: ProcessSpec,
  cleanup: Cleanup,
): { handle: ChildProcessHandle; exitReason: () => string | undefined } {
  const child = spawn(process.execPath, spec.nodeArgs, {
    cwd: spec.cwd,
    // Only what the spec says: a PAYCENTER_* or NODE_OPTIONS in the caller's shell must not change the run.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let exitReason: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      exitReason ??= `could not start: ${error.message}`;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exitReason ??= signal ? `killed by ${signal}` : `exit code ${code}`;
      resolve();
    });
  });

  const stop = async () => {
    if (exitReason !== undefined) return;
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(STOP_GRACE_MS)]);
    if (exitReason === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  cleanup.defer(`stop ${spec.label}`, stop);

  const pid = child.pid ?? -1;
  const handle: ChildProcessHandle = {
    label: spec.label,
    pid,
    output: () => output,
    peakRssBytes: () => {
      if (exitReason !== undefined) throw new Error(`${spec.label} has exited (${exitReason})`);
      return readPeakRssBytes(pid);
    },
    cpuSeconds: () => {
      if (exitReason !== undefined) throw new Error(`${spec.label} has exited (${exitReason})`);
      return readCpuSeconds(pid);
    },
    stop,
  };
  return { handle, exitReason: () => exitReason };
}

async function waitUntilReady(
  server: ServerProcess,
  url: string,
  exitReason: () => string | undefined,
): Promise<void> {
  let lastProblem = 'no answer';
  for (let attempt = 0; attempt < READY_TRIES; attempt++) {
    const reason = exitReason();
    if (reason !== undefined) {
      throw new Error(
        `${server.label} stopped before it was ready (${reason}); it printed:\n${server.output()}`,
      );
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      lastProblem = `HTTP ${response.status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(READY_INTERVAL_MS);
  }
  throw new Error(
    `${server.label} was not ready after ${(READY_TRIES * READY_INTERVAL_MS) / 1000} s (${lastProblem}); ` +
      `it printed:\n${server.output()}`,
  );
}
