// The write-back's series: whether this replica leads (and so writes), how often it
// started leading, and every write that reached a member's API server.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { WriteBackStats } from '../writeback/write-back.ts';

export function registerWriteBackMetrics(
  registry: Registry,
  read: () => WriteBackStats | undefined,
): void {
  new Gauge({
    name: 'fedgate_writeback_leader',
    help: '1 while this replica holds the write-back Lease (it alone writes ServiceExport conditions and ServiceImports), else 0',
    registers: [registry],
    collect() {
      this.set(read()?.leading ? 1 : 0);
    },
  });
  new Counter({
    name: 'fedgate_writeback_leader_transitions_total',
    help: 'Times this replica started leading (acquired the write-back Lease)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read()?.transitions ?? 0);
    },
  });
  new Counter({
    name: 'fedgate_writeback_writes_total',
    help: 'Writes to member API servers by this replica, by cluster, resource and verb (create, update, update_status, delete)',
    labelNames: ['cluster', 'resource', 'verb'],
    registers: [registry],
    collect() {
      this.reset();
      for (const w of read()?.writes.values() ?? []) {
        this.inc({ cluster: w.cluster, resource: w.resource, verb: w.verb }, w.count);
      }
    },
  });
  new Counter({
    name: 'fedgate_writeback_write_failures_total',
    help: 'Writes that failed (each object is tried again)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read()?.failures ?? 0);
    },
  });
}
