/**
 * The evidence rules judged on facts read from real machinery (test/fixtures/host, captured
 * from the fault lab): each kind of datapath names the rule, route, policy or program, and a
 * rule asks to read only what it judges.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBpftoolNet, parseProgInfo } from '../host/bpfprogs.js';
import { parseIptablesSave } from '../host/iptables.js';
import { nativeNft, parseNftJson } from '../host/nft.js';
import { parseNeighbours, parsePolicyRules, parseRouteGet, parseRouteList } from '../host/routes.js';
import { parseXfrmPolicies } from '../host/xfrm.js';
import { parseQdiscs, parseVxlanDevices } from '../host/devices.js';
import { factsNeeded, judge, type Facts } from './evidence.js';
import type { Finding } from './finding.js';

const fixture = (name: string) => readFileSync(new URL(`../../test/fixtures/host/${name}`, import.meta.url), 'utf8');

function finding(over: Partial<Finding> & { location: string }): Finding {
  return {
    rank: 0, layer: 'kernel stack', function: over.location.replace(/\+.*/, ''), reason: 'NOT_SPECIFIED', count: 3, share: 0, rate: 1, avgLen: 60, interfaces: ['cni0'],
    netns: { inode: 1, label: '1 (hostA)' }, flows: [], sockets: [], flow: null,
    context: { reason: null, function: null, ifname: null, nsPrefix: 'ip netns exec hostA ', l4: null, saddr: null, daddr: null, dport: null },
    hint: null, evidence: [], syn: 0, unicast: 3, topUnicast: null, benign: null, baseline: null, impact: { class: 'other', why: '' }, cause: null, counter: null,
    ...over,
  };
}

/** A finding of drops of one flow. */
function flowFinding(location: string, reason: string | null, flow: { ipver: 4 | 6; l4: string; saddr: string; daddr: string; dport: number }, over: Partial<Finding> = {}): Finding {
  const f = finding({ location, reason, flow, ...over });
  f.context = { ...f.context, reason, l4: flow.l4, saddr: flow.saddr, daddr: flow.daddr, dport: flow.dport };
  return f;
}

const confirmed = (f: Finding, x: Facts) => judge(f, x).filter((e) => e.verdict === 'confirms');

