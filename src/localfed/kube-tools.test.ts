import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireKubeTools } from './kube-tools.ts';

describe('requireKubeTools', () => {
  it('names what FEDGATE_KUBE_TOOLS lacks, with KUBE_TOOLS_MISSING', () => {
    const empty = mkdtempSync(join(tmpdir(), 'fedgate-no-tools-'));
    expect(() => requireKubeTools({ FEDGATE_KUBE_TOOLS: empty })).toThrow(
      expect.objectContaining({
        code: 'KUBE_TOOLS_MISSING',
        message: expect.stringContaining(join(empty, 'kube-apiserver')),
      }),
    );
  });

  it('says Go is needed when the build script cannot run it', () => {
    // A PATH with bash but without Go: ensure-kube-tools.sh stops before touching any cache.
    expect(() => requireKubeTools({ PATH: '/usr/bin:/bin', HOME: tmpdir() })).toThrow(
      expect.objectContaining({
        code: 'KUBE_TOOLS_MISSING',
        message: expect.stringMatching(/needs Go.*go is not on PATH/s),
      }),
    );
  });
});
