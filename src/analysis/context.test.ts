import { describe, expect, it } from 'vitest';
import { rowContext } from './context.js';

describe('rowContext', () => {
  it('reads reason, function, interface, namespace and the flow fields of a table row (never its key text)', () => {
    const row = {
      key: 'nft_do_chain+0x3e8',
      total: 3, bytes: 180, rate1: 0, rate10: 0, history: [], firstSeen: 0, lastSeen: 0, rateAvg: 0, exact: true, module: null, benign: null, syn: 0, unicast: 0, topUnicast: null,
      locations: [{ key: 'nft_do_chain+0x3e8', count: 3 }],
      reasons: [{ key: 'NETFILTER_DROP', count: 3 }],
      interfaces: [{ key: 'cni0', count: 3 }],
      netns: [{ key: '4026532177 (dtlab-hostA)', count: 3 }],
      flows: [{ key: 'TCP 10.244.1.2 > 10.244.1.1:2483', count: 3 }],
      sockets: [],
      flow: { ipver: 4 as const, l4: 'TCP', saddr: '10.244.1.2', daddr: '10.244.1.1', dport: 2483 },
    };
    expect(rowContext(row, 'location')).toEqual({
      reason: 'NETFILTER_DROP', function: 'nft_do_chain', ifname: 'cni0', nsPrefix: 'ip netns exec dtlab-hostA ',
      l4: 'TCP', saddr: '10.244.1.2', daddr: '10.244.1.1', dport: 2483,
    });
  });

  it('an IPv6 flow: the address is taken whole (ff02::16 has no port 16)', () => {
    const row = {
      key: 'x', total: 1, bytes: 0, rate1: 0, rate10: 0, history: [], firstSeen: 0, lastSeen: 0, rateAvg: 0, exact: true, module: null, benign: null, syn: 0, unicast: 0, topUnicast: null,
      locations: [], reasons: [], interfaces: [], netns: [], flows: [{ key: 'ICMPv6 fe80::1 > ff02::16', count: 1 }], sockets: [],
      flow: { ipver: 4 as const, l4: 'ICMPv6', saddr: 'fe80::1', daddr: 'ff02::16', dport: null },
    };
    expect(rowContext(row, 'location')).toMatchObject({ daddr: 'ff02::16', dport: null });
  });
});
