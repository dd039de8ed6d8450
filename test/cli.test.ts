import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fedgate, start } from './helpers/cli.ts';
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

describe('npm start', () => {
  let dir: string;
  let run: ReturnType<typeof start>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-start-'));
    // Exactly the README's command, with a private directory and address block.
    run = start('npm', ['start', '--', '--dir', dir, '--address-block', '140', '--api-port', '0']);
    await waitFor(
      () => run.out().includes('Press Ctrl-C to stop.'),
      30_000,
      'npm start to print its summary',
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

    // As Ctrl-C in a terminal: the whole process group gets SIGINT. npm re-raises it
    // (no exit code); fedgate underneath stops its clusters and removes its state file.
    process.kill(-run.child.pid!, 'SIGINT');
    await run.exited;
    expect(run.out()).toContain('SIGINT: stopping the local federation');
    expect(existsSync(join(dir, 'localfed.json'))).toBe(false);
    expect((await fedgate(['localfed', 'ctl', '--dir', dir, 'status'])).code).toBe(1);
  });
});
