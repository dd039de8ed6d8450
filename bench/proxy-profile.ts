// Where fedgate's proxy spends its CPU per request, next to the bare Node floor
// (bench/bare-forwarder.ts: node:http in front of an undici Pool, nothing else).
// proxy.bench.ts says how far apart they are; this says which functions make the gap.
//
//   node bench/proxy-profile.ts [--seconds 10] [--interval-us 500] [--rounds 3] [--keep DIR]
//
// Starts the backend, then, --rounds times (which goes first alternating), a fresh
// process of each proxy exactly as proxy.bench.ts does (fedgate:
// `fedgate start --workers 1` on a one-endpoint federation; bare: the forwarder), each
// under `node --cpu-prof`, drives it with wrk (-t2 -c64, a 2 s warm-up, then --seconds),
// stops it (the profile is written at exit), and reads the profile. Each proxy waits
// (up to 60 s) for a quiet machine first, and its line says how much CPU others used
// during its run: others' load slows system calls (writev is a third of either proxy's
// time), so two profiles compare only when both were quiet. One process's figures
// differ from the next one's by ±20 % here, so the rounds are merged (per-request
// figures weighted by requests). From each profile:
//   - only the samples taken while the measured wrk ran (V8's profile clock and
//     process.hrtime are both CLOCK_MONOTONIC), so start-up and warm-up are left out;
//   - CPU µs per request: the process's utime + stime (/proc) over that run / requests,
//     shared out by samples (idle samples left out), so the sampling overhead the
//     profiler adds is spread over the functions, not added to them;
//   - self time by function, by kind of code (fedgate's src/, undici, Node's own
//     JavaScript, V8 builtins and native, GC), the proxy's own functions inclusive
//     (fedgate's src/, the forwarder's), and its hottest call paths (its own frames of
//     a stack, outermost first);
//   - the difference per request, fedgate minus bare, by kind and by function.
// Prints tables and writes bench/results/proxy-profile.json; the raw .cpuprofile files
// (open them in Chrome DevTools) are kept in --keep DIR if given. Not a benchmark
// (bench/run.ts does not run it): profiling slows both proxies, so their req/s here are
// not proxy.bench.ts's.
// First: this process, and every process it starts, reach loopback only.
import '../src/netguard/install.ts';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  machineCpuSeconds,
  reapedChildrenCpuSeconds,
  runWrk,
  waitForQuietMachine,
} from './http-anchors.ts';
import { median, printTable, writeResult } from './lib.ts';
import {
  HOST,
  type NodeChild,
  type ProxyProcess,
  probe,
  startBackendProcess,
  startBareForwarder,
  startFedgate,
  UPSTREAM,
} from './proxy-targets.ts';

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    'interval-us': { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'string' },
  },
});
const SECONDS = Math.min(60, Math.max(2, Number(opts.seconds)));
const INTERVAL_US = Math.max(100, Number(opts['interval-us']));
const ROUNDS = Math.min(10, Math.max(1, Number(opts.rounds)));
const WARMUP_SECONDS = 2;
const TOP = 25;
const REPO = fileURLToPath(new URL('..', import.meta.url));

// ---- the profile -------------------------------------------------------------------

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

type Kind = 'fedgate' | 'forwarder' | 'undici' | 'dependency' | 'node' | 'native' | 'gc';

/** Whose code a frame is: fedgate's src/, the forwarder, undici, Node's JS, V8's. */
function kindOf(f: CallFrame): Kind | 'idle' {
  const u = f.url;
  if (u === '') {
    if (f.functionName === '(idle)') return 'idle';
    if (f.functionName === '(garbage collector)') return 'gc';
    return 'native'; // (program), (root) and V8 builtins and C++ bindings
  }
  if (u.startsWith('node:')) return 'node';
  if (u.includes('/node_modules/undici/')) return 'undici';
  if (u.includes('/node_modules/')) return 'dependency';
  if (u.includes('/src/')) return 'fedgate';
  if (u.includes('/bench/')) return 'forwarder';
  return 'dependency';
}

/** `src/proxy/attempts.ts:next:120`, as the report names a function. */
function nameOf(f: CallFrame): string {
  const fn = f.functionName || '(anonymous)';
  if (f.url === '') return fn;
  const nm = f.url.lastIndexOf('/node_modules/');
  const where =
    nm >= 0
      ? f.url.slice(nm + '/node_modules/'.length)
      : f.url.startsWith('file://')
        ? relative(REPO, fileURLToPath(f.url))
        : f.url;
  return `${where}:${fn}:${f.lineNumber + 1}`;
}

