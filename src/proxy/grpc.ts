// gRPC semantics over the proxy's HTTP path: what makes a request a gRPC call, its
// deadline (grpc-timeout), the status an answer carries (grpc-status in a
// trailers-only head or in the trailers), which statuses a call is retried on, and
// fedgate's own failures as trailers-only gRPC answers (grpc-status and
// grpc-message, HTTP 200). Rules from the gRPC spec's doc/PROTOCOL-HTTP2.md,
// doc/statuscodes.md and doc/http-grpc-status-mapping.md.
import { type ErrorCode, GRPC_STATUS, grpcStatusFor } from '../errors.ts';

type Headers = Readonly<Record<string, string | string[] | number | undefined>>;

/** A gRPC call's own facts, read once from its request head. */
export interface GrpcCall {
  /** When the client's deadline passes (performance.now() ms); undefined: none, or malformed. */
  readonly deadline: number | undefined;
  /** A grpc-timeout header that did not parse, for a debug line; forwarded as it came. */
  readonly badTimeout?: string | undefined;
}

/**
 * A gRPC call: content-type application/grpc, alone or followed by `+` (a codec:
 * application/grpc+proto) or `;` (parameters). One header read.
 */
export function isGrpc(headers: Headers): boolean {
  const ct = headers['content-type'];
  if (typeof ct !== 'string' || ct.length < 16) return false;
  if (!ct.startsWith('application/grpc') && ct.slice(0, 16).toLowerCase() !== 'application/grpc') {
    return false;
  }
  const next = ct.charCodeAt(16);
  return Number.isNaN(next) || next === 43 /* + */ || next === 59 /* ; */;
}

/** The gRPC call a request is, or undefined for a plain request. */
export function grpcCall(headers: Headers, now = performance.now()): GrpcCall | undefined {
  if (!isGrpc(headers)) return undefined;
  const raw = headers['grpc-timeout'];
  if (typeof raw !== 'string') return { deadline: undefined };
  const ms = parseGrpcTimeout(raw);
  return ms === undefined ? { deadline: undefined, badTimeout: raw } : { deadline: now + ms };
}

const UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/** grpc-timeout (`1*8DIGIT` and one of H M S m u n) in milliseconds; undefined when malformed. */
export function parseGrpcTimeout(value: string): number | undefined {
  const n = value.length - 1;
  if (n < 1 || n > 8) return undefined;
  const unit = UNIT_MS[value.charAt(n)];
  if (unit === undefined) return undefined;
  let digits = 0;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    digits = digits * 10 + c;
  }
  return digits * unit;
}

/**
 * A grpc-timeout value for `ms` (> 0): the finest unit whose count fits in eight
 * digits, rounded down, so the upstream's deadline never outlasts the client's.
 */
export function formatGrpcTimeout(ms: number): string {
  const units: [string, number][] = [
    ['u', 0.001],
    ['m', 1],
    ['S', 1000],
    ['M', 60_000],
    ['H', 3_600_000],
  ];
  for (const [unit, size] of units) {
    const n = Math.floor(ms / size);
    if (n < 100_000_000) return `${Math.max(1, n)}${unit}`;
  }
  return '99999999H';
}

/** grpc-status of a head or trailers, when present and a number. */
export function grpcStatusOf(headers: Headers | undefined): number | undefined {
  const v = headers?.['grpc-status'];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const n = typeof s === 'number' ? s : Number.parseInt(s, 10);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/**
 * The gRPC status a client derives from an HTTP status other than 200 with no
 * grpc-status (doc/http-grpc-status-mapping.md).
 */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return GRPC_STATUS.INTERNAL;
    case 401:
      return GRPC_STATUS.UNAUTHENTICATED;
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS.UNAVAILABLE;
    default:
      return GRPC_STATUS.UNKNOWN;
  }
}

/**
 * The gRPC status a response head tells, when it tells one: grpc-status in a head
 * is a trailers-only answer (the spec allows it nowhere else), and an HTTP status
 * other than 200 is a failure whatever the body. undefined: the status comes in the
 * trailers.
 */
export function grpcStatusOfHead(status: number, headers: Headers | undefined): number | undefined {
  return grpcStatusOf(headers) ?? (status === 200 ? undefined : grpcStatusOfHttp(status));
}

/** The statuses http.retries.grpcRetryOn may name (Envoy's retry_on for gRPC). */
export const GRPC_RETRY_ON = {
  cancelled: GRPC_STATUS.CANCELLED,
  'deadline-exceeded': GRPC_STATUS.DEADLINE_EXCEEDED,
  internal: GRPC_STATUS.INTERNAL,
  'resource-exhausted': GRPC_STATUS.RESOURCE_EXHAUSTED,
  unavailable: GRPC_STATUS.UNAVAILABLE,
} as const;
export type GrpcRetryOn = keyof typeof GRPC_RETRY_ON;

/** The status numbers a list of grpcRetryOn names stands for. */
export function grpcRetryStatuses(names: readonly GrpcRetryOn[]): ReadonlySet<number> {
  return new Set(names.map((n) => GRPC_RETRY_ON[n]));
}

/**
 * grpc-message's percent-encoding: the UTF-8 bytes outside printable ASCII, and
 * `%` itself, as %XX (upper-case hex).
 */
export function percentEncodeGrpcMessage(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out +=
      b < 0x20 || b > 0x7e || b === 0x25
        ? `%${b.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(b);
  }
  return out;
}

/** The head of fedgate's own trailers-only gRPC answer for `code` (HTTP status 200). */
export function grpcErrorHeaders(code: ErrorCode, detail: string): Record<string, string> {
  return {
    'content-type': 'application/grpc',
    'grpc-status': String(grpcStatusFor(code)),
    'grpc-message': percentEncodeGrpcMessage(`${code}: ${detail}`),
    'x-fedgate-error': code,
  };
}