describe('netfilter: iptables, ip6tables and native nftables', () => {
  const ruleset = nativeNft(parseNftJson(fixture('nft-ruleset-6.18.json'), fixture('nft-ruleset-6.18.txt'))!, new Set(['ip nat']));
  const quiet = { before: [], after: [] };
  const toEtcd = flowFinding('nft_do_chain+0x46f', 'NETFILTER_DROP', { ipver: 4, l4: 'TCP', saddr: '10.244.1.2', daddr: '10.244.1.1', dport: 2483 }, { syn: 3 });

  it('an nftables rule without a counter, the only one the dropped flow can meet, is the cause', () => {
    const ev = confirmed(toEtcd, { where: 'hostA', iptables: quiet, nft: { before: ruleset, after: ruleset }, local: true });
    expect(ev).toHaveLength(1);
    expect(ev[0].cause).toBe('an nftables rule dropped them: inet dtl_filter input: iifname "cni0" tcp dport 2483 drop (handle 12)');
    expect(ev[0].text).toMatch(/the rule keeps no counter/);
    expect(ev[0].next).toBe('ip netns exec hostA nft -a list chain inet dtl_filter input');
  });

  it('a rule whose counter moved confirms by its count', () => {
    const after = structuredClone(ruleset);
    after.rules.find((r) => r.handle === 10)!.counter!.packets = 5;
    const f = flowFinding('nft_do_chain+0x46f', 'NETFILTER_DROP', { ipver: 4, l4: 'UDP', saddr: '10.244.2.2', daddr: '10.244.1.1', dport: 7000 });
    const ev = confirmed(f, { where: 'hostA', iptables: quiet, nft: { before: ruleset, after }, local: true });
    expect(ev.map((e) => e.text)).toEqual(['nftables inet dtl_filter input: ip saddr @blocked_v4 udp dport 7000 counter drop (handle 10) counted 5 packet(s) in hostA during the window']);
  });

  it('a flow the forward chain accepts through its jump is not the policy\'s', () => {
    const f = flowFinding('nft_do_chain+0x46f', 'NETFILTER_DROP', { ipver: 4, l4: 'UDP', saddr: '10.244.1.2', daddr: '10.244.2.2', dport: 7000 }, { interfaces: ['cni0'] });
    const ev = judge(f, { where: 'hostA', iptables: quiet, nft: { before: ruleset, after: ruleset }, local: false });
    expect(ev.map((e) => e.verdict)).toEqual(['refutes']);
    // outside the pods' range the jump accepts nothing and the policy is left, but oifname is unknown: a candidate, not a cause
    const out = flowFinding('nft_do_chain+0x46f', 'NETFILTER_DROP', { ipver: 4, l4: 'UDP', saddr: '10.244.1.2', daddr: '10.9.9.9', dport: 53 });
    const ev2 = judge(out, { where: 'hostA', iptables: quiet, nft: { before: ruleset, after: ruleset }, local: false });
    expect(ev2).toEqual([{ verdict: 'info', text: 'nftables inet dtl_filter forward: policy drop (hook forward) may match the dropped flow (no counter to confirm it)' }]);
  });

  it('an IPv6 policy whose counter moved is the headline, in ip6tables\' words', () => {
    const after = parseIptablesSave(fixture('ip6tables-save-c.txt'), 'ip6tables');
    const before = after.map((r) => ({ ...r, packets: 0 }));
    const f = flowFinding('nft_do_chain+0x637', 'NETFILTER_DROP', { ipver: 6, l4: 'TCP', saddr: 'fd00:10:244:1::2', daddr: 'fd00:10:244:1::1', dport: 2483 }, { syn: 3 });
    const ev = confirmed(f, { where: 'hostA', iptables: { before, after }, nft: null, local: true });
    expect(ev[0]).toMatchObject({ text: 'ip6tables filter policy INPUT DROP counted 3 packet(s) in hostA during the window', cause: "the INPUT chain's policy dropped them: no rule accepts this flow (ip6tables, table filter)" });
  });

  it('nothing moved and nothing matches: refuted, and it says when nft was not read', () => {
    const ev = judge(toEtcd, { where: 'hostA', iptables: quiet, nft: null, local: true });
    expect(ev).toEqual([{ verdict: 'refutes', text: 'no iptables, ip6tables rule or policy in hostA moved: conntrack may have dropped it (INVALID, or the table full); nft is not installed, so native nftables tables were not read' }]);
  });
});

