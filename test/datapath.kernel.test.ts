/**
 * Faults on the machinery beyond iptables and IPv4, in the lab (scripts/lab): native
 * nftables, an IPv6 firewall policy, routes and policy rules, forwarding off, IPsec, an XDP
 * program, a tc BPF program, a shaper's full queue, a gateway that does not answer ARP and
 * nodes that disagree on the VXLAN VNI. Each is diagnosed for real and unfiltered, as a user who does
 * not know the port: the top finding must name the mechanism in its headline (the rule, the
 * route, the policy, the program) with confirming evidence, and be gone once the fault is
 * cleared.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests } from './helpers/kernel.js';
import { labDiagnose, labScript, LAB, type LabFinding } from './helpers/lab.js';

const PREFIX = `dp${process.pid % 100000}`;
const { run: lab, env } = labScript(PREFIX);
const A = `${PREFIX}-hostA`;
const B = `${PREFIX}-hostB`;
const PA = `${PREFIX}-podA1`;

const CASES: Array<{
  fault: string;
  /** the reason on this kernel; older kernels name some of these NOT_SPECIFIED */
  reason: RegExp;
  fn: RegExp;
  iface: string;
  ns: string;
  flow: RegExp;
  cause: RegExp;
  evidence: RegExp;
}> = [
  {
    fault: 'nft-forward', reason: /^NETFILTER_DROP$/, fn: /^(nft_do_chain|nf_hook_slow)/, iface: 'cni0', ns: A, flow: /^UDP 10\.244\.1\.2 > 10\.244\.2\.2:7000$/,
    cause: /^an nftables rule dropped them: inet dp\d+_fault forward: ip daddr 10\.244\.2\.0\/24 udp dport \{ 7000, 7001 \} drop \(handle \d+\)$/,
    evidence: /matches the dropped flow, and no other dropping rule or policy can/,
  },
  {
    fault: 'ip6-input', reason: /^NETFILTER_DROP$/, fn: /^(nft_do_chain|nf_hook_slow)/, iface: 'cni0', ns: A, flow: /^TCP fd00:10:244:1::2 > \[fd00:10:244:1::1\]:2483$/,
    cause: /^the INPUT chain's policy dropped them: no rule accepts this flow \(ip6tables, table filter\)$/,
    evidence: /^ip6tables filter policy INPUT DROP counted \d+ packet/,
  },
  {
    fault: 'blackhole', reason: /^(NOT_SPECIFIED|BLACKHOLE)$/, fn: /^(ip_error|dst_discard)/, iface: 'cni0', ns: A, flow: /^UDP 10\.244\.1\.2 > 10\.244\.9\.9:7000$/,
    cause: /^a blackhole route \(blackhole 10\.244\.9\.0\/24\) discards packets to 10\.244\.9\.9$/,
    evidence: /covers 10\.244\.9\.9; "ip route get 10\.244\.9\.9 from 10\.244\.1\.2 iif cni0" answers: RTNETLINK answers: Invalid argument/,
  },
  {
    fault: 'unreachable-route', reason: /^(NOT_SPECIFIED|IP_INADDRERRORS)$/, fn: /^ip_error/, iface: 'cni0', ns: A, flow: /^UDP 10\.244\.1\.2 > 10\.244\.9\.9:7000$/,
    cause: /^an unreachable route \(unreachable 10\.244\.9\.0\/24\) discards packets to 10\.244\.9\.9$/,
    evidence: /No route to host/,
  },
  {
    fault: 'prohibit-rule', reason: /^(NOT_SPECIFIED|IP_INADDRERRORS)$/, fn: /^ip_error/, iface: 'cni0', ns: A, flow: /^UDP 10\.244\.1\.2 > 10\.244\.2\.2:7000$/,
    cause: /^the policy routing rule "1000: from 10\.244\.1\.2 to 10\.244\.2\.0\/24 prohibit" refuses packets from 10\.244\.1\.2 to 10\.244\.2\.2$/,
    evidence: /Permission denied/,
  },
  {
    fault: 'forwarding-off', reason: /^IP_INADDRERRORS$/, fn: /^ip_error/, iface: 'cni0', ns: B, flow: /^UDP 10\.244\.2\.2 > 10\.244\.1\.2:7000$/,
    cause: /^forwarding is off on cni0 \(net\.ipv4\.conf\.cni0\.forwarding=0\): packets from 10\.244\.2\.2 to 10\.244\.1\.2 are not routed$/,
    evidence: /net\.ipv4\.conf\.cni0\.forwarding = 0/,
  },
  {
    fault: 'ipsec-cleartext', reason: /^XFRM_POLICY$/, fn: /^(udp_queue_rcv_one_skb|__udp4_lib_rcv)/, iface: 'eth0', ns: A, flow: / in vxlan 1 \(UDP 192\.168\.1\.11 > 192\.168\.1\.10:8472\)$/,
    cause: /^the IPsec policy "src 192\.168\.1\.11\/32 dst 192\.168\.1\.10\/32 proto udp dport 8472 dir in" requires esp transport and they arrived without it$/,
    evidence: /XfrmInTmplMismatch \+\d+ during the window/,
  },
  {
    fault: 'ipsec-block', reason: /^(XFRM_POLICY|NOT_SPECIFIED)$/, fn: /^tcp_v4_rcv/, iface: 'eth0', ns: A, flow: /^TCP 192\.168\.1\.11 > 192\.168\.1\.10:2483$/,
    cause: /^the IPsec policy "src 192\.168\.1\.11\/32 dst 192\.168\.1\.10\/32 proto tcp dport 2483 dir in action block" blocks them$/,
    evidence: /XfrmInPolBlock \+\d+ during the window/,
  },
  {
    fault: 'xdp-prefilter', reason: /^(NOT_SPECIFIED|XDP)$/, fn: /xdp/, iface: 'eth0', ns: A, flow: / in vxlan 1 \(UDP 192\.168\.1\.11 > 192\.168\.1\.10:8472\)$/,
    cause: /^the XDP program lab_prefilter \(id \d+, tag [0-9a-f]{16}, xdp \(driver\) on eth0\) dropped them/,
    evidence: /xdp_drops \+\d+ during the window/,
  },
  {
    fault: 'tc-policy', reason: /^TC_INGRESS$/, fn: /^(__netif_receive_skb_core|sch_handle_ingress|tcf_classify)/, iface: 'vethB1', ns: B, flow: /^TCP 10\.244\.2\.2 > 192\.168\.1\.10:2483$/,
    cause: /^the tc BPF program lab_pod_policy \(id \d+, tag [0-9a-f]{16}, tc ingress on vethB1, from tc_pod_policy\.o:\[tc\]\) dropped them \(TC_ACT_SHOT\)$/,
    evidence: /^the only classifier on vethB1's tc ingress hook is the BPF program lab_pod_policy/,
  },
  {
    // 7.x's qdisc:qdisc_drop names the limit (QDISC_DROP_*)
    fault: 'qdisc-full', reason: /^QDISC_DROP(_\w+)?$/, fn: /^(__dev_queue_xmit|__dev_xmit_skb|dev_qdisc_enqueue|pfifo_enqueue|qdisc_drop)/, iface: 'eth0', ns: PA, flow: /^UDP 10\.244\.1\.2 > 10\.244\.2\.2:7000$/,
    cause: /^the pfifo qdisc 10: on eth0 dropped them: its queue was full \(under htb 1:\)$/,
    evidence: /^tc qdisc pfifo 10: parent 1:10 limit 5p on eth0 in \S+podA1: \d+ dropped since it was created, the only leaf qdisc on eth0 that drops; eth0's qdiscs counted \d+ drop\(s\) during the window$/,
  },
  {
    fault: 'vni-mismatch', reason: /^(VXLAN_VNI_NOT_FOUND|NOT_SPECIFIED)$/, fn: /^vxlan_rcv/, iface: 'eth0', ns: A, flow: / in vxlan 2 \(UDP 192\.168\.1\.11 > 192\.168\.1\.10:8472\)$/,
    cause: /^192\.168\.1\.11 sends VNI 2 to port 8472, and the VXLAN device there has VNI 1 \(flannel\.1\): the nodes disagree on the VNI$/,
    evidence: /^no VXLAN device in \S+hostA takes VNI 2 on port 8472: flannel\.1 VNI 1$/,
  },
  {
    fault: 'dead-gateway', reason: /^(NEIGH_FAILED|NOT_SPECIFIED)$/, fn: /^neigh_invalidate/, iface: 'eth0', ns: A, flow: /^UDP 10\.244\.1\.2 > 10\.244\.9\.9:7000$/,
    cause: /^the gateway 192\.168\.1\.99 \(the next hop to 10\.244\.9\.9\) does not answer ARP on eth0: it is down, or not on eth0's link$/,
    evidence: /^the neighbour entry for 192\.168\.1\.99 on eth0 in \S+hostA is FAILED: nothing answered ARP for it$/,
  },
];

