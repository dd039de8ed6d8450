import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { ProxyResponse } from './answers.ts';
import { MAX_PIPELINED, Pipelines } from './pipeline.ts';

/** A connection and its responses, as much of them as the lane reads. */
function connection() {
  const socket = { destroyed: false, paused: 0, pause: () => socket.paused++ };
  const res = () => Object.assign(new EventEmitter(), { _last: false });
  return { socket, res };
}
const asRes = (r: EventEmitter) => r as unknown as ProxyResponse;

describe('Pipelines', () => {
  it('starts the requests of one connection one at a time, in order', () => {
    const p = new Pipelines();
    const { socket, res } = connection();
    const started: number[] = [];
    const rs = [res(), res(), res()];
    expect(rs.map((r, i) => p.admit(socket, asRes(r), () => started.push(i)))).toEqual([
      'started',
      'queued',
      'queued',
    ]);
    expect(started).toEqual([0]);
    rs[0]!.emit('close');
    expect(started).toEqual([0, 1]);
    rs[1]!.emit('close');
    rs[2]!.emit('close');
    expect(started).toEqual([0, 1, 2]);
    // The lane is free again: the next request starts at once.
    expect(p.admit(socket, asRes(res()), () => started.push(3))).toBe('started');
  });

  it(`takes ${MAX_PIPELINED} waiting, refuses the next and drops what follows, pausing the connection`, () => {
    const p = new Pipelines();
    const { socket, res } = connection();
    const first = res();
    p.admit(socket, asRes(first), () => {});
    for (let i = 0; i < MAX_PIPELINED; i++)
      expect(p.admit(socket, asRes(res()), () => {})).toBe('queued');
    expect(p.admit(socket, asRes(res()), () => {})).toBe('over');
    expect(p.admit(socket, asRes(res()), () => {})).toBe('dropped');
    expect(socket.paused).toBe(1);
  });

  it('drops the waiting requests when an answer ends the connection, or it closed', () => {
    const p = new Pipelines();
    const { socket, res } = connection();
    const seen: boolean[] = [];
    const first = res();
    p.admit(socket, asRes(first), (go) => seen.push(go));
    p.admit(socket, asRes(res()), (go) => seen.push(go));
    p.admit(socket, asRes(res()), (go) => seen.push(go));
    first._last = true;
    first.emit('close');
    expect(seen).toEqual([true, false, false]);

    const other = connection();
    const got: boolean[] = [];
    const a = other.res();
    p.admit(other.socket, asRes(a), (go) => got.push(go));
    p.admit(other.socket, asRes(other.res()), (go) => got.push(go));
    other.socket.destroyed = true;
    a.emit('close');
    expect(got).toEqual([true, false]);
  });
});
