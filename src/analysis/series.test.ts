import { describe, expect, it } from 'vitest';
import { baseKey } from './aggregate.js';
import { CountSeries, MAX_POINTS } from './series.js';
import type { CountRecord } from '../model/decode.js';

const rec = (location: number, packets: number): CountRecord => ({ location: BigInt(location), reason: 2, ifindex: 1, netns: 7, packets, bytes: packets * 100 });
const key = (location: number) => baseKey(BigInt(location), 2, 1, 7);

describe('CountSeries', () => {
  it('rates per interval from cumulative snapshots, drawn rows apart from the rest', () => {
    const s = new CountSeries();
    s.before([rec(1, 5)]);
    s.add(2000, [rec(1, 15), rec(2, 4)]);
    s.add(4000, [rec(1, 15), rec(2, 10), rec(3, 2)]);
    const rows = new Map([[key(1), 'a'], [key(2), 'b'], [key(3), null]]);
    const out = s.lines(0, ['a'], rows);
    expect(out.times).toEqual([2000, 4000]);
    // the baseline before the window is not drawn: 15 - 5 over the first 2 s
    expect(out.lines[0]).toEqual({ key: 'a', rates: [5, 0], total: 10 });
    expect(out.lines[1]).toEqual({ key: null, rates: [2, 4], total: 12 });
  });

  it('a key missing from a snapshot keeps its count; a snapshot at the same time moves on to the next interval', () => {
    const s = new CountSeries();
    s.add(1000, [rec(1, 3)]);
    s.add(1000, [rec(1, 4)]);
    s.add(2000, []);
    s.add(3000, [rec(1, 6)]);
    const out = s.lines(0, ['a'], new Map([[key(1), 'a']]));
    expect(out.times).toEqual([1000, 2000, 3000]);
    expect(out.lines[0].rates).toEqual([3, 1, 2]);
    expect(out.lines[0].total).toBe(6);
  });

  it('thinning keeps the total and at most twice MAX_POINTS samples', () => {
    const s = new CountSeries();
    for (let i = 1; i <= 10 * MAX_POINTS + 3; i++) s.add(i * 1000, [rec(1, i * 2)]);
    const out = s.lines(0, ['a'], new Map([[key(1), 'a']]));
    expect(out.times.length).toBeLessThanOrEqual(2 * MAX_POINTS);
    expect(out.lines[0].total).toBe((10 * MAX_POINTS + 3) * 2);
    expect(out.times.at(-1)).toBe((10 * MAX_POINTS + 3) * 1000);
    for (const r of out.lines[0].rates) expect(r).toBeCloseTo(2);
  });
});
