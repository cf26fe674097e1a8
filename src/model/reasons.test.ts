import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadReasons, parseTracefsFormat, ReasonTable } from './reasons.js';

const format = readFileSync(new URL('../../test/fixtures/kfree_skb-format-6.18.txt', import.meta.url), 'utf8');

describe('reason names', () => {
  it('parses the real 6.18 tracefs format file', () => {
    const pairs = parseTracefsFormat(format);
    expect(pairs.length).toBeGreaterThan(100);
    expect(pairs).toContainEqual([3, 'NO_SOCKET']);
    expect(pairs).toContainEqual([12, 'NETFILTER_DROP']);
  });

  it('falls back to tracefs when BTF gave nothing, and to numbers when nothing names them', () => {
    const fixture = new URL('../../test/fixtures/kfree_skb-format-6.18.txt', import.meta.url).pathname;
    const t = loadReasons(null, ['/nonexistent', fixture]);
    expect(t.source).toBe('tracefs');
    expect(t.name(16)).toBe('IP_RPFILTER');
    const none = loadReasons(null, ['/nonexistent']);
    expect(none.source).toBe('none');
    expect(none.name(16)).toBe('16');
  });

  const t = new ReasonTable(parseTracefsFormat(format), 'btf');
  it.each([
    ['NETFILTER_DROP', 12],
    ['netfilter_drop', 12],
    ['SKB_DROP_REASON_NO_SOCKET', 3],
    ['7', 7],
    ['NO_SUCH_THING', undefined],
  ])('code(%s) = %s', (name, code) => {
    expect(t.code(name)).toBe(code);
  });

  it('shows an unknown code as its number, never as a wrong name', () => {
    expect(t.name(250)).toBe('250');
    // a subsystem code of a kernel whose table has no subsystem names: its subsystem by number
    expect(t.name(65536 + 3)).toBe('SUBSYS1:3');
  });

  it('suggests close names', () => {
    expect(t.suggest('NETFILTER')).toContain('NETFILTER_DROP');
    // a typo: by edit distance, nearest first
    expect(t.suggest('NO_SOKET')[0]).toBe('NO_SOCKET');
    expect(t.suggest('netfilter_drpo')[0]).toBe('NETFILTER_DROP');
    expect(t.suggest('SOMETHING_ELSE_ENTIRELY')).toEqual([]);
  });
});

describe('subsystem reasons (codes with a subsystem in the high 16 bits)', () => {
  // OVS's own enum as a kernel with openvswitch built in names it; mac80211 is not loaded
  const table = new ReasonTable(
    [[2, 'NOT_SPECIFIED'], [0x20001, 'OVS_DROP_LAST_ACTION'], [0x20002, 'OVS_DROP_ACTION_ERROR']],
    'btf',
    [[1, 'MAC80211_UNUSABLE'], [2, 'OPENVSWITCH']],
  );

  it('named ones by their name, unknown ones as SUBSYS:code, never as another reason', () => {
    expect(table.name(0x20001)).toBe('OVS_DROP_LAST_ACTION');
    expect(table.name(0x20009)).toBe('OPENVSWITCH:9');
    expect(table.name(0x10003)).toBe('MAC80211_UNUSABLE:3');
    expect(table.name(0x70003)).toBe('SUBSYS7:3');
    expect(table.name(3)).toBe('3');
  });

  it('filterable by name, or by SUBSYS:code as the unknown ones print', () => {
    expect(table.code('OVS_DROP_ACTION_ERROR')).toBe(0x20002);
    expect(table.code('openvswitch:9')).toBe(0x20009);
    expect(table.code('SUBSYS7:3')).toBe(0x70003);
    expect(table.code('NOSUCH:3')).toBeUndefined();
    expect(table.code(table.name(0x10003))).toBe(0x10003);
  });
});
