import { describe, expect, it } from 'vitest';
import type { GroupRow } from '../analysis/snapshot.js';
import { fitSite, fitTail, layoutColumns } from './columns.js';

const row = (over: Partial<GroupRow>): GroupRow => ({
  key: 'nft_do_chain+0x3e8',
  total: 1234,
  bytes: 0,
  rate1: 0,
  rate10: 0,
  rateAvg: 12.5,
  history: new Array(60).fill(0),
  firstSeen: 0,
  lastSeen: 0,
  exact: true,
  module: null,
  locations: [{ key: 'nft_do_chain+0x3e8', count: 1 }],
  reasons: [{ key: 'NETFILTER_DROP', count: 1 }],
  interfaces: [{ key: 'cni0', count: 1 }],
  netns: [{ key: '4026532177 (dtlab-hostA)', count: 1 }],
  flows: [],
  sockets: [],
  flow: null,
  benign: null,
  syn: 0,
  unicast: 0,
  topUnicast: null,
  ...over,
});

describe('the live table', () => {
  it.each([
    ['dtlab-hostA', 8, '…b-hostA'],
    ['kube-system/coredns-5d78c9869d-x7k2p', 12, '…9869d-x7k2p'],
    ['cni0', 8, 'cni0    '],
  ])('fitTail(%s, %i) keeps the end that tells names apart', (s, w, want) => {
    expect(fitTail(s, w)).toBe(want);
  });

  it('fitSite keeps the offset and the module', () => {
    expect(fitSite('a_rather_long_function_name_indeed+0x3e8', 24)).toBe('a_rather_long_fun…+0x3e8');
    expect(fitSite('nft_do_chain_ipv4+0x10 [nf_tables]', 26)).toBe('nft_do_c…+0x10 [nf_tables]');
    expect(fitSite('short+0x1', 12)).toBe('short+0x1   ');
  });

  it.each([80, 100, 120, 160])('at %i columns every line fits, and every column is there and readable', (width) => {
    const rows = [
      row({}),
      row({ key: '__udp4_lib_rcv+0x4bc', reasons: [{ key: 'NO_SOCKET', count: 1 }], interfaces: [{ key: 'veth9c2e1f3a', count: 1 }], netns: [{ key: '4026532400', count: 1 }] }),
      row({ key: 'ip6_mc_input+0x15e', netns: [{ key: '4026532500 (cni-1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8)', count: 1 }] }),
    ];
    const names = (label: string) => (label.startsWith('4026532400') ? 'default/web-0' : (/\((.+)\)$/.exec(label)?.[1] ?? label));
    const { header, row: line } = layoutColumns(width, 'location', rows, names);
    expect(header).toMatch(/^\s*COUNT\s+\/s 10s\s+TREND\s+LOCATION\s+REASON\s+IFACE\s+NETNS\s*$/);
    for (const r of rows) {
      const text = line(r);
      expect(text.length).toBeLessThanOrEqual(width);
      expect(text).toContain(r.key); // the drop site whole
      expect(text).toContain('12.5');
    }
    expect(line(rows[0])).toMatch(/NETFILTER_DROP cni0\s+dtlab-hostA\s*$/);
    expect(line(rows[1])).toMatch(width >= 120 ? /NO_SOCKET\s+veth9c2e1f3a default\/web-0\s*$/ : /NO_SOCKET\s+…?[0-9a-z]*1f3a default\/web-0\s*$/);
    // a long name keeps its end at 80 columns, and is whole when there is room
    if (width >= 120) expect(line(rows[2])).toContain('cni-1f2e3d4c-5b6a-7980');
    else expect(line(rows[2])).toMatch(/…[0-9a-f-]+b8\s*$/);
  });
});