describe('routing decisions', () => {
  const toC = flowFinding('ip_error+0x94', 'NOT_SPECIFIED', { ipver: 4, l4: 'UDP', saddr: '10.244.1.2', daddr: '10.244.9.9', dport: 7000 });
  const routing = (stderr: string, over: Partial<NonNullable<Facts['routing']>> = {}): Facts => ({
    where: 'hostA',
    local: false,
    routing: { answer: parseRouteGet(2, '', stderr), rules: parsePolicyRules(fixture('ip-rule.json')), covering: [], forwarding: '1', ...over },
  });

  it('a blackhole route names itself', () => {
    const [e] = confirmed(toC, routing(fixture('ip-route-get-blackhole.err'), { covering: parseRouteList(fixture('ip-route-match-blackhole.json')) }));
    expect(e.cause).toBe('a blackhole route (blackhole 10.244.9.0/24) discards packets to 10.244.9.9');
    expect(e.text).toContain('"ip route get 10.244.9.9 from 10.244.1.2 iif cni0" answers: RTNETLINK answers: Invalid argument');
  });

  it('a prohibit policy rule that covers the flow names the rule', () => {
    const toB = flowFinding('ip_error+0x94', 'NOT_SPECIFIED', { ipver: 4, l4: 'UDP', saddr: '10.244.1.2', daddr: '10.244.2.2', dport: 7000 });
    const [e] = confirmed(toB, routing(fixture('ip-route-get-prohibit.err')));
    expect(e.cause).toBe('the policy routing rule "1000: from 10.244.1.2 to 10.244.2.0/24 prohibit" refuses packets from 10.244.1.2 to 10.244.2.2');
  });

  it('forwarding off on the input interface, not a route', () => {
    const f = flowFinding('ip_error+0x94', 'IP_INADDRERRORS', { ipver: 4, l4: 'UDP', saddr: '10.244.2.2', daddr: '10.244.1.2', dport: 7000 });
    const [e] = confirmed(f, routing('RTNETLINK answers: No route to host', { forwarding: '0', rules: [] }));
    expect(e.cause).toBe('forwarding is off on cni0 (net.ipv4.conf.cni0.forwarding=0): packets from 10.244.2.2 to 10.244.1.2 are not routed');
  });

  it('no route at all, and a route that exists now refutes', () => {
    const f = flowFinding('ip_error+0x94', 'IP_INNOROUTES', { ipver: 4, l4: 'UDP', saddr: '10.244.1.2', daddr: '10.244.9.9', dport: 7000 });
    expect(confirmed(f, routing('RTNETLINK answers: Network is unreachable', { rules: [] }))[0].cause).toBe('no route to 10.244.9.9');
    const ok: Facts = { where: 'hostA', routing: { answer: parseRouteGet(0, fixture('ip-route-get-ok.json'), ''), rules: [], covering: [], forwarding: '1' } };
    expect(judge(f, ok).map((e) => e.verdict)).toEqual(['refutes']);
  });
});

describe('IPsec', () => {
  const vxlan = flowFinding('udp_queue_rcv_one_skb+0x153', 'XFRM_POLICY', { ipver: 4, l4: 'UDP', saddr: '192.168.1.11', daddr: '192.168.1.10', dport: 8472 }, { interfaces: ['eth0'] });
  const counters = (after: Record<string, number>) => ({ before: new Map<string, number>(), after: new Map(Object.entries(after)) });

  it('a policy that requires ESP of a flow that came in clear', () => {
    const x: Facts = { where: 'hostA', local: true, counters: counters({ 'xfrm_stat:XfrmInTmplMismatch': 7 }), xfrmPolicies: parseXfrmPolicies(fixture('ip-xfrm-policy.txt')) };
    const [e] = confirmed(vxlan, x);
    expect(e.cause).toBe('the IPsec policy "src 192.168.1.11/32 dst 192.168.1.10/32 proto udp dport 8472 dir in" requires esp transport and they arrived without it');
    expect(e.counts).toEqual(['xfrm_stat:XfrmInTmplMismatch']);
  });

  it('a blocking policy, at a site with no reason', () => {
    const f = flowFinding('tcp_v4_rcv+0x99', 'NOT_SPECIFIED', { ipver: 4, l4: 'TCP', saddr: '192.168.1.11', daddr: '192.168.1.10', dport: 2483 });
    const x: Facts = { where: 'hostA', local: true, counters: counters({ 'xfrm_stat:XfrmInPolBlock': 3 }), xfrmPolicies: parseXfrmPolicies(fixture('ip-xfrm-policy.txt')) };
    expect(confirmed(f, x)[0].cause).toBe('the IPsec policy "src 192.168.1.11/32 dst 192.168.1.10/32 proto tcp dport 2483 dir in action block" blocks them');
    // no xfrm counter moved: at a generic site it says nothing
    expect(judge(f, { ...x, counters: counters({}) })).toEqual([]);
  });
});

