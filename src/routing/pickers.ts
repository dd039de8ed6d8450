// Pickers: given a plan, the target for one request. Two steps, each by weight:
// the tier by its load, then the target inside it by its weight. Pure: the random
// source is injected, and what is derived from a plan (loaded tiers, alias tables,
// Maglev tables) is built on first use and cached by the plan's or tier's identity;
// plans are immutable, so a cache entry never goes stale, and it goes with the plan.
import { AliasTable } from './alias.ts';
import { MaglevTable } from './maglev.ts';
import { fmix32, hashString } from './random.ts';
import type { Plan, Target, Tier } from './types.ts';

export type PickerKind = 'p2c' | 'round-robin' | 'random' | 'maglev';
export const PICKER_KINDS: readonly PickerKind[] = ['p2c', 'round-robin', 'random', 'maglev'];

export interface PickContext {
  /** The request key's 32-bit hash (hashKey): maglev's input. Without it maglev picks at random. */
  readonly hash?: number | undefined;
  /** Requests in flight to a target, by id, for p2c; 0 for all when absent. */
  readonly outstanding?: ((id: string) => number) | undefined;
}

export interface PickerOptions {
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

export interface Picker {
  readonly kind: PickerKind;
  /** undefined when the plan is empty or no tier has both load and a weighted target. */
  pick(plan: Plan, ctx?: PickContext): Target | undefined;
}

const KEY_SEED = 0x66656467; // "fedg"
const TIER_SALT = 0x7469657a; // decorrelates the tier choice from the Maglev slot
const TWO_POW_32 = 4_294_967_296;

/** The hash of a request key (header value, cookie, client address) for PickContext.hash. */
export function hashKey(value: string): number {
  return hashString(value, KEY_SEED);
}

export function createPicker(kind: PickerKind, opts: PickerOptions): Picker {
  switch (kind) {
    case 'p2c':
      return new P2cPicker(opts.random);
    case 'random':
      return new RandomPicker(opts.random);
    case 'round-robin':
      return new RoundRobinPicker(opts.random);
    case 'maglev':
      return new MaglevPicker(opts.random);
  }
}

// ---------------------------------------------------------------- derived from plans

/** The tiers a pick may land in, with what each pick needs filled in lazily. */
interface PlanView {
  readonly tiers: readonly Tier[];
  /** Running sum of their loads: tier i covers [cumulative[i-1], cumulative[i]). */
  readonly cumulative: Float64Array;
  readonly loads: Float64Array;
  readonly total: number;
  readonly alias: (AliasTable | undefined)[];
  readonly maglev: (MaglevTable | undefined)[];
}

const views = new WeakMap<Plan, PlanView | null>();
const aliasTables = new WeakMap<Tier, AliasTable>();
const maglevTables = new WeakMap<Tier, MaglevTable>();

function viewOf(plan: Plan): PlanView | undefined {
  let view = views.get(plan);
  if (view === undefined) {
    view = buildView(plan);
    views.set(plan, view);
  }
  return view ?? undefined;
}

function buildView(plan: Plan): PlanView | null {
  if (plan.empty) return null;
  // Load 0, no targets or only weightless ones: never picked.
  const tiers = plan.tiers.filter((t) => t.load > 0 && t.targets.some((x) => x.weight > 0));
  if (tiers.length === 0) return null;
  const loads = Float64Array.from(tiers, (t) => t.load);
  const cumulative = new Float64Array(tiers.length);
  let total = 0;
  for (let i = 0; i < tiers.length; i++) {
    total += loads[i]!;
    cumulative[i] = total;
  }
  const none = () => tiers.map(() => undefined);
  return { tiers, cumulative, loads, total, alias: none(), maglev: none() };
}

function aliasOf(view: PlanView, i: number): AliasTable {
  let table = view.alias[i];
  if (table === undefined) {
    const tier = view.tiers[i]!;
    table = aliasTables.get(tier);
    if (table === undefined) {
      table = new AliasTable(tier.targets.map((t) => t.weight));
      aliasTables.set(tier, table);
    }
    view.alias[i] = table;
  }
  return table;
}

function maglevOf(view: PlanView, i: number): MaglevTable {
  let table = view.maglev[i];
  if (table === undefined) {
    const tier = view.tiers[i]!;
    table = maglevTables.get(tier);
    if (table === undefined) {
      table = maglevByContent(tier);
      maglevTables.set(tier, table);
    }
    view.maglev[i] = table;
  }
  return table;
}

/**
 * Maglev tables by what they are built from (target ids and weights). A health change
 * rebuilds the plan, and with it every tier object, but most tiers keep the same
 * targets: they get their table back instead of paying milliseconds for a new one.
 * Bounded, oldest first out.
 */
const MAGLEV_BY_CONTENT_MAX = 256;
const maglevByContentCache = new Map<string, MaglevTable>();

function maglevByContent(tier: Tier): MaglevTable {
  const key = tier.targets.map((t) => `${t.id}*${t.weight}`).join(' ');
  let table = maglevByContentCache.get(key);
  if (table === undefined) {
    table = new MaglevTable(tier.targets);
    if (maglevByContentCache.size >= MAGLEV_BY_CONTENT_MAX) {
      maglevByContentCache.delete(maglevByContentCache.keys().next().value!);
    }
  } else {
    maglevByContentCache.delete(key);
  }
  maglevByContentCache.set(key, table);
  return table;
}

/** A tier drawn by load; no draw when there is one. */
function drawTier(view: PlanView, random: () => number): number {
  return view.tiers.length === 1 ? 0 : tierAt(view, random());
}

/** A tier by load, then a target in it by weight. */
function weightedPick(view: PlanView, random: () => number): Target | undefined {
  const t = drawTier(view, random);
  return view.tiers[t]!.targets[aliasOf(view, t).sample(random())];
}

/** The tier whose share of the loads holds u ∈ [0, 1). A linear scan: tiers are few. */
function tierAt(view: PlanView, u: number): number {
  const last = view.tiers.length - 1;
  if (last === 0) return 0;
  const x = u * view.total;
  const cumulative = view.cumulative;
  for (let i = 0; i < last; i++) if (x < cumulative[i]!) return i;
  return last;
}

/** Remembers the last plan's view (and holds that plan): a picker mostly sees one plan many times in a row. */
abstract class PlanPicker implements Picker {
  abstract readonly kind: PickerKind;
  protected readonly random: () => number;
  #lastPlan: Plan | undefined;
  #lastView: PlanView | undefined;

