import { describe, expect, it } from 'vitest';
import { formatVerdict, rankFindings, siteKey, trapFindings } from './diagnose.js';
import { judge, type Facts } from './evidence.js';
import type { Finding } from './finding.js';

function finding(over: Partial<Finding> & { location: string }): Finding {
  return {
    rank: 0,
    layer: 'kernel stack',
    function: over.location.replace(/\+.*/, ''),
    reason: 'NOT_SPECIFIED',
    count: 1,
    share: 0,
    rate: 1,
    avgLen: 60,
    interfaces: ['eth0'],
    netns: { inode: 1, label: '1' },
    flows: [],
    sockets: [],
    flow: null,
    context: { reason: null, function: null, ifname: null, nsPrefix: '', l4: null, saddr: null, daddr: null, dport: null },
    hint: null,
    evidence: [],
    syn: 0,
    unicast: 0,
    topUnicast: null,
    benign: null,
    baseline: null,
    impact: { class: 'other', why: '' },
    cause: null,
    counter: null,
    ...over,
  };
}

describe('ranking findings by impact', () => {
  it('a confirmed cause and failing connections outrank a bigger site; benign ranks last', () => {
    const ranked = rankFindings(
      [
        finding({ location: 'ip6_mc_input+0x15e', count: 400, benign: { rule: 'ipv6-multicast-not-joined', title: 'IPv6 multicast' } }),
        finding({ location: 'mystery+0x10', count: 90 }),
        finding({ location: '__udp4_lib_rcv+0x4bc', reason: 'NO_SOCKET', count: 40, unicast: 40, topUnicast: { key: 'UDP a > b:53', count: 1 } }),
        finding({ location: 'tcp_v4_rcv+0x10', reason: 'NO_SOCKET', count: 5, syn: 5, unicast: 5 }),
        finding({ location: 'ip_forward+0x20', reason: 'PKT_TOO_BIG', count: 2, unicast: 2, topUnicast: { key: 'UDP a > b:7000', count: 2 } }),
        finding({ location: 'nft_do_chain+0x3e8', reason: 'NETFILTER_DROP', count: 3, syn: 3, evidence: [{ verdict: 'confirms', text: 'a rule moved' }] }),
      ],
      null,
    );
    expect(ranked.map((f) => [f.rank, f.location, f.impact.class])).toEqual([
      [1, 'nft_do_chain+0x3e8', 'confirmed'],
      [2, 'tcp_v4_rcv+0x10', 'failing-connections'],
      [3, 'ip_forward+0x20', 'failing-connections'],
      [4, '__udp4_lib_rcv+0x4bc', 'unicast'],
      [5, 'mystery+0x10', 'other'],
      [6, 'ip6_mc_input+0x15e', 'benign'],
    ]);
    expect(ranked[0].impact.why).toBe("3 TCP connection attempts (SYN) dropped; the node's own state confirms the cause");
    expect(ranked[2].impact.why).toBe('the same flow dropped 2 times (UDP a > b:7000)');
  });

  it('with a baseline, a site at its resting rate ranks below what is new or grew', () => {
    const base = new Map([
      [siteKey('__udp4_lib_rcv+0x4bc', 'NO_SOCKET', 'eth0'), 20],
      [siteKey('tcp_v4_rcv+0x10', 'NO_SOCKET', 'eth0'), 0.5],
    ]);
    const ranked = rankFindings(
      [
        finding({ location: '__udp4_lib_rcv+0x4bc', reason: 'NO_SOCKET', count: 250, rate: 25, syn: 0, unicast: 250 }),
        finding({ location: 'tcp_v4_rcv+0x10', reason: 'NO_SOCKET', count: 30, rate: 3, syn: 30, unicast: 30 }),
        finding({ location: 'mystery+0x10', count: 2, rate: 0.2 }),
      ],
      base,
    );
    expect(ranked.map((f) => [f.location, f.impact.class])).toEqual([
      ['tcp_v4_rcv+0x10', 'failing-connections'],
      ['mystery+0x10', 'other'],
      ['__udp4_lib_rcv+0x4bc', 'at-baseline'],
    ]);
    expect(ranked[0].impact.why).toBe('30 TCP connection attempts (SYN) dropped; grew from 0.50/s at rest');
    expect(ranked[1].impact.why).toBe('new: not in the baseline');
    expect(ranked[2].impact.why).toBe('as at rest: 20.00/s in the baseline');
  });
});

