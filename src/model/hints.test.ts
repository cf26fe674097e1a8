import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { filledHint, formatHint, functionHint, hintCoverage, hintedReasons, hintFor, reasonHint } from './hints.js';
import { parseTracefsFormat } from './reasons.js';
import { loadAddon } from '../capture/native.js';

/** The pinned enum: every reason of a real 6.18 kernel (its tracefs format file, which lists them all). */
const PINNED = parseTracefsFormat(readFileSync(new URL('../../test/fixtures/kfree_skb-format-6.18.txt', import.meta.url), 'utf8')).map(([, n]) => n);

describe('hints', () => {
  it('cover every drop reason of the pinned 6.18 enum, each with its own entry', () => {
    expect(PINNED.length).toBeGreaterThan(100);
    expect(hintCoverage(PINNED, []).missing).toEqual([]);
  });

  it("report, never fail on, the reasons the running kernel adds beyond the pinned enum", () => {
    const running = (loadAddon().reasons() ?? []).map(([, n]) => n);
    expect(running.length).toBeGreaterThan(50);
    const { added } = hintCoverage(PINNED, running);
    if (added.length) console.info(`this kernel adds ${added.length} reason(s) beyond the pinned enum: ${added.map((a) => `${a.reason} (${a.hint ?? 'no hint: shown by name'})`).join(', ')}`);
    // a kernel with a reason the table lacks: coverage names it as added, nothing is missing
    const lacking = PINNED.filter((n) => n !== 'NETFILTER_DROP');
    expect(hintCoverage(lacking, [...lacking, 'NETFILTER_DROP', 'SOME_NEW_REASON'])).toEqual({
      missing: [],
      added: [
        { reason: 'NETFILTER_DROP', hint: 'reason/NETFILTER_DROP' },
        { reason: 'SOME_NEW_REASON', hint: null },
      ],
    });
  });

  it('every hint explains, names causes and gives commands', () => {
    for (const r of hintedReasons()) {
      const h = reasonHint(r)!;
      expect(h.explain.length).toBeGreaterThan(10);
      expect(h.causes.length).toBeGreaterThan(0);
      expect(h.checks.length).toBeGreaterThan(0);
    }
  });

  it.each([
    [{ reason: 'NETFILTER_DROP', ifname: 'cni0', dport: 2483, nsPrefix: 'ip netns exec dtlab-hostA ' }, 'reason/NETFILTER_DROP', /ip netns exec dtlab-hostA iptables -L INPUT -v -n --line-numbers/],
    [{ reason: 'NO_SOCKET', dport: 2483, daddr: '10.244.1.1' }, 'reason/NO_SOCKET', /ss -ltnup \| grep ":2483\\b"/],
    [{ reason: 'IP_RPFILTER', ifname: 'eth0', saddr: '10.244.2.2' }, 'reason/IP_RPFILTER', /net\.ipv4\.conf\.eth0\.rp_filter/],
    [{ reason: 'CPU_BACKLOG' }, 'reason/CPU_BACKLOG', /softnet_stat/],
    [{ reason: 'PKT_TOO_BIG', ifname: 'flannel.1', daddr: '10.244.2.2' }, 'reason/PKT_TOO_BIG', /ip link show flannel\.1/],
    [{ reason: 'TCP_LISTEN_OVERFLOW', dport: 80 }, 'reason/TCP_LISTEN_OVERFLOW', /somaxconn/],
    // NOT_SPECIFIED and kernels without reasons: the function decides
    [{ reason: 'NOT_SPECIFIED', function: 'ip_rcv_finish_core.isra.0', ifname: 'eth0' }, 'function/ip_rcv_finish_core', /rp_filter/],
    [{ reason: null, function: 'nf_hook_slow' }, 'function/nf_hook_slow', /iptables-save -c/],
    [{ reason: null, function: 'enqueue_to_backlog' }, 'function/enqueue_to_backlog', /netdev_max_backlog/],
    // a reason from a newer kernel falls back to its family, and says so
    [{ reason: 'TCP_SOMETHING_NEW' }, 'family/tcp', /nstat/],
  ])('%j → %s', (ctx, id, check) => {
    const h = filledHint(ctx)!;
    expect(h.id).toBe(id);
    expect(h.checks.join('\n')).toMatch(check);
    expect(formatHint(h)).toMatch(/Likely causes:/);
  });

  it("explains the qdisc's own reasons (qdisc:qdisc_drop, 7.x) as the core reasons they replace", () => {
    // the names of enum qdisc_drop_reason in 7.2's BTF
    const qdisc = ['GENERIC', 'OVERLIMIT', 'CONGESTED', 'MAXFLOWS', 'FLOOD_PROTECTION', 'BAND_LIMIT', 'HORIZON_LIMIT', 'FLOW_LIMIT', 'L4S_STEP_NON_ECN'].map((n) => `QDISC_DROP_${n}`);
    for (const r of qdisc) expect(reasonHint(r)?.id, r).toBe(`reason/${r}`);
    expect(reasonHint('QDISC_DROP_FLOW_LIMIT')?.explain).toBe(reasonHint('FQ_FLOW_LIMIT')?.explain);
    expect(reasonHint('QDISC_DROP_OVERLIMIT')?.explain).toBe(reasonHint('QDISC_OVERLIMIT')?.explain);
  });

  it('has nothing to say about an unknown function without a reason', () => {
    expect(hintFor({ function: 'some_unknown_fn' })).toBeNull();
    expect(functionHint('tcp_v4_rcv')?.id).toBe('function/tcp_v4_rcv');
  });

  it("points TCP's checks at the peer, the received segment's source", () => {
    const h = filledHint({ reason: 'TCP_ABORT_ON_DATA', saddr: '192.168.1.10', daddr: '10.244.2.2', nsPrefix: 'ip netns exec pod ' })!;
    expect(h.checks).toContain('ip netns exec pod ss -tin dst 192.168.1.10');
  });

  it("gives routing checks in the flow's family: ip rule and ip route show list IPv4 alone", () => {
    const v6 = filledHint({ reason: 'IP_INNOROUTES', saddr: 'fd00:10:244:1::2', daddr: 'fd00:10:244:9::9', ifname: 'cni0' })!;
    expect(v6.checks.slice(0, 3)).toEqual(['ip -6 route get fd00:10:244:9::9 from fd00:10:244:1::2 iif cni0', 'sysctl net.ipv6.conf.all.forwarding', 'ip -6 rule show']);
    const v4 = filledHint({ reason: 'IP_INNOROUTES', saddr: '10.244.1.2', daddr: '10.244.9.9', ifname: 'cni0' })!;
    expect(v6.checks.join('\n')).not.toMatch(/^ip r|ipv4/m);
    expect(v4.checks.slice(0, 3)).toEqual(['ip route get 10.244.9.9 from 10.244.1.2 iif cni0', 'sysctl net.ipv4.ip_forward', 'ip rule show']);
    expect(filledHint({ reason: 'BLACKHOLE', daddr: 'fd00::9' })!.checks[0]).toBe('ip -6 route show table all type blackhole');
  });

  it('leaves placeholders readable when the drop lacks the value', () => {
    expect(filledHint({ reason: 'NO_SOCKET' })!.checks[0]).toContain(':PORT');
  });
});
