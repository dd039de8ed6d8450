import { STATUS_CODES } from 'node:http';
import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { exitCodeOf, UsageError } from './cli-support.ts';
import { ConfigError } from './config/load.ts';
import { RCODE } from './dns/codec.ts';
import {
  ERROR_TABLE,
  type ErrorCode,
  exitCodeFor,
  FedgateError,
  GRPC_STATUS,
  grpcStatusFor,
  httpStatusFor,
  rcodeFor,
} from './errors.ts';
import { ActionError } from './localfed/federation.ts';
import { ScenarioError } from './localfed/scenario.ts';
import { PerTryTimeout } from './proxy/failures.ts';

const CODES = Object.keys(ERROR_TABLE) as ErrorCode[];

describe('the error table', () => {
  it('gives every code an HTTP error status, a DNS error rcode and an exit code', () => {
    for (const code of CODES) {
      const { http, dnsRcode, exit } = ERROR_TABLE[code];
      expect(http >= 400 && http <= 599 && STATUS_CODES[http] !== undefined, code).toBe(true);
      // NOERROR and NXDOMAIN are answers, not errors.
      expect(Object.keys(RCODE), code).toContain(dnsRcode);
      expect(['NOERROR', 'NXDOMAIN'], code).not.toContain(dnsRcode);
      expect([0, 1, 2], code).toContain(exit);
    }
  });

  it('is read column by column through httpStatusFor, rcodeFor and exitCodeFor', () => {
    for (const code of CODES) {
      expect(httpStatusFor(code), code).toBe(ERROR_TABLE[code].http);
      expect(rcodeFor(code), code).toBe(ERROR_TABLE[code].dnsRcode);
      expect(exitCodeFor(code), code).toBe(ERROR_TABLE[code].exit);
    }
  });

  it('gives every code a gRPC status other than OK, read through grpcStatusFor', () => {
    for (const code of CODES) {
      const status = grpcStatusFor(code);
      expect(status, code).toBe(GRPC_STATUS[ERROR_TABLE[code].grpc]);
      expect(status, code).not.toBe(GRPC_STATUS.OK);
    }
  });

  it("answers the proxy's own failures with the gRPC statuses clients retry or report by", () => {
    // UNAVAILABLE is what gRPC clients treat as transient; a timeout and a shortage say what they are.
    expect(grpcStatusFor('NO_HEALTHY_UPSTREAM')).toBe(GRPC_STATUS.UNAVAILABLE);
    expect(grpcStatusFor('UPSTREAM_UNREACHABLE')).toBe(GRPC_STATUS.UNAVAILABLE);
    expect(grpcStatusFor('UPSTREAM_TLS')).toBe(GRPC_STATUS.UNAVAILABLE);
    expect(grpcStatusFor('DRAINING')).toBe(GRPC_STATUS.UNAVAILABLE);
    expect(grpcStatusFor('UPSTREAM_TIMEOUT')).toBe(GRPC_STATUS.DEADLINE_EXCEEDED);
    expect(grpcStatusFor('UPSTREAM_OVERFLOW')).toBe(GRPC_STATUS.RESOURCE_EXHAUSTED);
    expect(grpcStatusFor('CLIENT_OVER_SHARE')).toBe(GRPC_STATUS.RESOURCE_EXHAUSTED);
    expect(grpcStatusFor('HOST_UNKNOWN')).toBe(GRPC_STATUS.UNIMPLEMENTED);
  });

  it('gives the DNS conditions the rcodes the DNS server has always answered', () => {
    expect(rcodeFor('BAD_REQUEST')).toBe('FORMERR');
    expect(rcodeFor('METHOD_NOT_ALLOWED')).toBe('NOTIMP');
    expect(rcodeFor('EDNS_VERSION_UNSUPPORTED')).toBe('BADVERS');
    expect(rcodeFor('HOST_UNKNOWN')).toBe('REFUSED');
    expect(rcodeFor('ZONE_TRANSFER_REFUSED')).toBe('REFUSED');
  });

  it('makes usage and configuration problems exit 2, runtime failures 1', () => {
    for (const code of [
      'USAGE_INVALID',
      'CONFIG_INVALID',
      'KUBECONFIG_INVALID',
      'LISTEN_FAILED',
      'SCENARIO_INVALID',
      'ACTION_INVALID',
    ] as const) {
      expect(exitCodeFor(code), code).toBe(2);
    }
    expect(exitCodeFor('WORKERS_FAILED')).toBe(1);
    // A Node that cannot be read at start: Kubernetes restarts the pod, and it reads again.
    expect(exitCodeFor('SELF_NODE_UNAVAILABLE')).toBe(1);
    expect(exitCodeFor('LOCALFED_UNAVAILABLE')).toBe(1);
    expect(exitCodeFor('LOCALFED_START_FAILED')).toBe(1);
  });
});

describe("fedgate's error classes", () => {
  it('each carry a code from the table', () => {
    expect(new UsageError('x').code).toBe('USAGE_INVALID');
    expect(new ConfigError('f.yaml', ['a: required']).code).toBe('CONFIG_INVALID');
    expect(new ScenarioError('x').code).toBe('SCENARIO_INVALID');
    expect(new ActionError('x').code).toBe('ACTION_INVALID');
    const timeout = new PerTryTimeout(250);
    expect(timeout.code).toBe('UPSTREAM_TIMEOUT');
    expect(timeout.name).toBe('PerTryTimeout');
  });
});

describe('the command line', () => {
  it("exits with a thrown FedgateError's exit column", () => {
    for (const code of CODES) {
      expect(exitCodeOf(new FedgateError(code, 'x')), code).toBe(ERROR_TABLE[code].exit);
    }
    expect(exitCodeOf(new UsageError('x'))).toBe(2);
    expect(exitCodeOf(new ConfigError('f.yaml', ['a: required']))).toBe(2);
  });

  it('exits 2 for an argument parseArgs rejects, 1 for an error without a code', () => {
    let parseError: unknown;
    try {
      parseArgs({ args: ['--nope'], options: {} });
    } catch (e) {
      parseError = e;
    }
    expect(parseError).toBeDefined();
    expect(exitCodeOf(parseError)).toBe(2);
    expect(exitCodeOf(new Error('a bug'))).toBe(1);
    expect(exitCodeOf(undefined)).toBe(1);
  });
});
