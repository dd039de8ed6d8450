// Weighted sampling in O(1): Walker's alias method, built with Vose's stable O(n)
// algorithm. Each slot holds one item with probability `prob`, else its alias;
// one uniform number picks the slot and, from its fractional part, the side.
// Only items of positive weight get a slot, so a zero weight is never sampled,
// not even through floating-point leftovers.

export class AliasTable {
  /** Items that can be sampled: those of positive weight. */
  readonly size: number;
  /** All weights equal and positive: sampling is a plain index, no table. */
  readonly uniform: boolean;
  readonly #prob: Float64Array;
  /** Slot → item index (the slot's own item). */
  readonly #item: Int32Array;
  /** Slot → item index taken when the draw falls past `prob`. */
  readonly #alias: Int32Array;

  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    let total = 0;
    let positive = 0;
    let first = -1;
    let equal = true;
    for (let i = 0; i < n; i++) {
      const w = weights[i]!;
      if (!(w >= 0) || w === Number.POSITIVE_INFINITY) {
        throw new RangeError(`alias table: weight ${i} is ${w}; weights must be finite and >= 0`);
      }
      if (w === 0) {
        equal = false;
        continue;
      }
      if (first < 0) first = i;
      else if (w !== weights[first]) equal = false;
      total += w;
      positive++;
    }
    this.size = positive;
    this.uniform = equal && positive > 0;
    if (this.uniform || positive === 0) {
      this.#prob = new Float64Array(0);
      this.#item = new Int32Array(0);
      this.#alias = new Int32Array(0);
      return;
    }

    const prob = new Float64Array(positive);
    const item = new Int32Array(positive);
    const alias = new Int32Array(positive);
    // Scaled so the mean is 1: a slot below 1 is topped up from one above 1.
    const scaled = new Float64Array(positive);
    const small = new Int32Array(positive);
    const large = new Int32Array(positive);
    let ns = 0;
    let nl = 0;
    for (let i = 0, k = 0; i < n; i++) {
      const w = weights[i]!;
      if (w === 0) continue;
      item[k] = i;
      scaled[k] = (w * positive) / total;
      if (scaled[k]! < 1) small[ns++] = k;
      else large[nl++] = k;
      k++;
    }
    while (ns > 0 && nl > 0) {
      const s = small[--ns]!;
      const l = large[--nl]!;
      prob[s] = scaled[s]!;
      alias[s] = item[l]!;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      if (scaled[l]! < 1) small[ns++] = l;
      else large[nl++] = l;
    }
    // What is left is 1 up to rounding: keep its own item always.
    while (nl > 0) {
      const l = large[--nl]!;
      prob[l] = 1;
      alias[l] = item[l]!;
    }
    while (ns > 0) {
      const s = small[--ns]!;
      prob[s] = 1;
      alias[s] = item[s]!;
    }
    this.#prob = prob;
    this.#item = item;
    this.#alias = alias;
  }

  /**
   * The index (into the weights given) of an item drawn by weight, from one
   * uniform u in [0, 1); -1 when no weight is positive. The slot comes from the
   * integer part of u × size, the side from the fraction: with a 32-bit source
   * that leaves 32 − log2(size) bits for the side, plenty below millions of items.
   */
  sample(u: number): number {
    const n = this.size;
    if (this.uniform) return Math.floor(u * n);
    if (n === 0) return -1;
    const x = u * n;
    const slot = Math.floor(x);
    return x - slot < this.#prob[slot]! ? this.#item[slot]! : this.#alias[slot]!;
  }

  /** As sample, with the slot and the side drawn from two independent uniforms. */
  sample2(uSlot: number, uSide: number): number {
    const n = this.size;
    if (this.uniform) return Math.floor(uSlot * n);
    if (n === 0) return -1;
    const slot = Math.floor(uSlot * n);
    return uSide < this.#prob[slot]! ? this.#item[slot]! : this.#alias[slot]!;
  }
}
