// CoreDNS as an authoritative anchor for the DNS benchmark, beside Knot: Submariner
// Lighthouse and k8gb answer from CoreDNS. The binary is upstream's coremain with the
// bind, errors, minimal and file plugins only (tools/coredns), built from the Go module
// proxy by scripts/ensure-coredns.sh; each zone is served by the file plugin from a
// zone file, with no cache and no query log, on loopback.
//
//   const dns = await startCoreDns({ dir, port, zones: [{ origin: 'example.test', text }] });
//   await dns.stop();
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runEnsureScript } from '../src/localfed/ensure-script.ts';
import { type DnsProcess, startDnsProcess } from './dns-process.ts';
import type { ZoneFile } from './dns-zonefile.ts';

const ENSURE = new URL('../scripts/ensure-coredns.sh', import.meta.url).pathname;
// A cold build on two cores takes about a minute (tools/coredns/README.md).
const BUILD_TIMEOUT_MS = 20 * 60_000;

/**
 * The coredns binary: from FEDGATE_COREDNS (its directory) if set, else built or
 * reused by scripts/ensure-coredns.sh. Throws saying what is missing; never skips.
 */
export function requireCoreDns(): string {
  const given = process.env.FEDGATE_COREDNS;
  if (given) return join(given, 'coredns');
  let dir: string;
  try {
    // Progress (stderr) goes to the benchmark's output; only the directory comes back.
    dir = runEnsureScript(ENSURE, BUILD_TIMEOUT_MS, true);
  } catch (e) {
    throw new Error(
      `${(e as Error).message}: CoreDNS, the DNS benchmark's second anchor, could not be built; it needs Go (see tools/coredns/README.md)`,
    );
  }
  process.env.FEDGATE_COREDNS = dir;
  return join(dir, 'coredns');
}

const zoneName = (origin: string) => origin.replace(/\.$/, '');
export const zoneFileName = (origin: string) => `${zoneName(origin)}.zone`;

/**
 * A Corefile serving each zone from `dir/<zone>.zone` on host:port: one server block
 * per zone (CoreDNS puts blocks on the same address into one server), `bind` so it
 * listens on that address only, `errors` so a failure is logged, `minimal` so an
 * answer carries no authority NS or additional records (fedgate sends none: without
 * it CoreDNS's responses to the mix are 2.7 times fedgate's bytes), `file` with its
 * periodic reload off so nothing but answering runs.
 */
export function corefile(dir: string, host: string, port: number, origins: string[]): string {
  if (origins.length === 0) throw new Error('corefile: at least one zone is needed');
  return origins
    .map((o) =>
      [
        `${zoneName(o)}:${port} {`,
        `    bind ${host}`,
        '    errors',
        '    minimal',
        `    file ${join(dir, zoneFileName(o))} {`,
        '        reload 0',
        '    }',
        '}',
      ].join('\n'),
    )
    .join('\n\n')
    .concat('\n');
}

export interface CoreDnsOptions {
  /** Where the Corefile and zone files go; created if missing. */
  dir: string;
  port: number;
  /** 127.0.0.1 by default. */
  host?: string;
  zones: ZoneFile[];
  /** GOMAXPROCS for it; by default Go's own choice (every core), as operators run it. */
  gomaxprocs?: number;
}

/** Writes the Corefile and zones, starts `coredns -conf`, resolves once every zone answers. */
export async function startCoreDns(opts: CoreDnsOptions): Promise<DnsProcess> {
  const host = opts.host ?? '127.0.0.1';
  const bin = requireCoreDns();
  await mkdir(opts.dir, { recursive: true });
  for (const z of opts.zones) await writeFile(join(opts.dir, zoneFileName(z.origin)), z.text);
  const conf = join(opts.dir, 'Corefile');
  const origins = opts.zones.map((z) => z.origin);
  await writeFile(conf, corefile(opts.dir, host, opts.port, origins));
  const env = { ...process.env };
  if (opts.gomaxprocs !== undefined) env.GOMAXPROCS = String(opts.gomaxprocs);
  return startDnsProcess({
    what: 'coredns',
    bin,
    args: ['-conf', conf, '-quiet'],
    host,
    port: opts.port,
    apexes: origins,
    // A zone file the file plugin cannot parse stops coredns at start (exit 1, seen),
    // which startDnsProcess reports with its log.
    env,
  });
}
