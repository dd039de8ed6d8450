import { Counter, type Registry } from 'prom-client';

/** A counter whose value is read from a component's own cumulative count at scrape time. */
export function mirroredCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Iterable<[Partial<Record<L, string>>, number]>,
): void {
  new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, n] of read()) if (n > 0) this.inc(labels, n);
    },
  });
}