describe('the verdict follows the evidence', () => {
  const netfilter = () =>
    finding({ location: 'nf_hook_slow+0x9a', reason: 'NETFILTER_DROP', syn: 4, hint: { id: 'reason/NETFILTER_DROP', title: 'a firewall rule on this host dropped it', explain: 'x', causes: [], checks: [] } });
  const input = (over: Partial<Facts>): Facts => ({ where: 'ns1', iptables: { before: [], after: [] }, counters: { before: new Map(), after: new Map() }, ...over });

  it('conntrack full and no rule moved: the headline is the full table, not "a firewall rule"', () => {
    const f = netfilter();
    f.evidence = judge(f, input({ conntrack: { count: 20, max: 20 } }));
    expect(f.evidence.map((e) => e.verdict)).toEqual(['refutes', 'confirms']);
    const [ranked] = rankFindings([f], null);
    expect(ranked.cause).toBe('the conntrack table is full (20 of 20 entries): new connections are dropped');
    const text = formatVerdict([ranked], 'head', []);
    expect(text).toMatch(/^#1  the conntrack table is full \(20 of 20 entries\)/m);
    expect(text).not.toMatch(/^#1  a firewall rule/m);
    expect(text).toMatch(/meaning:  NETFILTER_DROP in general: a firewall rule on this host dropped it/);
  });

  it('nothing confirmed: the reason\'s meaning stays the headline', () => {
    const f = netfilter();
    f.evidence = judge(f, input({ conntrack: { count: 3, max: 20 } }));
    const [ranked] = rankFindings([f], null);
    expect(ranked.cause).toBeNull();
    expect(formatVerdict([ranked], 'head', [])).toMatch(/^#1  a firewall rule on this host dropped it/m);
  });

  it('a drop only a counter saw outranks noise and other drops by its own class', () => {
    const overflow = finding({
      location: 'TcpExt:ListenOverflows', function: null, reason: null, count: 72, interfaces: [],
      counter: { key: 'TcpExt:ListenOverflows', delta: 72, impact: 'failing-connections' }, cause: "a listening socket's accept queue overflowed: new connections were dropped",
      evidence: [{ verdict: 'confirms', text: 'TcpExt:ListenOverflows rose by 72' }],
    });
    const mld = finding({ location: 'ip6_mc_input+0x15e', count: 400, benign: { rule: 'ipv6-multicast-not-joined', title: 'IPv6 multicast' } });
    const other = finding({ location: 'mystery+0x10', count: 90, unicast: 90 });
    const ranked = rankFindings([mld, other, overflow], null);
    expect(ranked.map((f) => f.location)).toEqual(['TcpExt:ListenOverflows', 'mystery+0x10', 'ip6_mc_input+0x15e']);
    expect(ranked[0].impact.why).toMatch(/72 counted by TcpExt:ListenOverflows and never traced/);
    expect(formatVerdict(ranked, 'head', [])).toMatch(/^#1  a listening socket's accept queue overflowed/m);
  });
});

describe('hardware traps (devlink) as findings', () => {
  const t = (trap: string, ifname: string, packets: number) => ({
    trap, group: 'l3_drops', type: 'drop' as const, device: 'pci/0000:03:00.0', ifindex: 3, ifname, netns: 4026531840, packets, bytes: packets * 98, key: `${trap}|${ifname}`,
  });

  it('one finding per trap of a device, summed over its ports, in the hardware layer with devlink commands', () => {
    const fs = trapFindings([t('blackhole_route', 'swp1', 30), t('blackhole_route', 'swp2', 12), t('tail_drop', 'swp1', 5)], 10);
    expect(fs).toHaveLength(2);
    const [f] = fs;
    expect(f).toMatchObject({ layer: 'hardware trap', count: 42, rate: 4.2, avgLen: 98, interfaces: ['swp1', 'swp2'], reason: null, trap: { trap: 'blackhole_route', group: 'l3_drops', type: 'drop', device: 'pci/0000:03:00.0' } });
    expect(f.hint?.checks[0]).toBe('devlink -s trap show pci/0000:03:00.0 trap blackhole_route');
    expect(f.evidence[0].text).toMatch(/reported 42 packets through devlink trap blackhole_route/);
  });

  it('ranks with the other drops and prints its layer, its trap and the hardware cause', () => {
    const traced = finding({ location: 'ip_rcv_core+0x1b2', count: 100 });
    const [hw] = trapFindings([t('blackhole_route', 'swp1', 7)], 1);
    const ranked = rankFindings([traced, hw], null);
    expect(ranked.map((f) => f.layer)).toEqual(['kernel stack', 'hardware trap']);
    expect(hw.impact.why).toMatch(/dropped by pci\/0000:03:00.0's hardware/);
    const text = formatVerdict(ranked, 'head', []);
    expect(text).toContain("#2  pci/0000:03:00.0's hardware dropped packets: devlink trap blackhole_route (l3_drops)");
    expect(text).toContain('    counted:  devlink trap blackhole_route (l3_drops, drop) of pci/0000:03:00.0: 7 packets, 7.0/s');
    expect(text).toContain('    layer:    hardware trap');
    expect(text).toContain('    layer:    kernel stack');
  });

  it('says an exception trap was passed to the stack, not dropped by the hardware', () => {
    const [ex] = rankFindings(trapFindings([{ ...t('ttl_value_is_too_small', 'swp1', 4), group: 'l3_exceptions', type: 'exception' }], 1), null);
    expect(ex.impact.why).toMatch(/could not forward them and passed them to the kernel's stack/);
    expect(ex.cause).toMatch(/could not forward packets in hardware and trapped them: ttl_value_is_too_small/);
  });
});
