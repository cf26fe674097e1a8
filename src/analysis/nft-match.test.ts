import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseNftJson } from '../host/nft.js';
import { matchRule, type DroppedFlow } from './nft-match.js';

const rs = parseNftJson(readFileSync(new URL('../../test/fixtures/host/nft-ruleset-6.18.json', import.meta.url), 'utf8'))!;
const rule = (handle: number) => rs.rules.find((r) => r.table === 'dtl_filter' && r.handle === handle)!;
const flow = (over: Partial<DroppedFlow>): DroppedFlow => ({ ipver: 4, l4: 'TCP', saddr: '10.244.1.2', daddr: '10.244.1.1', dport: 2483, iface: 'cni0', ctNew: false, ...over });

describe('an nftables rule against a dropped flow', () => {
  it.each([
    // handle 5: ct state established,related accept
    [5, flow({ ctNew: true }), 'nomatch'],
    [5, flow({}), 'unknown'],
    // handle 6: iifname "lo"
    [6, flow({}), 'nomatch'],
    [6, flow({ iface: 'lo' }), 'match'],
    [6, flow({ iface: null }), 'unknown'],
    // handle 7: ip6 nexthdr ipv6-icmp: an IPv4 packet has no IPv6 header
    [7, flow({}), 'nomatch'],
    [7, flow({ ipver: 6, l4: 'ICMPv6', saddr: 'fd00::1', daddr: 'fd00::2', dport: null }), 'match'],
    // handle 9: tcp dport { 22, 2379-2380 }
    [9, flow({ dport: 2380 }), 'match'],
    [9, flow({ dport: 22 }), 'match'],
    [9, flow({ dport: 2483 }), 'nomatch'],
    [9, flow({ l4: 'UDP', dport: 22 }), 'nomatch'],
    [9, flow({ dport: null }), 'unknown'],
    // handle 10: ip saddr @blocked_v4 udp dport 7000 (a named interval set)
    [10, flow({ l4: 'UDP', saddr: '10.244.2.2', dport: 7000 }), 'match'],
    [10, flow({ l4: 'UDP', saddr: '10.244.3.2', dport: 7000 }), 'nomatch'],
    // handle 11: udp dport 9000-9100 reject
    [11, flow({ l4: 'UDP', dport: 9050 }), 'match'],
    [11, flow({ l4: 'UDP', dport: 9101 }), 'nomatch'],
    // handle 12: iifname "cni0" tcp dport 2483 drop
    [12, flow({}), 'match'],
    [12, flow({ iface: 'eth0' }), 'nomatch'],
    // handle 13: ip6 saddr fd00:10:244:1::/64 tcp dport != 2483
    [13, flow({ ipver: 6, saddr: 'fd00:10:244:1::2', daddr: 'fd00:10:244:1::1', dport: 80 }), 'match'],
    [13, flow({ ipver: 6, saddr: 'fd00:10:244:1::2', daddr: 'fd00:10:244:1::1', dport: 2483 }), 'nomatch'],
    [13, flow({ ipver: 6, saddr: 'fd00:10:244:2::2', dport: 80 }), 'nomatch'],
    [13, flow({ ipver: null, saddr: null, dport: 80 }), 'unknown'],
  ])('rule %i, %j: %s', (handle, f, want) => {
    expect(matchRule(rule(handle), f, rs.sets)).toBe(want);
  });

});
