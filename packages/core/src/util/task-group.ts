import pLimit from 'p-limit';

/**
 * Runs async tasks with a concurrency limit and fails fast: after the first task
 * throws, tasks that have not started yet are skipped, and `settle()` waits for every
 * task that did start. Callers await `settle()` (in a `finally`) before cleaning up,
 * so no task writes after the operation has reported its error.
 */
export class TaskGroup {
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly tasks: Promise<unknown>[] = [];
  private readonly unsettled = new Set<Promise<unknown>>();
  private failure: { error: unknown } | undefined;

  constructor(concurrency: number) {
    this.limit = pLimit(concurrency);
  }

  /** Whether a task has failed (later tasks are being skipped). */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Tasks queued but not yet started. */
  get pending(): number {
    return this.limit.pendingCount;
  }

  /**
   * Queue `fn`. The returned promise rejects with the group's first error if `fn`
   * fails or is skipped because an earlier task failed.
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const t = this.limit(async () => {
      if (this.failure) throw this.failure.error;
      try {
        return await fn();
      } catch (error) {
        this.failure ??= { error };
        throw error;
      }
    });
    this.tasks.push(t);
    this.unsettled.add(t);
    // The caller handles the rejection through the returned promise or `settle()`.
    const done = (): void => void this.unsettled.delete(t);
    t.then(done, done);
    return t;
  }

  /** Resolves when one more task settles (at once if none is unsettled); for backpressure loops. */
  async next(): Promise<void> {
    if (this.unsettled.size === 0) return;
    await Promise.race([...this.unsettled].map((t) => t.then(() => undefined, () => undefined)));
  }

  /** Wait for every task queued so far (and any queued meanwhile) to finish or be skipped. Never rejects. */
  async settle(): Promise<void> {
    let seen = 0;
    while (seen < this.tasks.length) {
      const batch = this.tasks.slice(seen);
      seen = this.tasks.length;
      await Promise.allSettled(batch);
    }
  }

  /** Wait for every task; rethrow the first error if any failed. */
  async all(): Promise<void> {
    await this.settle();
    if (this.failure) throw this.failure.error;
  }
}