  constructor(random: () => number) {
    this.random = random;
  }

  abstract pick(plan: Plan, ctx?: PickContext): Target | undefined;

  protected view(plan: Plan): PlanView | undefined {
    if (plan !== this.#lastPlan) {
      this.#lastPlan = plan;
      this.#lastView = viewOf(plan);
    }
    return this.#lastView;
  }
}

// ---------------------------------------------------------------- the pickers

class RandomPicker extends PlanPicker {
  readonly kind: PickerKind = 'random';

  pick(plan: Plan): Target | undefined {
    const view = this.view(plan);
    return view === undefined ? undefined : weightedPick(view, this.random);
  }
}

/**
 * Power of two choices: two independent weighted draws, the one with fewer requests
 * in flight wins (the first on a tie). Constant cost whatever the tier's size, and
 * with equal load it picks exactly by weight. Without `outstanding` there is
 * nothing to compare, so it draws once.
 */
class P2cPicker extends PlanPicker {
  readonly kind: PickerKind = 'p2c';

  pick(plan: Plan, ctx?: PickContext): Target | undefined {
    const view = this.view(plan);
    if (view === undefined) return undefined;
    const t = drawTier(view, this.random);
    const targets = view.tiers[t]!.targets;
    const table = aliasOf(view, t);
    const first = targets[table.sample(this.random())]!;
    const outstanding = ctx?.outstanding;
    if (outstanding === undefined || table.size === 1) return first;
    const second = targets[table.sample(this.random())]!;
    return outstanding(second.id) < outstanding(first.id) ? second : first;
  }
}

/**
 * Maglev on ctx.hash: the same key lands on the same target while the plan keeps
 * it. The tier comes from the hash mixed with a salt, the slot from the hash
 * itself, so the two are independent. No hash: a weighted random pick.
 */
class MaglevPicker extends PlanPicker {
  readonly kind: PickerKind = 'maglev';