interface Tally {
  [name: string]: number;
}
const add = (t: Tally, k: string, n = 1) => {
  t[k] = (t[k] ?? 0) + n;
};
const top = (t: Tally, n: number) =>
  Object.entries(t)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n);

interface Analysis {
  /** Samples in the window that were not idle. */
  busySamples: number;
  idleSamples: number;
  /** CPU µs per request (from /proc), shared out over busy samples. */
  usPerRequest: number;
  /** µs per request by kind of code, self time. */
  byKind: Tally;
  /** µs per request by function, self time. */
  selfByFunction: Tally;
  /**
   * µs per request by the proxy's own function (fedgate's src/, or the forwarder's),
   * inclusive: with what it calls, counted once a stack.
   */
  ownInclusive: Tally;
  /** µs per request by the proxy's own frames of a stack, outermost first. */
  ownPaths: Tally;
}

function analyse(p: CpuProfile, fromUs: number, toUs: number, usPerRequest: number): Analysis {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const counts = { busy: 0, idle: 0 };
  const byKind: Tally = {};
  const self: Tally = {};
  const incl: Tally = {};
  const paths: Tally = {};
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (t < fromUs || t > toUs) continue;
    const leaf = byId.get(p.samples[i]!)!;
    const kind = kindOf(leaf.callFrame);
    if (kind === 'idle') {
      counts.idle++;
      continue;
    }
    counts.busy++;
    add(byKind, kind);
    add(self, nameOf(leaf.callFrame));
    const own: string[] = [];
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      const k = kindOf(f);
      if (k !== 'fedgate' && k !== 'forwarder') continue;
      const name = nameOf(f);
      if (!seen.has(name)) {
        seen.add(name);
        add(incl, name);
      }
      own.unshift(name.replace(/:\d+$/, ''));
    }
    if (own.length > 0) add(paths, own.join(' > '));
  }
  const scale = (tally: Tally) => {
    const out: Tally = {};
    for (const [k, v] of Object.entries(tally)) out[k] = (v / counts.busy) * usPerRequest;
    return out;
  };
  return {
    busySamples: counts.busy,
    idleSamples: counts.idle,
    usPerRequest,
    byKind: scale(byKind),
    selfByFunction: scale(self),
    ownInclusive: scale(incl),
    ownPaths: scale(paths),
  };
}

// ---- one proxy under load -----------------------------------------------------------

interface Profiled {
  requestsPerSec: number;
  requests: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  /**
   * Busy CPU (share of a core) over the run that neither the proxy, the backend nor wrk
   * used: others' work on the machine, which slows system calls too. Compare profiles
   * only when it is low for both.
   */
  othersCpu: number;
  analysis: Analysis;
  /** Each round's own figures, when this is several rounds merged. */
  rounds?: { requestsPerSec: number; cpuUsPerRequest: number; othersCpu: number }[];
}

/**
 * Rounds merged: one process's profile differs from the next one's by ±20 % on this
 * machine (JIT outcomes, the neighbours' load), more than the gap being looked for.
 * Per-request figures are weighted by each round's requests.
 */
