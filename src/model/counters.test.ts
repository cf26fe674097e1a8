import { describe, expect, it } from 'vitest';
import { counterRule } from './counters.js';

describe('counter rules', () => {
  it.each([
    ['TcpExt:ListenOverflows', 'counter/ListenOverflows', null],
    ['TcpExt:ListenDrops', 'counter/ListenOverflows', null],
    ['Udp:RcvbufErrors', 'counter/UdpRcvbufErrors', null],
    ['dev:eth0:rx_missed', 'counter/dev-rx', 'eth0'],
    ['dev:veth1:tx_dropped', 'counter/dev-tx', 'veth1'],
    ['qdisc:cni0', 'counter/qdisc', 'cni0'],
    ['ethtool:eth0:rx_no_buffer_count', 'counter/ethtool', 'eth0'],
    ['softnet:squeezed', 'counter/softnet-squeeze', null],
  ])('%s falls under %s', (key, id, iface) => {
    const hit = counterRule(key)!;
    expect(hit.rule.id).toBe(id);
    const h = hit.rule.hint(hit.m, 'ip netns exec ns1 ');
    expect(h.checks.length).toBeGreaterThan(0);
    if (iface) expect(h.title).toContain(iface);
    if (!key.startsWith('softnet')) expect(h.checks[0]).toMatch(/^ip netns exec ns1 /);
  });

  it('counters that are not drops fall under none', () => {
    for (const key of ['Udp:InDatagrams', 'TcpExt:TCPTimeouts', 'dev:eth0:rx_packets', 'Ip:Forwarding']) expect(counterRule(key)).toBeNull();
  });
});
