// Runs async tasks one at a time, in the order given. localfed keeps one per member
// cluster: two reconciles of the same cluster must never interleave their writes.
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it; resolves or rejects as it does. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    // A failed task fails its caller only; the next one still runs.
    this.#tail = result.catch(() => {});
    return result;
  }

  /** Resolves once every task queued so far is done. */
  async idle(): Promise<void> {
    await this.#tail;
  }
}