function merge(ps: Profiled[]): Profiled {
  const requests = ps.reduce((a, p) => a + p.requests, 0);
  const weighted = (f: (p: Profiled) => number) =>
    ps.reduce((a, p) => a + f(p) * p.requests, 0) / requests;
  const tally = (f: (a: Analysis) => Tally) => {
    const out: Tally = {};
    for (const p of ps)
      for (const [k, v] of Object.entries(f(p.analysis))) add(out, k, v * p.requests);
    for (const k of Object.keys(out)) out[k]! /= requests;
    return out;
  };
  const cpuUsPerRequest = weighted((p) => p.cpuUsPerRequest);
  return {
    requestsPerSec: median(ps.map((p) => p.requestsPerSec)),
    requests,
    p99Ms: median(ps.map((p) => p.p99Ms)),
    cpuUsPerRequest,
    othersCpu: Math.max(...ps.map((p) => p.othersCpu)),
    analysis: {
      busySamples: ps.reduce((a, p) => a + p.analysis.busySamples, 0),
      idleSamples: ps.reduce((a, p) => a + p.analysis.idleSamples, 0),
      usPerRequest: cpuUsPerRequest,
      byKind: tally((a) => a.byKind),
      selfByFunction: tally((a) => a.selfByFunction),
      ownInclusive: tally((a) => a.ownInclusive),
      ownPaths: tally((a) => a.ownPaths),
    },
    rounds: ps.map((p) => ({
      requestsPerSec: p.requestsPerSec,
      cpuUsPerRequest: p.cpuUsPerRequest,
      othersCpu: p.othersCpu,
    })),
  };
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function profileOne(
  name: string,
  round: number,
  start: (nodeArgs: string[]) => Promise<ProxyProcess>,
  backend: NodeChild,
  dir: string,
  keep: string | undefined,
): Promise<Profiled> {
  const profDir = join(dir, `${name}-${round}-prof`);
  await mkdir(profDir, { recursive: true });
  const nodeArgs = [
    '--cpu-prof',
    '--cpu-prof-dir',
    profDir,
    '--cpu-prof-interval',
    `${INTERVAL_US}`,
  ];
  const proxy = await start(nodeArgs);
  let stopped = false;
  try {
    await probe(proxy.url);
    const wrk = (durationSec: number) =>
      runWrk({ url: proxy.url, host: HOST, threads: 2, connections: 64, durationSec });
    await waitForQuietMachine(60);
    await wrk(WARMUP_SECONDS);
    const m0 = machineCpuSeconds().busy;
    const b0 = backend.cpuSeconds();
    const w0 = reapedChildrenCpuSeconds();
    const c0 = proxy.cpuSeconds();
    const from = nowUs();
    const r = await wrk(SECONDS);
    const to = nowUs();
    const proxySeconds = proxy.cpuSeconds() - c0;
    const cpuUsPerRequest = (proxySeconds * 1e6) / r.requests;
    const others =
      machineCpuSeconds().busy -
      m0 -
      proxySeconds -
      (backend.cpuSeconds() - b0) -
      (reapedChildrenCpuSeconds() - w0);
    const othersCpu = Math.max(0, others / r.durationSec);
    await proxy.stop();
    stopped = true;
    const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length !== 1)
      throw new Error(`${name}: expected one profile in ${profDir}, found ${files}`);
    const profile = JSON.parse(await readFile(join(profDir, files[0]!), 'utf8')) as CpuProfile;
    if (keep !== undefined) {
      await mkdir(keep, { recursive: true });
      await copyFile(join(profDir, files[0]!), join(keep, `${name}-${round}.cpuprofile`));
    }
    const analysis = analyse(profile, from, to, cpuUsPerRequest);
    if (analysis.busySamples === 0) {
      throw new Error(
        `${name}: no samples between wrk's start and end (profile clock not monotonic?)`,
      );
    }
    return {
      requestsPerSec: r.requestsPerSec,
      requests: r.requests,
      p99Ms: r.p99Ms,
      cpuUsPerRequest,
      othersCpu,
      analysis,
    };
  } finally {
    if (!stopped) await proxy.stop();
  }
}

// ---- report -------------------------------------------------------------------------

const us = (v: number | undefined) => (v === undefined ? '' : v.toFixed(2));
const share = (v: number, total: number) => `${((v / total) * 100).toFixed(1)} %`;

