// The series DNS counts for itself (Responder and ResponseRateLimiter stats, the
// server's TCP closes), read at scrape time: answering pays nothing for them.

import type { Registry } from 'prom-client';
import type { Served } from '../dns/answer.ts';
import type { Locality } from '../routing/types.ts';
import { mirroredCounter } from './mirrored-counter.ts';

/** What DNS counts for itself (Responder and ResponseRateLimiter stats). */
export interface DnsCounts {
  readonly responder: {
    readonly stats: {
      readonly kinds: ReadonlyMap<string, number>;
      readonly tiers: Readonly<Record<string, number>>;
      readonly rrlSlipped: number;
      readonly rrlDropped: number;
    };
    /** Set by attachDns: where the responder records served answers for the traffic picture. */
    traffic?: { served(s: Served, locality: Locality | undefined): void } | undefined;
  };
  /** TCP connections the server closed itself, by why (DnsServer.tcpClosed). */
  readonly tcpClosed: ReadonlyMap<string, number>;
}

/**
 * Registers the DNS series, read through `dns` at each scrape: DNS starts after
 * metrics (Metrics.attachDns), and before it they read as nothing.
 */
export function registerDnsMetrics(registry: Registry, dns: () => DnsCounts | undefined): void {
  // ---- DNS
  mirroredCounter(
    registry,
    'fedgate_dns_queries_total',
    'DNS answers by query type, name scheme (mcs, federation, regional, zonal, …) and rcode',
    ['qtype', 'scheme', 'rcode'],
    () => {
      const out: [Partial<Record<'qtype' | 'scheme' | 'rcode', string>>, number][] = [];
      for (const [key, n] of dns()?.responder.stats.kinds ?? []) {
        const [qtype, scheme, rcode] = key.split('|') as [string, string, string];
        out.push([{ qtype, scheme, rcode }, n]);
      }
      return out;
    },
  );
  mirroredCounter(
    registry,
    'fedgate_dns_rrl_total',
    'Answers response rate limiting held back: slip (sent truncated) or drop',
    ['action'],
    () => {
      const s = dns()?.responder.stats;
      return [
        [{ action: 'slip' }, s?.rrlSlipped ?? 0],
        [{ action: 'drop' }, s?.rrlDropped ?? 0],
      ];
    },
  );
  mirroredCounter(
    registry,
    'fedgate_dns_tcp_closed_total',
    'DNS TCP connections the server closed: io_timeout, write_timeout, idle, evicted',
    ['reason'],
    () => [...(dns()?.tcpClosed ?? [])].map(([reason, n]) => [{ reason }, n]),
  );
  mirroredCounter(
    registry,
    'fedgate_dns_served_tier_total',
    'DNS answers with records by the scope of the plan tier they came from',
    ['tier'],
    () => Object.entries(dns()?.responder.stats.tiers ?? {}).map(([tier, n]) => [{ tier }, n]),
  );
}

/** Every DNS answer counted so far (fedgate_worker_requests_total's `dns`). */
export function dnsAnswers(dns: DnsCounts | undefined): number {
  let n = 0;
  for (const v of dns?.responder.stats.kinds.values() ?? []) n += v;
  return n;
}
