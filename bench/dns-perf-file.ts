// dnsperf with its output written straight to a file instead of piped into this
// process. For a verbose (-v) run against a server in this same process: -v prints a
// line per query (20,000 a second at 20 k q/s), and reading that pipe on the event
// loop that answers the queries adds to the very latencies being measured (p90 about
// 3× on a 2-vCPU machine). Same options and result as runDnsperf in dns-knot.ts.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { requireTool } from '../test/helpers/tools.ts';
import { type DnsperfOptions, type DnsperfResult, parseDnsperf } from './dns-knot.ts';

/** The command line runDnsperf builds for the same options. */
function dnsperfArgs(o: DnsperfOptions): string[] {
  const args = ['-s', o.server, '-p', String(o.port), '-d', o.queriesFile, '-l', String(o.seconds)];
  args.push('-c', String(o.clients ?? 1), '-T', String(o.threads ?? 1));
  args.push('-q', String(o.outstanding ?? 200));
  if (o.rate !== undefined) args.push('-Q', String(o.rate));
  if (o.timeoutSeconds !== undefined) args.push('-t', String(o.timeoutSeconds));
  if (o.verbose) args.push('-v');
  return [...args, ...(o.extraArgs ?? [])];
}

/**
 * Runs dnsperf with stdout to `outFile` (removed afterwards), then parses it as
 * runDnsperf does. `onExit` is called as soon as dnsperf has ended, before the
 * (for -v, long) parse: the end of the load, for whoever measures the server.
 * Rejects if dnsperf fails or prints no statistics.
 */
export async function runDnsperfToFile(
  opts: DnsperfOptions,
  outFile: string,
  onExit?: () => void,
): Promise<DnsperfResult> {
  const bin = requireTool('dnsperf', 'the DNS benchmark');
  const args = dnsperfArgs(opts);
  const fd = openSync(outFile, 'w');
  let code: number | null;
  let stderr = '';
  try {
    code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(bin, args, { stdio: ['ignore', fd, 'pipe'] });
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const guard = setTimeout(
        () => child.kill('SIGKILL'),
        (opts.seconds + (opts.timeoutSeconds ?? 5) + 30) * 1000,
      );
      child.once('error', reject);
      child.once('close', (c) => {
        clearTimeout(guard);
        onExit?.();
        resolve(c);
      });
    });
  } finally {
    closeSync(fd);
  }
  const stdout = await readFile(outFile, 'utf8');
  await rm(outFile, { force: true });
  const raw = stderr ? `${stdout}${stdout.endsWith('\n') ? '' : '\n'}${stderr}` : stdout;
  if (code !== 0 || !stdout.includes('Statistics:')) {
    throw new Error(`dnsperf ${args.join(' ')} failed (exit ${code}):\n${raw.slice(-4000)}`);
  }
  return { ...parseDnsperf(stdout, opts.verbose ?? false), raw };
}