function printProfile(name: string, p: Profiled): void {
  const a = p.analysis;
  console.log(
    `\n== ${name}, ${ROUNDS} round(s) merged: median ${Math.round(p.requestsPerSec)} req/s under the profiler, p99 ${p.p99Ms.toFixed(2)} ms, ${p.cpuUsPerRequest.toFixed(1)} µs CPU/request, others' cpu ${(p.othersCpu * 100).toFixed(0)} %; ${a.busySamples} busy samples (${a.idleSamples} idle)`,
  );
  printTable(
    `${name}: self time by kind of code`,
    top(a.byKind, 10).map(([k, v]) => ({
      kind: k,
      'µs/req': us(v),
      share: share(v, a.usPerRequest),
    })),
  );
  printTable(
    `${name}: top ${TOP} functions by self time`,
    top(a.selfByFunction, TOP).map(([k, v]) => ({
      function: k,
      'µs/req': us(v),
      share: share(v, a.usPerRequest),
    })),
  );
  const own = name === 'fedgate' ? 'src/' : 'the forwarder’s';
  printTable(
    `${name}: top ${TOP} functions of ${own} code, inclusive (with what they call)`,
    top(a.ownInclusive, TOP).map(([k, v]) => ({
      function: k,
      'µs/req': us(v),
      share: share(v, a.usPerRequest),
    })),
  );
  printTable(
    `${name}: top ${TOP} call paths through ${own} code (its frames, outermost first; with what the last calls)`,
    top(a.ownPaths, TOP).map(([k, v]) => ({
      path: k,
      'µs/req': us(v),
      share: share(v, a.usPerRequest),
    })),
  );
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'fedgate-proxy-profile-'));
  const load: { before: number; after?: number } = { before: loadavg()[0]! };
  let backend: NodeChild | undefined;
  try {
    backend = await startBackendProcess();
    const runs: Record<'fedgate' | 'bare', Profiled[]> = { fedgate: [], bare: [] };
    const starts = {
      fedgate: (nodeArgs: string[]) => startFedgate(UPSTREAM, join(dir, 'fedgate'), { nodeArgs }),
      bare: (nodeArgs: string[]) => startBareForwarder(UPSTREAM, nodeArgs),
    };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternating which goes first, so drift over the run hits both alike.
      const order =
        round % 2 === 0 ? (['fedgate', 'bare'] as const) : (['bare', 'fedgate'] as const);
      for (const name of order) {
        const p = await profileOne(name, round, starts[name], backend, dir, opts.keep);
        runs[name].push(p);
        console.log(
          `round ${round + 1}/${ROUNDS} ${name}: ${Math.round(p.requestsPerSec)} req/s, ${p.cpuUsPerRequest.toFixed(1)} µs CPU/request, others' cpu ${(p.othersCpu * 100).toFixed(0)} %, load ${loadavg()[0]!.toFixed(2)}`,
        );
      }
    }
    const fedgate = merge(runs.fedgate);
    const bare = merge(runs.bare);
    printProfile('fedgate', fedgate);
    printProfile('bare', bare);
    const f = fedgate.analysis;

    // fedgate minus bare, per request: by kind, then by function (self time).
    const b = bare.analysis;
    const kinds = [...new Set([...Object.keys(f.byKind), ...Object.keys(b.byKind)])];
    const kindDiff: Tally = {};
    for (const k of kinds) kindDiff[k] = (f.byKind[k] ?? 0) - (b.byKind[k] ?? 0);
    printTable(
      `fedgate − bare, µs per request by kind of code (total ${us(f.usPerRequest - b.usPerRequest)})`,
      top(kindDiff, kinds.length).map(([k, v]) => ({
        kind: k,
        fedgate: us(f.byKind[k] ?? 0),
        bare: us(b.byKind[k] ?? 0),
        'fedgate − bare': us(v),
      })),
    );
    const fns = [...new Set([...Object.keys(f.selfByFunction), ...Object.keys(b.selfByFunction)])];
    const fnDiff: Tally = {};
    for (const k of fns) fnDiff[k] = (f.selfByFunction[k] ?? 0) - (b.selfByFunction[k] ?? 0);
    printTable(
      `fedgate − bare, top ${TOP} functions by extra self time per request`,
      top(fnDiff, TOP).map(([k, v]) => ({
        function: k,
        fedgate: us(f.selfByFunction[k] ?? 0),
        bare: us(b.selfByFunction[k] ?? 0),
        'fedgate − bare': us(v),
      })),
    );

    const round = (t: Tally, n: number) =>
      Object.fromEntries(top(t, n).map(([k, v]) => [k, Math.round(v * 100) / 100]));
    const summary = (p: Profiled) => ({
      requestsPerSec: p.requestsPerSec,
      requests: p.requests,
      p99Ms: p.p99Ms,
      cpuUsPerRequest: p.cpuUsPerRequest,
      othersCpu: p.othersCpu,
      rounds: p.rounds,
      busySamples: p.analysis.busySamples,
      idleSamples: p.analysis.idleSamples,
      usPerRequestByKind: round(p.analysis.byKind, 20),
      usPerRequestSelf: round(p.analysis.selfByFunction, 40),
      usPerRequestOwnInclusive: round(p.analysis.ownInclusive, 40),
      usPerRequestOwnPaths: round(p.analysis.ownPaths, 40),
    });
    load.after = loadavg()[0]!;
    const path = await writeResult('proxy-profile', {
      config: {
        rounds: ROUNDS,
        seconds: SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        intervalUs: INTERVAL_US,
        threads: 2,
        connections: 64,
        cores: cpus().length,
      },
      fedgate: {
        ...summary(fedgate),
      },
      bare: summary(bare),
      fedgateMinusBare: {
        usPerRequest: f.usPerRequest - b.usPerRequest,
        byKind: round(kindDiff, 20),
        byFunction: round(fnDiff, 40),
      },
      loadAverage: load,
    });
    console.log(
      `\nload average ${load.before.toFixed(2)} → ${load.after.toFixed(2)}; results: ${path}`,
    );
    return 0;
  } catch (e) {
    console.error(e);
    return 1;
  } finally {
    await backend?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