describe('BPF programs', () => {
  const info = parseProgInfo(fixture('bpftool-prog.json'));
  const xdpId = [...info.values()].find((p) => p.name === 'lab_prefilter')!.id;
  const xdp = parseBpftoolNet(fixture('bpftool-net-xdp.json')).map((p) => ({ ...p, id: xdpId }));

  it('an XDP drop names the program on its device and counts its driver\'s xdp_drops', () => {
    const f = finding({ location: 'veth_xdp_rcv_skb+0x2cc', interfaces: ['eth0'] });
    const x: Facts = { where: 'hostA', progs: { attached: xdp, info, filters: { ingress: 0, egress: 0 } }, counters: { before: new Map([['ethtool:eth0:rx_queue_0_xdp_drops', 1]]), after: new Map([['ethtool:eth0:rx_queue_0_xdp_drops', 8]]) } };
    const [e] = confirmed(f, x);
    expect(e.cause).toBe(`the XDP program lab_prefilter (id ${xdpId}, tag 6fa8b7b96ec78e9b, xdp (driver) on eth0, pinned /sys/fs/bpf/lab_prefilter_fixture) dropped them (XDP_DROP or XDP_ABORTED)`);
    expect(e.text).toMatch(/rx_queue_0_xdp_drops \+7 during the window$/);
    expect(e.counts).toEqual(['ethtool:eth0:rx_queue_0_xdp_drops']);
    expect(judge(finding({ location: 'veth_xdp_rcv_skb+0x2cc', interfaces: ['eth1'] }), x)[0].verdict).toBe('refutes');
  });

  it('a tc drop names the program alone on the hook; with company, it lists them', () => {
    const tc = parseBpftoolNet(fixture('bpftool-net-tc.json'));
    const f = finding({ location: '__netif_receive_skb_core.constprop.0+0x56b', reason: 'TC_INGRESS', interfaces: ['vethB1'] });
    const alone: Facts = { where: 'hostB', progs: { attached: tc, info: new Map(), filters: { ingress: 1, egress: 0 } } };
    expect(confirmed(f, alone)[0].cause).toBe(`the tc BPF program tc_pod_policy.o:[tc] (id ${tc[0].id}, tc ingress on vethB1) dropped them (TC_ACT_SHOT)`);
    const two: Facts = { where: 'hostB', progs: { attached: [...tc, { ...tc[0], id: 999 }], info: new Map(), filters: { ingress: 2, egress: 0 } } };
    expect(judge(f, two).map((e) => e.verdict)).toEqual(['info']);
  });
});

describe('VXLAN', () => {
  // hostA's flannel.1: VNI 1 on port 8472
  const vxlanDevices = parseVxlanDevices(fixture('ip-link-vxlan.json'));
  const fromB = (vni: number) => {
    const f = finding({ location: 'vxlan_rcv+0x8c', reason: 'VXLAN_VNI_NOT_FOUND', interfaces: ['eth0'] });
    f.flow = { ipver: 4, l4: 'UDP', saddr: '192.168.1.11', daddr: '192.168.1.10', dport: 8472, tunnel: { kind: 'vxlan', vni } };
    return f;
  };

  it('a VNI no device takes names the devices on the port and their VNIs', () => {
    expect(vxlanDevices).toEqual([{ ifname: 'flannel.1', vni: 1, port: 8472, local: '192.168.1.10', link: 'eth0', up: true }]);
    const [e] = confirmed(fromB(2), { where: 'hostA', vxlanDevices });
    expect(e.cause).toBe('192.168.1.11 sends VNI 2 to port 8472, and the VXLAN device there has VNI 1 (flannel.1): the nodes disagree on the VNI');
    expect(e.text).toBe('no VXLAN device in hostA takes VNI 2 on port 8472: flannel.1 VNI 1');
  });

  it('a device that takes it now, or an external one, refutes; one that is down confirms', () => {
    expect(judge(fromB(1), { where: 'hostA', vxlanDevices }).map((e) => e.verdict)).toEqual(['refutes']);
    expect(judge(fromB(7), { where: 'hostA', vxlanDevices: [{ ...vxlanDevices[0], vni: null }] }).map((e) => e.verdict)).toEqual(['refutes']);
    expect(confirmed(fromB(1), { where: 'hostA', vxlanDevices: [{ ...vxlanDevices[0], up: false }] })[0].cause).toBe('the VXLAN device flannel.1 for VNI 1 is down');
  });
});

