import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, fedgate, start } from './helpers/cli.ts';
import { freePort } from './helpers/ports.ts';
import { requireTool } from './helpers/tools.ts';
import { waitFor } from './helpers/wait.ts';

describe('fedgate CLI', () => {
  it('runs on the pinned Node 24', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(24);
  });

  it('prints help with exit 0, and usage errors exit 2', async () => {
    const help = await fedgate(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('localfed up');
    expect(help.stdout).toContain('localfed ctl');
    expect((await fedgate(['localfed', 'up', '--help'])).stdout).toContain('--scenario FILE');
    expect((await fedgate(['localfed', 'ctl', '--help'])).stdout).toContain(
      'api-down NAME [refuse|hang|drop]',
    );
    expect((await fedgate([])).code).toBe(2);
    const unknown = await fedgate(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const badFlag = await fedgate(['localfed', 'up', '--nope']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("Unknown option '--nope'");
    expect((await fedgate(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('exits 2 with the path of the problem for a bad scenario', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-cli-'));
    try {
      const missing = await fedgate([
        'localfed',
        'up',
        '--scenario',
        join(dir, 'none.yaml'),
        '--dir',
        dir,
      ]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('none.yaml: cannot read: ENOENT');
      const file = join(dir, 'bad.yaml');
      await writeFile(file, 'federation: { name: Galaxy, domain: x }\nclusters: []\n');
      const bad = await fedgate(['localfed', 'up', '--scenario', file, '--dir', dir]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('federation.name: must be a DNS label');
      expect(bad.stderr).toContain('clusters:');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('ctl without a running federation is a runtime failure (exit 1) that says what to do', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-cli-'));
    try {
      const r = await fedgate(['localfed', 'ctl', '--dir', dir, 'status']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('no local federation found');
      expect(r.stderr).toContain('fedgate localfed up');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('fedgate localfed up', () => {
  let dir: string;
  let run: ReturnType<typeof start>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-localfed-'));
    run = start(process.execPath, [
      CLI,
      'localfed',
      'up',
      '--dir',
      dir,
      '--address-block',
      '140',
      '--api-port',
      '0',
    ]);
    await waitFor(
      () => run.out().includes('Press Ctrl-C to stop.'),
      30_000,
      'localfed up to print its summary',
    );
  });

  afterAll(async () => {
    if (run?.child.pid && run.child.exitCode === null && run.child.signalCode === null) {
      process.kill(-run.child.pid, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('prints how to reach each cluster and writes their kubeconfigs', async () => {
    const out = run.out();
    expect(out).toContain('Local federation "galaxy" (domain example.test) is up.');
    for (const name of ['alpha', 'beta', 'gamma']) {
      expect(out).toMatch(new RegExp(`${name}\\s+region`));
      expect(existsSync(join(dir, `${name}.kubeconfig`))).toBe(true);
    }
    expect(out).toContain('kubectl --kubeconfig');
    expect(out).toContain('localfed ctl');
    const kubeconfig = await readFile(join(dir, 'alpha.kubeconfig'), 'utf8');
    expect(kubeconfig).toContain('server: https://127.140.0.1:');
    expect(kubeconfig).toContain('token:');
  });

  it('writes a fedgate config for the federation that check-config accepts', async () => {
    expect(run.out()).toContain('start --config');
    const check = await fedgate(['check-config', join(dir, 'fedgate.yaml')]);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(join(dir, 'gamma.kubeconfig'));
  });

  it('is driven by localfed ctl, and stops cleanly on SIGINT', async () => {
    const fail = await fedgate(['localfed', 'ctl', '--dir', dir, 'fail-zone', 'us-east-a']);
    expect(fail.code).toBe(0);
    expect(fail.stdout).toContain('zone us-east-a failed');
    const status = await fedgate(['localfed', 'ctl', '--dir', dir, 'status', '--json']);
    expect(JSON.parse(status.stdout).failedZones).toEqual(['us-east-a']);
    const human = await fedgate(['localfed', 'ctl', '--dir', dir, 'status']);
    expect(human.stdout).toContain('failed zones: us-east-a');
    const badZone = await fedgate(['localfed', 'ctl', '--dir', dir, 'restore-zone', 'mars-1']);
    expect(badZone.code).toBe(2);
    expect(badZone.stderr).toContain('unknown zone "mars-1"');
    const badArgs = await fedgate(['localfed', 'ctl', '--dir', dir, 'scale', 'shop/web']);
    expect(badArgs.code).toBe(2);
    expect(badArgs.stderr).toContain('usage: scale NS/SVC CLUSTER ZONE N');
    expect(
      (await fedgate(['localfed', 'ctl', '--dir', dir, 'restore-zone', 'us-east-a'])).code,
    ).toBe(0);

    // As Ctrl-C in a terminal: the whole process group gets SIGINT; the federation
    // stops its clusters and removes its state file.
    process.kill(-run.child.pid!, 'SIGINT');
    await run.exited;
    expect(run.out()).toContain('SIGINT: stopping the local federation');
    expect(existsSync(join(dir, 'localfed.json'))).toBe(false);
    expect((await fedgate(['localfed', 'ctl', '--dir', dir, 'status'])).code).toBe(1);
  });
});

describe('npm start (fedgate demo)', () => {
  let dir: string;
  let run: ReturnType<typeof start>;
  let ports: { dns: number; http: number; admin: number };

  /** Runs one of the lines the demo printed, as a user pasting it into a shell. */
  const paste = (line: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('sh', ['-c', line], { timeout: 15_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });
  const printed = (prefix: string) =>
    run
      .out()
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith(prefix))
      .map((l) => l.replace(/\s+#.*$/, '').replace(/\s+\(then: .*\)$/, ''));

  beforeAll(async () => {
    // The printed lines are run as pasted: these must be installed.
    requireTool('dig', 'the demo test');
    requireTool('curl', 'the demo test');
    dir = await mkdtemp(join(tmpdir(), 'fedgate-demo-'));
    ports = {
      dns: await freePort({ udp: true }),
      http: await freePort(),
      admin: await freePort(),
    };
    // Exactly the README's command, with a private directory, address block and ports.
    run = start('npm', [
      'start',
      '--',
      '--dir',
      dir,
      '--address-block',
      '140',
      '--api-port',
      '0',
      '--dns',
      `127.0.0.1:${ports.dns}`,
      '--http',
      `127.0.0.1:${ports.http}`,
      '--admin',
      `127.0.0.1:${ports.admin}`,
    ]);
    await waitFor(
      () => run.out().includes('fedgate demo: ready, 7 federated service(s)'),
      60_000,
      'the demo to say it is ready',
    );
  }, 120_000);

  afterAll(async () => {
    if (run?.child.pid && run.child.exitCode === null && run.child.signalCode === null) {
      process.kill(-run.child.pid, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('prints where DNS, the proxy and the status page are', () => {
    const out = run.out();
    expect(out).toContain(`status page  http://127.0.0.1:${ports.admin}/`);
    expect(out).toContain(`DNS          127.0.0.1:${ports.dns} (UDP and TCP)`);
    expect(out).toContain(`HTTP proxy   http://127.0.0.1:${ports.http}`);
    expect(out).toContain('127.3.0.0/16 is in eu-west-a');
  });

  it('prints dig and curl lines that work as pasted, placing clients by source address', async () => {
    const digs = printed('dig ');
    expect(digs).toHaveLength(3);
    expect(digs.some((l) => l.includes('-b 127.3.0.1'))).toBe(true);
    expect(digs.some((l) => l.includes('+subnet=127.2.0.0/16'))).toBe(true);
    // Answers come from the client's zone: fedgate's own (alpha, 127.140.x),
    // eu-west-a (gamma, 127.142.x), us-east-c (beta, 127.141.x).
    const expected = ['127.140.', '127.142.', '127.141.'];
    for (const [i, line] of digs.entries()) {
      const r = await paste(line);
      expect(r.code, `${line}: ${r.stderr}`).toBe(0);
      const addrs = r.stdout.trim().split('\n');
      expect(addrs.length, line).toBeGreaterThan(0);
      for (const a of addrs)
        expect(a, line).toMatch(new RegExp(`^${expected[i]!.replace(/\./g, '\\.')}`));
    }
    const curls = printed('curl ').filter(
      (l) => l.includes(`:${ports.http}/`) && !l.includes('shop.example.test'),
    );
    expect(curls).toHaveLength(2);
    const zones = [];
    for (const line of curls) {
      const r = await paste(line);
      expect(r.code, `${line}: ${r.stderr}`).toBe(0);
      zones.push((JSON.parse(r.stdout) as { zone: string }).zone);
    }
    expect(zones).toEqual(['us-east-a', 'eu-west-a']);
    // No access log unless switched on: requests leave no log lines.
    expect(run.out()).not.toContain('"log":"access"');
    const explain = printed('curl ').find((l) => l.includes('/debug/explain'));
    expect(explain).toBeDefined();
  });

  it('prints Gateway API lines that route as pasted: by path, by header, split, redirected, explained', async () => {
    const lines = printed('curl ').filter((l) => l.includes('shop.example.test'));
    expect(lines).toHaveLength(5);
    const service = async (line: string) => {
      const r = await paste(line);
      expect(r.code, `${line}: ${r.stderr}`).toBe(0);
      return (JSON.parse(r.stdout) as { service: string }).service;
    };
    const [byPath, byHeader, split, redirect, explain] = lines as [
      string,
      string,
      string,
      string,
      string,
    ];
    expect(await service(byPath)).toBe('api');
    expect(await service(byHeader)).toBe('web-canary');
    expect(['web', 'web-canary']).toContain(await service(split));
    const r = await paste(redirect);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 301 /);
    expect(r.stdout.toLowerCase()).toContain('location: http://shop.example.test');
    const e = JSON.parse((await paste(explain)).stdout) as {
      gateway?: { matched?: { route: string; rule: number } };
    };
    expect(e.gateway?.matched).toMatchObject({ route: 'shop/shop', rule: 1 });
  });

  it('prints a gRPC line that calls the echo service through fedgate as pasted', async () => {
    const [line] = printed('npm run -s fedgate -- grpc call');
    expect(line).toContain(
      `--host grpc-echo.shop.svc.clusterset.local 127.0.0.1:${ports.http} hello`,
    );
    const r = await paste(line!);
    expect(r.code, `${line}: ${r.stdout} ${r.stderr}`).toBe(0);
    // fedgate runs in us-east-a and so does a client it cannot place: alpha's pod there answers.
    expect(r.stdout).toMatch(/^alpha\/us-east-a grpc-echo-\S+ 127\.140\.\d+\.\d+:50051: hello\n$/);
  });

  it("checks the gRPC service by grpc.health.v1: a pod whose health ctl fails leaves fedgate's traffic and comes back", async () => {
    const [line] = printed('npm run -s fedgate -- grpc call');
    const first = await paste(line!);
    const pod = /^(\S+) (grpc-echo-\S+) (127\.\d+\.\d+\.\d+):50051/.exec(first.stdout);
    expect(pod, first.stdout).not.toBeNull();
    const [, , name, address] = pod!;
    const [failLine] = printed('npm run fedgate -- localfed ctl').filter((l) =>
      l.includes('fail-zone'),
    );
    const ctl = (args: string) => paste(failLine!.replace(/fail-zone.*$/, args));
    expect((await ctl(`health ${address} fail`)).code).toBe(0);
    // A TCP check (the default) would pass: only the gRPC check (health.active.services) sees it.
    await waitFor(
      async () => !(await paste(line!)).stdout.includes(name!),
      30_000,
      'the pod failing its gRPC check to leave the traffic',
    );
    expect((await ctl(`health ${address} pass`)).code).toBe(0);
    await waitFor(
      async () => (await paste(line!)).stdout.includes(name!),
      30_000,
      'the pod passing again to take the traffic back',
    );
  }, 90_000);

  it('reaches the TLS-only services through fedgate with the profiles written beside the kubeconfigs', async () => {
    // fedgate.yaml names each cluster's backend CA (and, for secure-mtls, fedgate's client
    // certificate): fedgate verifies the pods' certificates and presents its own.
    for (const name of ['secure', 'secure-mtls']) {
      const r = await paste(
        `curl -s -H 'Host: ${name}.shop.svc.clusterset.local' http://127.0.0.1:${ports.http}/`,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout), r.stdout).toMatchObject({ service: name, zone: 'us-east-a' });
    }
    const config = await readFile(join(dir, 'fedgate.yaml'), 'utf8');
    expect(config).toContain(`${join(dir, 'pki', 'alpha-backends-ca.pem')}`);
  });

  it('moves answers and traffic when the printed fail-zone line runs, and back on restore', async () => {
    const [failLine] = printed('npm run fedgate -- localfed ctl').filter((l) =>
      l.includes('fail-zone'),
    );
    expect(failLine).toContain(`--dir ${dir}`);
    const r = await paste(failLine!);
    expect(r.code, r.stderr).toBe(0);
    const host = `-H 'Host: web.shop.svc.clusterset.local' http://127.0.0.1:${ports.http}/`;
    await waitFor(
      async () => {
        const got = await paste(`curl -s ${host}`);
        return got.code === 0 && /"zone":"us-east-[bc]"/.test(got.stdout);
      },
      10_000,
      'traffic to leave the failed zone',
    );
    const metrics = await paste(`curl -s http://127.0.0.1:${ports.admin}/metrics`);
    expect(metrics.stdout).toMatch(
      /fedgate_failovers_total\{service="shop\/web",from="zone",to="region"\} [1-9]/,
    );
    const restore = await paste(failLine!.replace('fail-zone', 'restore-zone'));
    expect(restore.code, restore.stderr).toBe(0);
    await waitFor(
      async () => (await paste(`curl -s ${host}`)).stdout.includes('"zone":"us-east-a"'),
      15_000,
      'traffic to return to us-east-a',
    );
  });

  it('stops everything on Ctrl-C', async () => {
    process.kill(-run.child.pid!, 'SIGINT');
    await run.exited;
    expect(run.out()).toContain('stopping the demo');
    expect(existsSync(join(dir, 'localfed.json'))).toBe(false);
    const dns = await paste(
      `dig @127.0.0.1 -p ${ports.dns} +time=1 +tries=1 web.shop.svc.clusterset.local`,
    );
    // Nothing answers any more: dig gives up (exit 9) without an answer.
    expect(dns.code).not.toBe(0);
    expect(dns.stdout).not.toContain('ANSWER SECTION');
  });
});
