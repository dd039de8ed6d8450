import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.ts';
import { type SpanDropReason, startTracing, type TracingObserver } from './tracing.ts';

function counts(): TracingObserver & {
  exported: number;
  dropped: Record<SpanDropReason, number>;
  failures: number;
} {
  const c = {
    exported: 0,
    dropped: { queue_full: 0, export_failed: 0 },
    failures: 0,
    spansExported: (n: number) => {
      c.exported += n;
    },
    spansDropped: (reason: SpanDropReason, n: number) => {
      c.dropped[reason] += n;
    },
    exportFailed: () => {
      c.failures++;
    },
  };
  return c;
}

function capture(): { lines: { msg: string; failures?: number }[]; log: pino.Logger } {
  const lines: { msg: string; failures?: number }[] = [];
  const log = pino({ base: null }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  return { lines, log };
}

function config(tracing: Record<string, unknown>) {
  return configSchema.shape.tracing.parse({ enabled: true, samplingRatio: 1, ...tracing });
}

describe('startTracing', () => {
  it('is off unless enabled', () => {
    const { log } = capture();
    const off = configSchema.shape.tracing.parse(undefined);
    expect(off.enabled).toBe(false);
    expect(startTracing({ config: off, observer: counts(), log })).toBeUndefined();
  });

  it('holds at most maxQueueSize spans while the collector does not answer; the rest are dropped and counted', async () => {
    const taken: ReadableSpan[] = [];
    // A collector that never answers: every batch handed over stays in export.
    const stalled: SpanExporter = {
      export: (spans) => void taken.push(...spans),
      shutdown: async () => {},
    };
    const c = counts();
    const { log } = capture();
    const tracing = startTracing({
      config: config({ maxQueueSize: 4, maxBatchSize: 2, exportTimeout: '60s' }),
      observer: c,
      log,
      exporter: stalled,
    });
    expect(tracing).toBeDefined();
    for (let i = 0; i < 20; i++) tracing?.tracer.startSpan(`s${i}`).end();
    // Ending a span never waits: all 20 ended synchronously above. Of them, the ones
    // the exporter took, at most maxQueueSize waiting, and the rest dropped.
    expect(taken.length).toBeGreaterThan(0);
    expect(c.dropped.queue_full).toBe(20 - taken.length - 4);
    expect(c.dropped.queue_full).toBeGreaterThan(0);
    expect(c.exported).toBe(0);
  });

  it('a failed export drops its spans, counted, and is logged once a minute at most', async () => {
    let exports = 0;
    const refusing: SpanExporter = {
      export: (_spans, done) => {
        exports++;
        done({ code: ExportResultCode.FAILED, error: new Error('connect ECONNREFUSED') });
      },
      shutdown: async () => {},
    };
    const c = counts();
    const { lines, log } = capture();
    const tracing = startTracing({
      config: config({ maxBatchSize: 1 }),
      observer: c,
      log,
      exporter: refusing,
    });
    for (let i = 0; i < 3; i++) tracing?.tracer.startSpan(`s${i}`).end();
    await tracing?.shutdown();
    expect(exports).toBe(3);
    expect(c.failures).toBe(3);
    expect(c.dropped.export_failed).toBe(3);
    const warned = lines.filter((l) => l.msg.startsWith('span export failed'));
    expect(warned).toHaveLength(1);
    expect(warned[0]?.failures).toBe(1);
  });

  it('counts what the collector accepted', async () => {
    const accepting: SpanExporter = {
      export: (_spans, done) => done({ code: ExportResultCode.SUCCESS }),
      shutdown: async () => {},
    };
    const c = counts();
    const { log } = capture();
    const tracing = startTracing({ config: config({}), observer: c, log, exporter: accepting });
    for (let i = 0; i < 5; i++) tracing?.tracer.startSpan(`s${i}`).end();
    await tracing?.shutdown();
    expect(c.exported).toBe(5);
    expect(c.dropped).toEqual({ queue_full: 0, export_failed: 0 });
  });
});