describe('neighbours', () => {
  // pod A1's eth0 after datagrams to 10.244.1.99 (on its link, nobody there) and 10.244.2.2 (via 10.244.1.1)
  const neighbours = parseNeighbours(fixture('ip-neigh-failed.json'));
  const toDead = flowFinding('neigh_invalidate+0x7e', 'NEIGH_FAILED', { ipver: 4, l4: 'UDP', saddr: '10.244.1.2', daddr: '10.244.1.99', dport: 7000 }, { interfaces: ['eth0'] });

  it('a destination on the link that never answered ARP', () => {
    const [e] = confirmed(toDead, { where: 'podA1', neighbours, routeToDest: fixture('ip-route-get-onlink.txt') });
    expect(e.cause).toBe("10.244.1.99 does not answer ARP on eth0: it is down, or not on eth0's link");
    expect(e.text).toBe('the neighbour entry for 10.244.1.99 on eth0 in podA1 is FAILED: nothing answered ARP for it');
  });

  it('through a gateway, the gateway is the neighbour asked about; one that answers now refutes', () => {
    const viaGw = flowFinding('neigh_invalidate+0x7e', 'NEIGH_FAILED', { ipver: 4, l4: 'UDP', saddr: '10.244.1.2', daddr: '10.244.2.2', dport: 7000 }, { interfaces: ['eth0'] });
    const x: Facts = { where: 'podA1', neighbours, routeToDest: '10.244.2.2 via 10.244.1.1 dev eth0 src 10.244.1.2 uid 0 \n    cache \n' };
    expect(judge(viaGw, x)).toEqual([{ verdict: 'refutes', text: '10.244.1.1 answers ARP on eth0 in podA1 now (REACHABLE, 32:f3:ce:98:9c:6d): it was unreachable during the window only' }]);
    const stale = neighbours.map((n) => (n.dst === '10.244.1.1' ? { ...n, state: ['STALE'] } : n));
    expect(judge(viaGw, { ...x, neighbours: stale }).map((e) => e.verdict)).toEqual(['info']);
    expect(judge(toDead, { ...x, neighbours: [] }).map((e) => e.verdict)).toEqual(['info']);
  });
});

