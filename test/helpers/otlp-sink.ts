// The OpenTelemetry Collector's OTLP/HTTP receiver (tools/otelcol's otlp-sink) as a
// child process on 127.0.0.1, and the spans it received, read back from the OTLP JSON
// lines it writes.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

/** One span as the receiver decoded it (OTLP JSON: ids in hex, attributes flattened). */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Record<string, string | number | boolean>;
  readonly events: { name: string; attributes: Record<string, string | number | boolean> }[];
  /** The resource's service.name. */
  readonly service: string;
}

export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CLIENT = 3;

interface KeyValue {
  key: string;
  value: {
    stringValue?: string;
    intValue?: string | number;
    boolValue?: boolean;
    doubleValue?: number;
  };
}

function flatten(kvs: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of kvs ?? []) {
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
  }
  return out;
}

interface Line {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind?: number;
        attributes?: KeyValue[];
        events?: { name: string; attributes?: KeyValue[] }[];
      }[];
    }[];
  }[];
}

export interface OtlpSink {
  /** The OTLP/HTTP traces URL, for `tracing.endpoint`. */
  readonly endpoint: string;
  /** Every span received so far. */
  spans(): Promise<ReceivedSpan[]>;
  /** SIGTERM, and wait for it to exit. */
  stop(): Promise<void>;
}

/** Starts otlp-sink (built by test/setup/otlp-sink.ts) writing into `dir`. */
export async function startOtlpSink(dir: string): Promise<OtlpSink> {
  const tools = process.env.FEDGATE_OTLP_SINK;
  if (!tools) throw new Error('FEDGATE_OTLP_SINK is not set: test/setup/otlp-sink.ts builds it');
  const port = await freePort();
  const out = join(dir, `spans-${port}.jsonl`);
  const child: ChildProcess = spawn(
    join(tools, 'otlp-sink'),
    ['-endpoint', `127.0.0.1:${port}`, '-out', out],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let said = '';
  child.stdout?.on('data', (d: Buffer) => {
    said += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    said += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(() => said.includes('listening'), 20_000, `otlp-sink listening (${said})`);
  return {
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    spans: async () => {
      const text = await readFile(out, 'utf8').catch(() => '');
      const spans: ReceivedSpan[] = [];
      for (const raw of text.split('\n')) {
        if (raw.trim() === '') continue;
        for (const rs of (JSON.parse(raw) as Line).resourceSpans ?? []) {
          const service = String(flatten(rs.resource?.attributes)['service.name'] ?? '');
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId ?? '',
                name: s.name,
                kind: s.kind ?? 0,
                attributes: flatten(s.attributes),
                events: (s.events ?? []).map((e) => ({
                  name: e.name,
                  attributes: flatten(e.attributes),
                })),
                service,
              });
            }
          }
        }
      }
      return spans;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
