// Connections per client, capped: one client (its netblock, as clientShare groups
// them) may not hold more than http.limits.maxConnectionsPerClient open connections
// to this process, like nginx's limit_conn. Without it one host can open
// connections until the process runs out of descriptors, and every other client
// with it. A connection past the cap is closed as it is accepted, before TLS or
// any byte is read, and counted.
import type { Socket } from 'node:net';
import { Netblocks } from '../netblock.ts';

export interface ClientConnectionSettings {
  /** Most open connections one client may hold; 0: no cap. */
  readonly max: number;
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
}

export class ClientConnections {
  #settings: ClientConnectionSettings;
  #netblocks: Netblocks;
  /** Open connections by client key; a key leaves at its last close. */
  readonly #open = new Map<string, number>();

  constructor(settings: ClientConnectionSettings) {
    this.#settings = settings;
    this.#netblocks = new Netblocks(settings.ipv4Prefix, settings.ipv6Prefix);
  }

  /** A reload: connections already open keep the key they were counted under. */
  reconfigure(settings: ClientConnectionSettings): void {
    this.#settings = settings;
    this.#netblocks = new Netblocks(settings.ipv4Prefix, settings.ipv6Prefix);
  }

  /**
   * Counts `socket` against its client until it closes; false (nothing counted)
   * when the client already holds its cap: the caller closes it.
   */
  admit(socket: Socket): boolean {
    const max = this.#settings.max;
    if (max <= 0) return true;
    const key = this.#netblocks.key(socket.remoteAddress ?? '');
    const n = this.#open.get(key) ?? 0;
    if (n >= max) return false;
    this.#open.set(key, n + 1);
    socket.once('close', () => {
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left > 0) this.#open.set(key, left);
      else this.#open.delete(key);
    });
    return true;
  }

  /** Open connections `address`'s client holds now. */
  held(address: string): number {
    return this.#open.get(this.#netblocks.key(address)) ?? 0;
  }
}