describe('qdiscs', () => {
  const f = finding({ location: '__dev_queue_xmit+0xdd1', reason: 'QDISC_DROP', interfaces: ['eth0'] });
  const moved = (n: number) => ({ before: new Map([['qdisc:eth0', 10]]), after: new Map([['qdisc:eth0', 10 + n]]) });

  it('a full queue names the qdisc that counts the drops, with its settings', () => {
    const [e] = confirmed(f, { where: 'podA1', qdiscs: parseQdiscs(fixture('tc-qdisc-tbf.txt')), counters: moved(193) });
    expect(e.cause).toBe('the tbf qdisc 8015: on eth0 dropped them: it shapes to a rate the traffic exceeds, and its queue was full');
    expect(e.text).toBe("tc qdisc tbf 8015: root rate 8Kbit burst 1600b lat 1.4s on eth0 in podA1: 193 dropped since it was created, the only qdisc on eth0 that drops; eth0's qdiscs counted 193 drop(s) during the window");
    expect(e.counts).toEqual(['qdisc:eth0']);
  });

  it('under a classful qdisc, which counts its children\'s drops too, the leaf is the one', () => {
    const [e] = confirmed(f, { where: 'podA1', qdiscs: parseQdiscs(fixture('tc-qdisc-htb-pfifo.txt')), counters: moved(192) });
    expect(e.cause).toBe('the pfifo qdisc 10: on eth0 dropped them: its queue was full (under htb 1:)');
    expect(e.next).toBe('ip netns exec hostA tc -s class show dev eth0');
  });

  it("a NIC's default mq root over a qdisc per queue (handles 0:, parents :N): the queue that drops", () => {
    // the shape tc prints for a multi-queue NIC's default root (major 0 printed as nothing)
    const text = [
      'qdisc mq 0: root ',
      ' Sent 9000 bytes 60 pkt (dropped 7, overlimits 0 requeues 0) ',
      'qdisc fq_codel 0: parent :2 limit 10240p flows 1024 quantum 1514 target 5ms interval 100ms memory_limit 32Mb ecn drop_batch 64 ',
      ' Sent 3000 bytes 20 pkt (dropped 0, overlimits 0 requeues 0) ',
      'qdisc fq_codel 0: parent :1 limit 10240p flows 1024 quantum 1514 target 5ms interval 100ms memory_limit 32Mb ecn drop_batch 64 ',
      ' Sent 6000 bytes 40 pkt (dropped 7, overlimits 0 requeues 0) ',
    ].join('\n');
    const [e] = confirmed(f, { where: 'node', qdiscs: parseQdiscs(text), counters: moved(7) });
    expect(e.cause).toBe('the fq_codel qdisc 0: (parent :1) on eth0 dropped them: its queue management dropped them (a full queue, a flow limit, or its delay target) (under mq 0:)');
    expect(e.text).toMatch(/^tc qdisc fq_codel 0: parent :1 limit 10240p .* on eth0 in node: 7 dropped since it was created, the only leaf qdisc on eth0 that drops;/);
  });

  it('old drops, a counter that went back (a qdisc replaced), or no qdisc that drops, confirm nothing', () => {
    expect(judge(f, { where: 'podA1', qdiscs: parseQdiscs(fixture('tc-qdisc-tbf.txt')), counters: moved(-5) }).map((e) => e.verdict)).toEqual(['info']);
    expect(judge(f, { where: 'podA1', qdiscs: parseQdiscs(fixture('tc-qdisc-tbf.txt')), counters: moved(0) }).map((e) => e.verdict)).toEqual(['info']);
    const quiet = judge(f, { where: 'hostA', qdiscs: parseQdiscs(fixture('tc-qdisc-quiet.txt')).slice(1, 2), counters: moved(0) });
    expect(quiet).toEqual([{ verdict: 'info', text: 'no qdisc on eth0 in hostA counts a drop (noqueue 0:)' }]);
  });
});

describe('only what a rule asks for is read', () => {
  it.each([
    ['NETFILTER_DROP', 'nft_do_chain+0x3e8', ['iptables', 'nft', 'local', 'conntrack', 'counters']],
    ['NO_SOCKET', 'tcp_v4_rcv+0x10', ['listeners', 'counters']],
    ['NOT_SPECIFIED', 'veth_xdp_rcv_skb+0x2cc', ['progs', 'counters']],
    ['TC_INGRESS', '__netif_receive_skb_core+0x56b', ['progs', 'counters']],
    ['NOT_SPECIFIED', 'ip_error+0x94', ['routing', 'local', 'counters']],
    ['XFRM_POLICY', 'udp_queue_rcv_one_skb+0x153', ['counters', 'xfrmPolicies', 'local']],
    ['QDISC_DROP', '__dev_queue_xmit+0xdd1', ['qdiscs', 'counters']],
    ['NEIGH_FAILED', 'neigh_invalidate+0x7e', ['neighbours', 'routeToDest', 'counters']],
    ['VXLAN_VNI_NOT_FOUND', 'vxlan_rcv+0x8c', ['vxlanDevices', 'counters']],
  ])('%s at %s reads %j', (reason, location, needs) => {
    const f = finding({ location, reason, context: { ...finding({ location }).context, dport: 2483 } });
    expect([...factsNeeded(f)].sort()).toEqual([...needs].sort());
  });

  it('an expected-noise finding reads nothing', () => {
    expect(factsNeeded(finding({ location: 'ip6_mc_input+0x15e', benign: { rule: 'x', title: 'y' } })).size).toBe(0);
  });
});
