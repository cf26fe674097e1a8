import { describe, expect, it } from 'vitest';
import { rowContext } from './context.js';

describe('rowContext', () => {
  it('reads reason, function, interface, namespace and flow from a table row', () => {
    const row = {
      key: 'nft_do_chain+0x3e8',
      total: 3, bytes: 180, rate1: 0, rate10: 0, history: [], firstSeen: 0, lastSeen: 0, rateAvg: 0, exact: true, module: null, benign: null, syn: 0, unicast: 0, topUnicast: null,
      locations: [{ key: 'nft_do_chain+0x3e8', count: 3 }],
      reasons: [{ key: 'NETFILTER_DROP', count: 3 }],
      interfaces: [{ key: 'cni0', count: 3 }],
      netns: [{ key: '4026532177 (dtlab-hostA)', count: 3 }],
      flows: [{ key: 'TCP 10.244.1.2 > 10.244.1.1:2483', count: 3 }],
    };
    expect(rowContext(row, 'location')).toEqual({
      reason: 'NETFILTER_DROP', function: 'nft_do_chain', ifname: 'cni0', nsPrefix: 'ip netns exec dtlab-hostA ',
      l4: 'TCP', saddr: '10.244.1.2', daddr: '10.244.1.1', dport: 2483,
    });
  });
});
