/**
 * The host readers of the datapath's machinery, on real output captured from the fault lab
 * on Linux 6.18 (iproute2 6.1, nftables 1.0.6, iptables 1.8.9 nf_tables, bpftool 7.1):
 * test/fixtures/host.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { countTcFilters, parseBpftoolNet, parseLinkXdp, parseProgInfo, parseTcFilters, progLabel } from './bpfprogs.js';
import { iptablesTables, movedDropRules, parseIptablesSave, ruleLabel } from './iptables.js';
import { movedNftDrops, nativeNft, nftRuleLabel, parseNftJson } from './nft.js';
import { parseLocalAddrs, parsePolicyRules, parseRouteGet, parseRouteList, prefixLen } from './routes.js';
import { parseXfrmPolicies, parseXfrmStat } from './xfrm.js';

const fixture = (name: string) => readFileSync(new URL(`../../test/fixtures/host/${name}`, import.meta.url), 'utf8');

describe('nftables', () => {
  const rs = parseNftJson(fixture('nft-ruleset-6.18.json'), fixture('nft-ruleset-6.18.txt'))!;

  it('reads chains with hooks and policies, rules with verdicts, counters, texts, and named sets', () => {
    expect(rs.chains.find((c) => c.name === 'forward')).toEqual({ family: 'inet', table: 'dtl_filter', name: 'forward', hook: 'forward', prio: 0, policy: 'drop' });
    expect(rs.chains.find((c) => c.name === 'pods')).toMatchObject({ hook: null, policy: null });
    const drop = rs.rules.find((r) => r.handle === 10)!;
    expect(drop).toMatchObject({ chain: 'input', verdict: 'drop', counter: { packets: 0, bytes: 0 }, xt: false, text: 'ip saddr @blocked_v4 udp dport 7000 counter drop' });
    expect(rs.rules.find((r) => r.handle === 11)).toMatchObject({ verdict: 'reject', counter: null, text: 'udp dport 9000-9100 reject' });
    expect(rs.rules.find((r) => r.handle === 15)).toMatchObject({ verdict: 'jump' });
    expect(rs.sets.get('inet dtl_filter blocked_v4')).toHaveLength(2);
    expect(nftRuleLabel(rs.rules.find((r) => r.handle === 12)!)).toBe('inet dtl_filter input: iifname "cni0" tcp dport 2483 drop (handle 12)');
  });

  it("leaves iptables-nft's tables to iptables-save", () => {
    const nat = rs.rules.find((r) => r.table === 'nat')!;
    expect(nat.xt).toBe(true);
    const native = nativeNft(rs, new Set(['ip nat']));
    expect(native.chains.map((c) => `${c.family} ${c.table}`)).not.toContain('ip nat');
    expect(native.rules.every((r) => r.table === 'dtl_filter')).toBe(true);
  });

  it('finds the dropping rules whose counters moved', () => {
    const after = parseNftJson(fixture('nft-ruleset-6.18.json'))!;
    after.rules.find((r) => r.handle === 10)!.counter!.packets = 4;
    after.rules.find((r) => r.handle === 16)!.counter!.packets = 9;
    expect(movedNftDrops(rs, after).map((r) => [r.handle, r.delta])).toEqual([[10, 4]]);
  });

  it('is null on something that is not its JSON', () => {
    expect(parseNftJson('Error: Could not process rule')).toBeNull();
  });
});

describe('iptables and ip6tables', () => {
  const v6 = parseIptablesSave(fixture('ip6tables-save-c.txt'), 'ip6tables');

  it('reads the IPv6 rule set as its own tool, policies with their counters', () => {
    expect(v6[0]).toEqual({ tool: 'ip6tables', table: 'filter', rule: 'policy INPUT DROP', packets: 3, bytes: 240, drops: true });
    expect(ruleLabel(v6[0])).toBe('ip6tables filter policy INPUT DROP');
    expect(iptablesTables(v6)).toEqual(new Set(['ip6 filter']));
  });

  it('an IPv4 and an IPv6 rule of the same text are different rules', () => {
    const v4 = parseIptablesSave(fixture('ip6tables-save-c.txt').replace(':INPUT DROP [3:240]', ':INPUT DROP [0:0]'), 'iptables');
    const moved = movedDropRules([...v4, ...v6.map((r) => ({ ...r, packets: 0 }))], [...v4, ...v6]);
    expect(moved.map((r) => [r.tool, r.rule, r.delta])).toEqual([['ip6tables', 'policy INPUT DROP', 3]]);
  });
});

describe('routes', () => {
  it.each([
    [fixture('ip-route-get-blackhole.err'), 'blackhole'],
    [fixture('ip-route-get-prohibit.err'), 'prohibit'],
    ['RTNETLINK answers: No route to host\n', 'unreachable'],
    ['RTNETLINK answers: Network is unreachable\n', 'no-route'],
  ])('the kernel\'s refusal %j is a %s route', (stderr, refusal) => {
    expect(parseRouteGet(2, '', stderr)).toEqual({ route: null, refusal, error: stderr.trim() });
  });

  it('a route found is its type, device and gateway', () => {
    expect(parseRouteGet(0, fixture('ip-route-get-ok.json'), '').route).toEqual({ type: 'unicast', dev: 'flannel.1', gateway: '10.244.2.0', table: null });
  });

  it('reads policy rules with their actions and the routes that cover an address', () => {
    const rules = parsePolicyRules(fixture('ip-rule.json'));
    expect(rules[1]).toEqual({ priority: 1000, src: '10.244.1.2', srcLen: 32, dst: '10.244.2.0', dstLen: 24, iif: null, table: null, action: 'prohibit', text: '1000: from 10.244.1.2 to 10.244.2.0/24 prohibit' });
    expect(rules[2].text).toBe('32766: from all lookup main');
    expect(parseRouteList(fixture('ip-route-match-blackhole.json'))).toEqual([{ type: 'blackhole', dst: '10.244.9.0/24', table: 'main', dev: null }]);
    expect([prefixLen('default'), prefixLen('10.0.0.0/8'), prefixLen('10.0.0.1'), prefixLen('fd00::1')]).toEqual([0, 8, 32, 128]);
  });

  it("reads a namespace's own addresses", () => {
    expect(parseLocalAddrs(fixture('ip-addr.json'))).toEqual(expect.arrayContaining(['127.0.0.1', '192.168.1.10', '10.244.1.1', 'fd00:10:244:1::1']));
  });
});

describe('IPsec', () => {
  it('reads xfrm_stat as counter keys', () => {
    const s = parseXfrmStat(fixture('xfrm_stat.txt'));
    expect(s.get('xfrm_stat:XfrmInTmplMismatch')).toBeGreaterThan(0);
    expect(s.get('xfrm_stat:XfrmInPolBlock')).toBeGreaterThan(0);
    expect([...s.keys()].every((k) => /^xfrm_stat:Xfrm\w+$/.test(k))).toBe(true);
  });

  it('reads policies: selector, direction, block or the transforms they require', () => {
    expect(parseXfrmPolicies(fixture('ip-xfrm-policy.txt'))).toEqual([
      { src: '192.168.1.11/32', dst: '192.168.1.10/32', proto: 'tcp', sport: null, dport: 2483, dev: null, dir: 'in', action: 'block', tmpls: [], text: 'src 192.168.1.11/32 dst 192.168.1.10/32 proto tcp dport 2483 dir in action block' },
      { src: '192.168.1.11/32', dst: '192.168.1.10/32', proto: 'udp', sport: null, dport: 8472, dev: null, dir: 'in', action: 'allow', tmpls: ['esp transport'], text: 'src 192.168.1.11/32 dst 192.168.1.10/32 proto udp dport 8472 dir in' },
    ]);
  });
});

describe('BPF programs on the path', () => {
  it('reads XDP and tc attachments from bpftool, with names, tags and pins from its program list', () => {
    const xdp = parseBpftoolNet(fixture('bpftool-net-xdp.json'));
    const tc = parseBpftoolNet(fixture('bpftool-net-tc.json'));
    expect(xdp).toEqual([{ id: expect.any(Number), dev: 'eth0', hook: 'xdp', mode: 'driver', name: null, tag: null, section: null }]);
    expect(tc).toEqual([{ id: expect.any(Number), dev: 'vethB1', hook: 'tc ingress', mode: null, name: null, tag: null, section: 'tc_pod_policy.o:[tc]' }]);
    const info = parseProgInfo(fixture('bpftool-prog.json'));
    const lab = [...info.values()].find((p) => p.name === 'lab_prefilter')!;
    expect(lab).toMatchObject({ type: 'xdp', tag: '6fa8b7b96ec78e9b', pinned: ['/sys/fs/bpf/lab_prefilter_fixture'] });
    expect(progLabel({ ...xdp[0], id: lab.id }, lab)).toBe(`lab_prefilter (id ${lab.id}, tag 6fa8b7b96ec78e9b, xdp (driver) on eth0, pinned /sys/fs/bpf/lab_prefilter_fixture)`);
  });

  it('reads the same from ip and tc where bpftool is missing', () => {
    expect(parseLinkXdp(fixture('ip-link-xdp.json'))).toEqual([{ id: expect.any(Number), dev: 'eth0', hook: 'xdp', mode: 'driver', name: 'lab_prefilter', tag: '6fa8b7b96ec78e9b', section: null }]);
    expect(parseTcFilters('vethB1', 'ingress', fixture('tc-filter-bpf.json'))).toEqual([{ id: expect.any(Number), dev: 'vethB1', hook: 'tc ingress', mode: null, name: 'lab_pod_policy', tag: 'c5c5fb832d822e05', section: 'tc_pod_policy.o:[tc]' }]);
    expect(countTcFilters(fixture('tc-filter-bpf.json'))).toBe(1);
  });
});
