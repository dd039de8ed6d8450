// Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted as Envoy does:
// every host walks its own permutation of the table's slots and, in turns, claims
// the next free one; a host takes a turn only while its claims stay within its
// weight relative to the heaviest host. A lookup is one array read. Removing one
// of N hosts moves its keys plus a small fraction of the others (a little more
// than 1/N of all keys), unlike modulo hashing, which moves almost all.
import { MAGLEV_TABLE_SIZE } from '../config/defaults.ts';
import { hashString } from './random.ts';

// Fixed seeds: tables must agree across processes and restarts.
const OFFSET_SEED = 0x6d61676c; // "magl"
const SKIP_SEED = 0x65762121; // "ev!!"

export interface MaglevHost {
  readonly id: string;
  readonly weight: number;
}

export class MaglevTable {
  /** Table size: a prime, so every skip walks every slot. */
  readonly size: number;
  /** Slot → index of the host in the list given; all -1 when no host has weight. */
  readonly slots: Int32Array;

  /**
   * Builds the table: O(M log M) for equal weights (M = table size). The slots each
   * host gets depend only on the set of ids and their weights, never on the order
   * of the list: hosts take turns in id order. Hosts of weight 0 get no slot; with
   * more hosts than slots, some get none.
   */
  constructor(hosts: readonly MaglevHost[], size: number = MAGLEV_TABLE_SIZE) {
    this.size = size;
    const slots = new Int32Array(size).fill(-1);
    this.slots = slots;

    const order: number[] = [];
    let maxWeight = 0;
    for (let i = 0; i < hosts.length; i++) {
      const w = hosts[i]!.weight;
      if (!(w >= 0) || w === Number.POSITIVE_INFINITY) {
        throw new RangeError(`maglev: host ${hosts[i]!.id} has weight ${w}`);
      }
      if (w === 0) continue;
      order.push(i);
      if (w > maxWeight) maxWeight = w;
    }
    if (order.length === 0) return;
    order.sort((a, b) => compareIds(hosts[a]!.id, hosts[b]!.id) || a - b);

    const n = order.length;
    const normalized = new Float64Array(n);
    const target = new Float64Array(n); // slots claimed so far (as weight units)
    const position = new Float64Array(n); // next slot of the host's permutation
    const skip = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const host = hosts[order[j]!]!;
      normalized[j] = host.weight / maxWeight;
      position[j] = hashString(host.id, OFFSET_SEED) % size;
      skip[j] = (hashString(host.id, SKIP_SEED) % (size - 1)) + 1;
    }

    let filled = 0;
    for (let turn = 1; filled < size; turn++) {
      for (let j = 0; j < n && filled < size; j++) {
        // A lighter host sits out turns until its share catches up.
        if (turn * normalized[j]! < target[j]!) continue;
        target[j] = target[j]! + 1;
        let c = position[j]!;
        while (slots[c]! >= 0) {
          c += skip[j]!;
          if (c >= size) c -= size;
        }
        slots[c] = order[j]!;
        c += skip[j]!;
        position[j] = c >= size ? c - size : c;
        filled++;
      }
    }
  }

  /** The host (index into the list given) for a 32-bit key hash; -1 if none has weight. */
  lookup(hash: number): number {
    return this.slots[(hash >>> 0) % this.size]!;
  }
}

/** Code-unit order, independent of locale, so every process sorts ids alike. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
