// Why a plan is what it is, in data and in words: which tier serves and with what
// share, why each other tier was skipped, spilled into or left unused, and every
// endpoint that takes no traffic (or takes it only because of panic) and why.
// The admin API and the CLI print this; it is built from the plan alone.
import type { PlanOptions } from './plan.ts';
import type { ClientLocality, Exclusion, ExclusionReason, Locality, Plan, Tier } from './types.ts';

export type TierVerdict = 'serves' | 'skipped' | 'unused';

export interface TierExplanation extends Omit<Tier, 'targets'> {
  readonly verdict: TierVerdict;
  readonly reason: string;
  /** Share of the service's traffic per cluster in this tier. */
  readonly clusters: Readonly<Record<string, number>>;
}

export interface ExclusionExplanation extends Exclusion {
  readonly reason: string;
}

export interface Explanation {
  readonly service: string;
  readonly client: ClientLocality & { readonly address?: string | undefined };
  readonly summary: string;
  readonly panic: boolean;
  readonly servingFallback: boolean;
  readonly healthyFraction: number;
  readonly normalizedHealth: number;
  readonly tiers: readonly TierExplanation[];
  readonly excluded: readonly ExclusionExplanation[];
}

const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;

export function describeLocality(l: Locality | undefined): string {
  if (!l || (l.region === undefined && l.zone === undefined)) return 'anywhere';
  return [l.region, l.zone, l.subzone].filter((x) => x !== undefined).join('/');
}

function tierName(t: Tier): string {
  const where =
    t.scope === 'other'
      ? `other regions${t.regions.length ? ` (${t.regions.join(', ')})` : ''}`
      : t.scope === 'all'
        ? 'all endpoints'
        : `${t.scope} ${describeLocality(t.locality)}`;
  return `P${t.priority} ${where}${t.stale ? ', stale clusters' : ''}`;
}

function tierReason(
  t: Tier,
  plan: Plan,
  opts: PlanOptions,
): { verdict: TierVerdict; reason: string } {
  const counted = `${t.eligible} of ${t.total} endpoints eligible`;
  const stale = t.stale
    ? '; its clusters are stale (API unreachable), so it ranks behind fresh ones'
    : '';
  const panic = t.panic
    ? `; in panic: ${pct(t.eligible / Math.max(1, t.total))} eligible is under the panic threshold ${pct(opts.panicThreshold)} while the service lacks capacity (normalized health ${pct(plan.normalizedHealth)}), so it balances over all ${t.total} endpoints regardless of health`
    : '';
  if (t.load > 0) {
    const spill =
      t.health < 1
        ? `; its health min(1, ${t.eligible}/${t.total} × ${opts.overprovisioning}) = ${pct(t.health)} keeps ${pct(t.load)} here and the rest goes on down the tiers`
        : '';
    return {
      verdict: 'serves',
      reason: `takes ${pct(t.load)} of the traffic: ${counted}${spill}${stale}${panic}`,
    };
  }
  const above = plan.tiers.slice(0, t.priority);
  const filled = above.reduce((s, x) => s + x.load, 0) >= 1 - 1e-9;
  if (t.total === 0)
    return { verdict: 'skipped', reason: `skipped: only terminating endpoints${stale}` };
  if (t.eligible === 0 && !t.panic)
    return { verdict: 'skipped', reason: `skipped: no eligible endpoint (${counted})${stale}` };
  if (filled)
    return {
      verdict: 'unused',
      reason: `unused: the tiers above take all the traffic (${counted})${stale}`,
    };
  return { verdict: 'skipped', reason: `skipped: ${counted}${stale}` };
}

const REASON_TEXT: Record<ExclusionReason, string> = {
  'not-ready': 'its EndpointSlice says not ready',
  terminating: 'it is terminating',
  ejected: 'ejected by outlier detection',
  'check-failing': 'failing its active health check',
};

function exclusionReason(e: Exclusion, now: number): string {
  const parts = e.reasons.map((r) => {
    if (r === 'ejected' && e.ejectedUntil !== undefined) {
      const left = Math.max(0, Math.ceil((e.ejectedUntil - now) / 1000));
      return `${REASON_TEXT[r]} until ${new Date(e.ejectedUntil).toISOString()} (${left} s from now)`;
    }
    if (r === 'check-failing' && e.detail) return `${REASON_TEXT[r]} (${e.detail})`;
    return REASON_TEXT[r];
  });
  return `${parts.join('; ')}${e.servedInPanic ? '; served anyway: its tier is in panic' : ''}`;
}

export function explain(
  plan: Plan,
  client: ClientLocality & { readonly address?: string | undefined },
  opts: PlanOptions,
  now: number,
): Explanation {
  const tiers = plan.tiers.map((t): TierExplanation => {
    const clusters: Record<string, number> = {};
    for (const x of t.targets) clusters[x.cluster] = (clusters[x.cluster] ?? 0) + x.share;
    const { targets: _, ...tier } = t;
    return { ...tier, clusters, ...tierReason(t, plan, opts) };
  });
  const serving = plan.tiers.filter((t) => t.load > 0);
  const from =
    `client ${client.address ?? ''} in ${describeLocality(client.locality)} (${client.source})`.replace(
      '  ',
      ' ',
    );
  const summary = plan.empty
    ? `${plan.service}: no endpoint can take traffic for ${from}`
    : `${plan.service} for ${from}: ${serving.map((t) => `${tierName(t)} ${pct(t.load)}`).join(', ')}${plan.panic ? ' (panic)' : ''}${plan.servingFallback ? ' (no endpoint ready: serving ones stand in)' : ''}`;
  return {
    service: plan.service,
    client,
    summary,
    panic: plan.panic,
    servingFallback: plan.servingFallback,
    healthyFraction: plan.healthyFraction,
    normalizedHealth: plan.normalizedHealth,
    tiers,
    excluded: plan.excluded.map((e) => ({ ...e, reason: exclusionReason(e, now) })),
  };
}
