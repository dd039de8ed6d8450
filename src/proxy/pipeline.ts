// HTTP/1.1 pipelining, one request at a time per connection, as nginx does. Node's
// server parses every pipelined request as soon as its bytes arrive and emits each
// at once (it only orders the responses), so without this one connection could
// hold as many upstream slots as requests it can fit into its packets. Here the
// next request of a connection starts only once the answer before it is finished;
// the requests behind wait, in order, up to MAX_PIPELINED. One more, and the
// connection ends: that request is answered 429 with Connection: close (after
// those before it, in order), and anything parsed after it is dropped unanswered,
// the client having been told the connection closes.
import type { ProxyResponse } from './answers.ts';

/**
 * Requests waiting behind the one in progress on one connection. Real pipelining
 * clients keep a few in flight; 128 leaves them room (and covers a burst of a
 * hundred) while bounding what one connection holds: each waiting request keeps
 * its parsed head (at most http.limits.maxHeaderSize) and two small objects.
 */
export const MAX_PIPELINED = 128;

/** What became of a request offered to its connection's lane. */
export type Admission = 'started' | 'queued' | 'over' | 'dropped';

interface Lane {
  busy: boolean;
  /** Requests waiting, in order: each starts its request, or drops it (`false`). */
  readonly waiting: Array<(go: boolean) => void>;
  /** The connection ends after the answers it owes: take nothing more. */
  ending: boolean;
}

type Pausable = { pause(): unknown; readonly destroyed: boolean };

export class Pipelines {
  readonly #lanes = new WeakMap<object, Lane>();

  /**
   * Offers a request of `socket`: `run(true)` starts it now or once the answers
   * before it are finished; `run(false)` when its connection closed first.
   * 'over': not taken, to be answered at once with Connection: close; 'dropped':
   * not taken and not to be answered (the connection ends after an earlier answer).
   */
  admit(socket: Pausable, res: ProxyResponse, run: (go: boolean) => void): Admission {
    let lane = this.#lanes.get(socket);
    if (!lane) {
      lane = { busy: false, waiting: [], ending: false };
      this.#lanes.set(socket, lane);
    }
    if (lane.ending) {
      // Stop parsing more: every request from here on would be dropped.
      socket.pause();
      return 'dropped';
    }
    const l = lane;
    const start = (go: boolean) => {
      if (go) res.once('close', () => this.#next(socket, l, res));
      run(go);
    };
    if (!lane.busy) {
      lane.busy = true;
      start(true);
      return 'started';
    }
    if (lane.waiting.length >= MAX_PIPELINED) {
      lane.ending = true;
      return 'over';
    }
    lane.waiting.push(start);
    return 'queued';
  }

  /**
   * The answer in progress is finished (or its connection closed): start the next,
   * unless that answer ended the connection (Connection: close: Node marks it
   * `_last` and closes after it), when the requests behind it are dropped.
   */
  #next(socket: Pausable, lane: Lane, finished: ProxyResponse): void {
    const run = lane.waiting.shift();
    if (!run) {
      lane.busy = false;
      return;
    }
    if (!socket.destroyed && !(finished as { _last?: boolean })._last) {
      run(true);
      return;
    }
    run(false);
    for (const r of lane.waiting.splice(0)) r(false);
    lane.busy = false;
  }
}
