// Vitest global setup: builds (or reuses) tools/otelcol's otlp-sink, the OpenTelemetry
// Collector's OTLP receiver the tracing tests export to, once before any test file
// runs (a cold build takes minutes on two cores: no test hook should wait for it), and
// hands its directory to every test process through FEDGATE_OTLP_SINK. A failed build
// fails the run here, naming what is missing.
import { join } from 'node:path';
import { runEnsureScript } from '../../src/localfed/ensure-script.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const ENSURE_OTLP_SINK = join(ROOT, 'scripts/ensure-otlp-sink.sh');
const BUILD_TIMEOUT_MS = 20 * 60_000;

export default function setup(): void {
  if (process.env.FEDGATE_OTLP_SINK) return;
  const started = Date.now();
  let dir: string;
  try {
    dir = runEnsureScript(ENSURE_OTLP_SINK, BUILD_TIMEOUT_MS, true);
  } catch (e) {
    throw new Error(
      `${(e as Error).message}: the OTLP receiver the tracing tests export to could not be built; it needs Go (see tools/otelcol/README.md)`,
    );
  }
  process.env.FEDGATE_OTLP_SINK = dir;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`otlp sink: ${dir} (${seconds} s)\n`);
}
