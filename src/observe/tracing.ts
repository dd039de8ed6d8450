// The OpenTelemetry SDK behind the proxy's spans (src/proxy/spans.ts): a tracer
// provider sampling parent-based (a sampled parent's requests always, new traces by
// `tracing.samplingRatio`), a batch span processor and the OTLP/HTTP protobuf exporter
// to `tracing.endpoint`. Export never holds a request up: ending a span only queues
// it; the queue is bounded (`tracing.maxQueueSize`) and what does not fit is dropped
// and counted; a failed export (collector slow, refusing or gone) drops its batch,
// counted, and is logged at most once a minute. Each process (each worker with
// `--workers N`) has its own provider and exports its own spans.
import type { Context } from '@opentelemetry/api';
import { TraceFlags } from '@opentelemetry/api';
import {
  type ExportResult,
  ExportResultCode,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type Span,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Config } from '../config/schema.ts';
import type { ProxyTracing } from '../proxy/spans.ts';
import type { Logger } from './log.ts';

/** Why spans were lost: the queue was full, or their export failed. */
export type SpanDropReason = 'queue_full' | 'export_failed';

/** Told what became of the spans (metrics.ts counts them). */
export interface TracingObserver {
  spansExported(n: number): void;
  spansDropped(reason: SpanDropReason, n: number): void;
  exportFailed(): void;
}

/** One failed export is logged; the next only a minute later, with the count in between. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

/**
 * Counts what the exporter does with each batch. The batch processor hands a batch to
 * export() as it takes it off its queue, so the queue's length is known here too.
 */
class CountingExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #observer: TracingObserver;
  readonly #log: Logger;
  readonly #queue: { length: number };
  #lastLogged = Number.NEGATIVE_INFINITY;
  #unlogged = 0;

  constructor(
    inner: SpanExporter,
    observer: TracingObserver,
    log: Logger,
    queue: { length: number },
  ) {
    this.#inner = inner;
    this.#observer = observer;
    this.#log = log;
    this.#queue = queue;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#queue.length -= spans.length;
    this.#inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) this.#observer.spansExported(spans.length);
      else this.#failed(spans.length, result.error);
      done(result);
    });
  }

  #failed(n: number, error: Error | undefined): void {
    this.#observer.exportFailed();
    this.#observer.spansDropped('export_failed', n);
    this.#unlogged++;
    const now = performance.now();
    if (now - this.#lastLogged < FAILURE_LOG_INTERVAL_MS) return;
    this.#log.warn(
      { failures: this.#unlogged, spans: n, err: error?.message ?? 'unknown' },
      'span export failed: spans dropped (next such line at most in a minute)',
    );
    this.#lastLogged = now;
    this.#unlogged = 0;
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * The batch processor, with its queue bound kept here: it drops quietly, this counts.
 * A span past the bound never reaches it, so its own bound (the same) is never hit.
 */
class BoundedProcessor implements SpanProcessor {
  readonly #inner: SpanProcessor;
  readonly #max: number;
  readonly #observer: TracingObserver;
  readonly #queue: { length: number };

  constructor(
    inner: SpanProcessor,
    max: number,
    observer: TracingObserver,
    queue: { length: number },
  ) {
    this.#inner = inner;
    this.#max = max;
    this.#observer = observer;
    this.#queue = queue;
  }

  onStart(span: Span, parent: Context): void {
    this.#inner.onStart(span, parent);
  }

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.#queue.length >= this.#max) {
      this.#observer.spansDropped('queue_full', 1);
      return;
    }
    this.#queue.length++;
    this.#inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
}

/** The process's tracing: what the proxy traces with, and its shutdown. */
export interface Tracing extends ProxyTracing {
  /** Exports what is queued (bounded by the export timeout), then stops. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  readonly config: Config['tracing'];
  readonly observer: TracingObserver;
  readonly log: Logger;
  /** The exporter spans go to; default: OTLP/HTTP protobuf to `config.endpoint`. */
  readonly exporter?: SpanExporter;
}

/** Sets up the SDK for the proxy's spans; `undefined` when `tracing.enabled` is false. */
export function startTracing(opts: TracingOptions): Tracing | undefined {
  const c = opts.config;
  if (!c.enabled) return undefined;
  const exporter =
    opts.exporter ?? new OTLPTraceExporter({ url: c.endpoint, timeoutMillis: c.exportTimeout });
  // Spans ended and not yet exported: the processor adds, the exporter takes away.
  const queue = { length: 0 };
  const counting = new CountingExporter(exporter, opts.observer, opts.log, queue);
  const batch = new BatchSpanProcessor(counting, {
    maxQueueSize: c.maxQueueSize,
    maxExportBatchSize: c.maxBatchSize,
    scheduledDelayMillis: c.batchDelay,
    exportTimeoutMillis: c.exportTimeout,
  });
  const bounded = new BoundedProcessor(batch, c.maxQueueSize, opts.observer, queue);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: c.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(c.samplingRatio) }),
    spanProcessors: [bounded],
  });
  return {
    tracer: provider.getTracer('fedgate'),
    propagator: new W3CTraceContextPropagator(),
    shutdown: () => provider.shutdown(),
  };
}
