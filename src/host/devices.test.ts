import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEthtoolStats, parseLinkStats, parseQdiscDrops } from './devices.js';
import { parseFullListeners } from './netns.js';

describe('device drop counters', () => {
  it('rtnetlink stats64 of every interface, from ip -s -s -j link', () => {
    const json = JSON.stringify([
      { ifname: 'lo', stats64: { rx: { dropped: 0, over_errors: 0, missed_errors: 0, fifo_errors: 0 }, tx: { dropped: 0, errors: 0, carrier_errors: 0 } } },
      { ifname: 'eth0', stats64: { rx: { dropped: 16390, missed_errors: 12 }, tx: { dropped: 3 } } },
    ]);
    const m = parseLinkStats(json);
    expect(m.get('dev:eth0:rx_dropped')).toBe(16390);
    expect(m.get('dev:eth0:rx_missed')).toBe(12);
    expect(m.get('dev:eth0:tx_dropped')).toBe(3);
    expect(m.get('dev:lo:rx_dropped')).toBe(0);
    expect(parseLinkStats('not json').size).toBe(0);
  });

  it("qdisc drops per interface, from tc -s -j qdisc: the root's, which include its children's, once", () => {
    // htb 1: root over pfifo 10: (limit 5p) and a clsact, after 192 drops at the pfifo: both count them
    const json = readFileSync(new URL('../../test/fixtures/host/tc-qdisc-htb-pfifo.json', import.meta.url), 'utf8');
    expect([...parseQdiscDrops(json)]).toEqual([['qdisc:lo', 0], ['qdisc:eth0', 192]]);
  });

  it('the drop-like statistics of ethtool -S, and nothing else', () => {
    const text = 'NIC statistics:\n     rx_packets: 100\n     rx_missed_errors: 7\n     rx_no_buffer_count: 2\n     tx_dropped: 1\n     rx_queue_0_drops: 4\n';
    expect([...parseEthtoolStats('eth0', text)]).toEqual([['ethtool:eth0:rx_missed_errors', 7], ['ethtool:eth0:rx_no_buffer_count', 2], ['ethtool:eth0:tx_dropped', 1], ['ethtool:eth0:rx_queue_0_drops', 4]]);
  });
});

describe('full accept queues', () => {
  it('a listener whose Recv-Q (waiting connections) exceeds its Send-Q (backlog)', () => {
    const text = 'LISTEN 2      1      0.0.0.0:2483      0.0.0.0:*\nLISTEN 0      4096   127.0.0.1:9090    0.0.0.0:*\n';
    expect(parseFullListeners(text)).toEqual([{ local: '0.0.0.0:2483', queued: 2, backlog: 1 }]);
    expect(parseFullListeners('0 128 [::]:22 [::]:*\n5 4 [::]:8080 [::]:*\n')).toEqual([{ local: '[::]:8080', queued: 5, backlog: 4 }]);
  });
});
