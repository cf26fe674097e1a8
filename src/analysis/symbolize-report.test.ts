import { describe, expect, it } from 'vitest';
import { nthLargest } from './symbolize-report.js';

describe('nthLargest, the cut-off of the rows a table shows', () => {
  it('is the k-th value of the descending sort, ties and all', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (const [len, range] of [[1, 5], [10, 3], [1000, 10], [5000, 1_000_000]]) {
      const values = Float64Array.from({ length: len }, () => rand(range));
      const desc = [...values].sort((a, b) => b - a);
      for (const k of [1, 2, Math.ceil(len / 2), len].filter((k) => k <= len)) expect(nthLargest(values, k)).toBe(desc[k - 1]);
    }
  });

  it('holds counts beyond 2^32 exactly', () => {
    expect(nthLargest([2 ** 40, 3, 2 ** 40 + 1, 7], 2)).toBe(2 ** 40);
  });
});