const run = canRunKernelTests('the datapath lab', ['nft', 'ip6tables', 'clang', 'bpftool', 'tc']);

describe.skipIf(!run)('faults on every datapath, diagnosed unfiltered', () => {
  beforeAll(() => {
    lab('down');
    lab('up');
  });
  afterAll(() => {
    spawnSync(LAB, ['down'], { env });
  });

  it.each(CASES)('$fault: the headline names the mechanism, with confirming evidence, and it goes away when cleared', async (c) => {
    lab('fault', c.fault);
    let verdict: { findings: LabFinding[] };
    try {
      verdict = await labDiagnose(lab, c.fault);
    } finally {
      lab('clear');
    }
    const { findings } = verdict;
    expect(findings.filter((f) => f.benign)).toEqual([]);
    const top = findings[0];
    expect(top.reason).toMatch(c.reason);
    expect(top.function).toMatch(c.fn);
    expect(top.interfaces[0]).toBe(c.iface);
    expect(top.netns.label).toContain(`(${c.ns})`);
    expect(top.flows.map((f) => f.flow).join('\n')).toMatch(new RegExp(c.flow.source, 'm'));
    expect(top.cause).toMatch(c.cause);
    expect(top.evidence.filter((e) => e.verdict === 'confirms').map((e) => e.text).join('\n')).toMatch(new RegExp(c.evidence.source, 'm'));
    // a counter that counted the same drops (xfrm_stat for IPsec, the driver's xdp_drops) is not
    // a second finding; other counters may move with the pods' restart noise
    expect(findings.filter((f) => f.counter && /^xfrm_stat:|xdp/.test(f.counter.key)).map((f) => f.counter!.key)).toEqual([]);

    const after = await labDiagnose(lab, c.fault);
    expect(after.findings.filter((f) => f.netns.label.includes(`(${c.ns})`) && f.function?.match(c.fn) && f.reason?.match(c.reason))).toEqual([]);
  });
});