  pick(plan: Plan, ctx?: PickContext): Target | undefined {
    const view = this.view(plan);
    if (view === undefined) return undefined;
    const hash = ctx?.hash;
    if (hash === undefined) return weightedPick(view, this.random);
    const t = tierAt(view, fmix32(hash ^ TIER_SALT) / TWO_POW_32);
    return view.tiers[t]!.targets[maglevOf(view, t).lookup(hash)];
  }
}

/**
 * Smooth weighted round robin (nginx) across tiers by load, then, inside the tier,
 * across groups of targets of equal weight (a tier's targets take their cluster's
 * weight, so groups are few), each group cycled in order. Equal weights: one group,
 * the exact cycle A, B, C, A, … Cost per pick: O(tiers + distinct weights).
 * State lives here, by plan and by tier object, so a new plan starts afresh.
 */
class RoundRobinPicker extends PlanPicker {
  readonly kind: PickerKind = 'round-robin';
  readonly #tierCurrent = new WeakMap<Plan, Float64Array>();
  readonly #cycles = new WeakMap<Tier, TierCycle>();

  pick(plan: Plan): Target | undefined {
    const view = this.view(plan);
    if (view === undefined) return undefined;
    let t = 0;
    if (view.tiers.length > 1) {
      let current = this.#tierCurrent.get(plan);
      if (current === undefined) {
        current = new Float64Array(view.tiers.length);
        this.#tierCurrent.set(plan, current);
      }
      t = smoothPick(current, view.loads, view.total);
    }
    const tier = view.tiers[t]!;
    let cycle = this.#cycles.get(tier);
    if (cycle === undefined) {
      cycle = tierCycle(tier);
      this.#cycles.set(tier, cycle);
    }
    const g = cycle.groups.length === 1 ? 0 : smoothPick(cycle.current, cycle.weights, cycle.total);
    const members = cycle.groups[g]!;
    const i = cycle.cursor[g]!;
    cycle.cursor[g] = i + 1 === members.length ? 0 : i + 1;
    return tier.targets[members[i]!];
  }
}

interface TierCycle {
  /** Target indices by weight, in the tier's order; weightless targets left out. */
  readonly groups: Int32Array[];
  /** Each group's weight × size. */
  readonly weights: Float64Array;
  readonly total: number;
  readonly current: Float64Array;
  readonly cursor: Int32Array;
}

function tierCycle(tier: Tier): TierCycle {
  const byWeight = new Map<number, number[]>();
  tier.targets.forEach((target, i) => {
    if (target.weight <= 0) return;
    const group = byWeight.get(target.weight);
    if (group) group.push(i);
    else byWeight.set(target.weight, [i]);
  });
  const groups = [...byWeight.values()].map((g) => Int32Array.from(g));
  const weights = Float64Array.from(byWeight, ([w, g]) => w * g.length);
  const total = weights.reduce((a, b) => a + b, 0);
  const n = groups.length;
  return { groups, weights, total, current: new Float64Array(n), cursor: new Int32Array(n) };
}

/** nginx's smooth weighted round robin: every pick each gains its weight, the richest pays the total. */
function smoothPick(current: Float64Array, weights: Float64Array, total: number): number {
  let best = 0;
  for (let i = 0; i < current.length; i++) {
    current[i] = current[i]! + weights[i]!;
    if (current[i]! > current[best]!) best = i;
  }
  current[best] = current[best]! - total;
  return best;
}
