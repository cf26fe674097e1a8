import { describe, expect, it } from 'vitest';
import { filledHint, formatHint, functionHint, hintedReasons, hintFor, NOT_DROPS, reasonHint } from './hints.js';
import { loadAddon } from '../capture/native.js';

describe('hints', () => {
  it("cover every drop reason the running kernel's BTF defines, each with its own entry", () => {
    const reasons = loadAddon().reasons() ?? [];
    expect(reasons.length).toBeGreaterThan(50);
    const missing = reasons.map(([, name]) => name).filter((n) => !NOT_DROPS.has(n) && !reasonHint(n));
    expect(missing).toEqual([]);
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

  it('has nothing to say about an unknown function without a reason', () => {
    expect(hintFor({ function: 'some_unknown_fn' })).toBeNull();
    expect(functionHint('tcp_v4_rcv')?.id).toBe('function/tcp_v4_rcv');
  });

  it('leaves placeholders readable when the drop lacks the value', () => {
    expect(filledHint({ reason: 'NO_SOCKET' })!.checks[0]).toContain(':PORT');
  });
});

describe('rowContext', () => {
  it('reads reason, function, interface, namespace and flow from a table row', async () => {
    const { rowContext } = await import('./hints.js');
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
