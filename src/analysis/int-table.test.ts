import { describe, expect, it } from 'vitest';
import { IntTable } from './int-table.js';

describe('IntTable', () => {
  it('keeps keys that differ in any one of the three apart, through every growth', () => {
    const t = new IntTable();
    const n = 100_000;
    for (let i = 0; i < n; i++) t.add(i * 7, -1, i % 3, i);
    for (let i = 0; i < n; i++) t.add(i * 7, -2, i % 3, n + i);
    for (const i of [0, 1, 2, 4095, 4096, n - 1]) {
      expect(t.get(i * 7, -1, i % 3)).toBe(i);
      expect(t.get(i * 7, -2, i % 3)).toBe(n + i);
      expect(t.get(i * 7, -1, (i + 1) % 3)).toBe(-1);
    }
    expect(t.get(1, 2, 3)).toBe(-1);
  });
});
