import { describe, expect, it } from 'vitest';
import { InterfaceNames, MAX_NAMESPACES } from './interfaces.js';

describe('interface names', () => {
  it('learns from events, asks a namespace only for what nobody carried, and again on a miss', () => {
    const asked: number[] = [];
    const names = new InterfaceNames((ns) => (asked.push(ns), ns === 1 ? new Map([[2, 'eth0'], [3, 'cni0']]) : null));
    names.learn(1, 5, 'veth1');
    expect(names.name(1, 5)).toBe('veth1');
    expect(asked).toEqual([]);
    expect(names.name(1, 3)).toBe('cni0');
    expect(names.name(1, 2)).toBe('eth0');
    expect(asked).toEqual([1]);
    expect(names.name(1, 9)).toBeNull();
    expect(asked).toEqual([1, 1]);
    // a namespace that cannot be asked keeps what was learned
    names.learn(7, 4, 'lo');
    expect(names.name(7, 8)).toBeNull();
    expect(names.known(7, 4)).toBe('lo');
    names.forget(1);
    expect(names.known(1, 5)).toBeNull();
    expect(names.name(1, 0)).toBeNull();
  });

  it('starts over past its namespace bound instead of growing for weeks', () => {
    const names = new InterfaceNames();
    for (let ns = 0; ns <= MAX_NAMESPACES; ns++) names.learn(ns, 1, `if${ns}`);
    expect(names.known(0, 1)).toBeNull();
    expect(names.known(MAX_NAMESPACES, 1)).toBe(`if${MAX_NAMESPACES}`);
  });
});
