/**
 * What a benchmark started and must undo (child processes, scratch databases), undone last-first.
 * The runner drains it after the benchmark, whether it passed, threw or was interrupted.
 */
export class Cleanup {
  readonly #tasks: Array<{ label: string; task: () => Promise<void> }> = [];

  defer(label: string, task: () => Promise<void>): void {
    this.#tasks.push({ label, task });
  }

  /** Runs every task even when one fails, so one stuck resource does not leak the others. */
  async run(): Promise<void> {
    for (let entry = this.#tasks.pop(); entry !== undefined; entry = this.#tasks.pop()) {
      try {
        await entry.task();
      } catch (error) {
        // Reported, not thrown: throwing here would hide the error that made the benchmark stop.
        console.error(
          `cleanup: ${entry.label} failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  }
}
