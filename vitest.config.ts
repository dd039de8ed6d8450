import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    // Tests reach loopback only, and so does every process they start (src/netguard/).
    setupFiles: ['test/setup/loopback-guard.ts'],
    // The real control plane's binaries and the OTLP receiver, built once for the whole
    // run (tools/kube/, tools/otelcol/).
    globalSetup: ['test/setup/kube-tools.ts', 'test/setup/otlp-sink.ts'],
    // Real sockets and real clients: give them time, never retry a flaky test into green.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers than that only adds contention to timing-sensitive watches.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: 'test-results/vitest.json' },
  },
});
