import { describe, expect, it } from 'vitest';
import { Aggregator } from './aggregate.js';
import { rawFlowKey } from './flows.js';
import { sparkline } from '../views/columns.js';
import type { Naming } from '../model/naming.js';
import { decodeEvent, EVENT_SIZE, type CountRecord } from '../model/decode.js';
import { toRecord } from '../model/drop.js';
import { ReasonTable } from '../model/reasons.js';
import { eventRecord } from '../../test/helpers/events.js';

const SYMS: Record<string, { symbol: string; function: string; module: string | null }> = {
  a: { symbol: 'nft_do_chain+0x3e8', function: 'nft_do_chain', module: null },
  b: { symbol: '__udp4_lib_rcv+0x4bc', function: '__udp4_lib_rcv', module: null },
  c: { symbol: 'nft_do_chain+0x100', function: 'nft_do_chain', module: null },
};
const naming: Naming = {
  location: (addr) => SYMS[addr.toString(16)],
  reason: (code) => ({ 12: 'NETFILTER_DROP', 3: 'NO_SOCKET' })[code] ?? String(code),
  netns: (ino) => (ino === 4026532177 ? 'host' : null),
  pod: (ino) => (ino === 4026532177 ? 'default/web-0' : null),
};

const rec = (location: bigint, reason: number, ifindex: number, netns: number, packets: number): CountRecord => ({
  location,
  reason,
  ifindex,
  netns,
  packets,
  bytes: packets * 60,
});

/** A TCP SYN 10.244.1.2 > 10.244.1.1:2483 dropped at site a on cni0, as the kernel sends it. */
function rawDrop(sport = 40000): Buffer {
  return eventRecord({ location: 0xan, reason: 12, flags: 1 | 2 | 4, ipver: 4, l4: 6, sport, dport: 2483, tcp: 2, ifname: 'cni0', ifindex: 2, netns: 4026532177 });
}

const REASONS = new ReasonTable([[12, 'NETFILTER_DROP'], [3, 'NO_SOCKET']], 'btf');
const rawToRecord = (reasons: ReasonTable) => (buf: Buffer, i: number, stride: number) => toRecord(decodeEvent(buf, i, stride), null, reasons, 0n);

/** Events at 10 s (eventRecord stamps 1 s), one batch each: nothing for the folder to fold. */
function feed(agg: Aggregator, records: Buffer[], reasons = REASONS): void {
  for (const r of records) agg.addBatch(r, r.length, 1, 9000, rawToRecord(reasons));
}

/** A steady 10 drops/s at a, 2 drops/s at b, sampled every 500 ms for `seconds`. */
function steady(seconds: number): Aggregator {
  const agg = new Aggregator(naming);
  agg.addCounts(0, []);
  for (let t = 500; t <= seconds * 1000; t += 500) {
    agg.addCounts(t, [rec(0xan, 12, 2, 4026532177, (t / 1000) * 10), rec(0xbn, 3, 1, 4026531840, (t / 1000) * 2)]);
  }
  return agg;
}

describe('Aggregator', () => {
  it.each([
    ['location', ['nft_do_chain+0x3e8', '__udp4_lib_rcv+0x4bc'], [200, 40]],
    ['function', ['nft_do_chain', '__udp4_lib_rcv'], [200, 40]],
    ['reason', ['NETFILTER_DROP', 'NO_SOCKET'], [200, 40]],
    ['interface', ['if2', 'if1'], [200, 40]],
    ['netns', ['4026532177 (host)', '4026531840'], [200, 40]],
    ['pod', ['default/web-0', '(no pod)'], [200, 40]],
  ] as const)('groups exact counts by %s', (by, keys, totals) => {
    const s = steady(20).snapshot(20_000, by);
    expect(s.rows.map((r) => r.key)).toEqual(keys);
    expect(s.rows.map((r) => r.total)).toEqual(totals);
    expect(s.total).toBe(240);
  });

  it('the weighted rate keeps a burst visible for a few seconds, then lets it fade', () => {
    const agg = new Aggregator(naming);
    agg.addCounts(0, []);
    agg.addCounts(1000, [rec(0xan, 12, 2, 1, 100)]);
    const at = (t: number) => {
      agg.addCounts(t, [rec(0xan, 12, 2, 1, 100)]);
      return agg.snapshot(t, 'location').rows[0];
    };
    const r2 = at(2000);
    const r5 = at(5000);
    const r30 = at(30_000);
    expect(r2.rate1).toBe(0);
    expect(r2.rateAvg).toBeGreaterThan(10);
    expect(r5.rateAvg).toBeLessThan(r2.rateAvg);
    expect(r5.rateAvg).toBeGreaterThan(2);
    expect(r30.rateAvg).toBeLessThan(0.1);
  });

  it('computes 1 s and 10 s rates and a 60-point history from the samples', () => {
    const s = steady(20).snapshot(20_000, 'location');
    const a = s.rows[0];
    expect(a.rate1).toBeCloseTo(10, 5);
    expect(a.rate10).toBeCloseTo(10, 5);
    expect(a.history).toHaveLength(60);
    expect(a.history.slice(-20)).toEqual(Array(20).fill(10));
    expect(a.history.slice(0, 40)).toEqual(Array(40).fill(0));
    expect(s.rate1).toBeCloseTo(12, 5);
  });

  it('rates fall to zero when drops stop while totals stay', () => {
    const agg = steady(5);
    agg.addCounts(16_000, [rec(0xan, 12, 2, 4026532177, 50), rec(0xbn, 3, 1, 4026531840, 10)]);
    const s = agg.snapshot(16_000, 'location');
    expect(s.rows[0].total).toBe(50);
    expect(s.rows[0].rate1).toBe(0);
    expect(s.rows[0].rate10).toBe(0);
  });

  it('merges several kernel keys into one row and lists what is inside it', () => {
    const agg = new Aggregator(naming);
    agg.addCounts(0, []);
    agg.addCounts(1000, [rec(0xan, 12, 2, 4026532177, 5), rec(0xcn, 12, 3, 4026532177, 7)]);
    const s = agg.snapshot(1000, 'function');
    expect(s.rows).toHaveLength(1);
    expect(s.rows[0]).toMatchObject({ key: 'nft_do_chain', total: 12 });
    expect(s.rows[0].locations).toEqual([
      { key: 'nft_do_chain+0x100', count: 7 },
      { key: 'nft_do_chain+0x3e8', count: 5 },
    ]);
  });

  it('counts stay exact when events are lost or sampled: details come from events only', () => {
    const agg = new Aggregator(naming);
    agg.addCounts(0, []);
    agg.addCounts(1000, [rec(0xan, 12, 2, 4026532177, 1000)]);
    // only 3 of the 1000 drops reached us as events
    feed(agg, [rawDrop(), rawDrop(), rawDrop(40001)]);
    const loc = agg.snapshot(1000, 'location').rows[0];
    expect(loc.total).toBe(1000);
    expect(loc.exact).toBe(true);
    expect(loc.interfaces[0].key).toBe('cni0');
    expect(loc.flows[0]).toEqual({ key: 'TCP 10.244.1.2 > 10.244.1.1:2483', count: 3 });
    const flow = agg.snapshot(1000, 'flow').rows[0];
    expect(flow).toMatchObject({ key: 'TCP 10.244.1.2 > 10.244.1.1:2483', total: 3, exact: false });
    expect(flow.locations[0].key).toBe('nft_do_chain+0x3e8');
  });

  it('clear starts from zero while the kernel keeps counting', () => {
    const agg = steady(10);
    agg.clear(10_000);
    expect(agg.snapshot(10_000).rows).toEqual([]);
    agg.addCounts(11_000, [rec(0xan, 12, 2, 4026532177, 110), rec(0xbn, 3, 1, 4026531840, 22)]);
    const s = agg.snapshot(11_000, 'location', 'count');
    expect(s.rows.map((r) => r.total)).toEqual([10, 2]);
    expect(s.rows[0].rate1).toBeCloseTo(10, 5);
  });

  it.each([
    ['count', ['b', 'a']],
    ['name', ['b', 'a']], // '__udp4…' sorts before 'nft…'
    ['rate', ['a', 'b']],
    ['last', ['a', 'b']],
  ] as const)('sorts by %s', (sortBy, order) => {
    // b's burst is 19 s old and has faded; a drops now
    const agg = new Aggregator(naming);
    agg.addCounts(0, []);
    agg.addCounts(1000, [rec(0xan, 12, 2, 1, 1), rec(0xbn, 3, 1, 1, 50)]);
    agg.addCounts(19_000, [rec(0xan, 12, 2, 1, 1), rec(0xbn, 3, 1, 1, 50)]);
    agg.addCounts(20_000, [rec(0xan, 12, 2, 1, 30), rec(0xbn, 3, 1, 1, 50)]);
    const keys = agg.snapshot(20_000, 'location', sortBy).rows.map((r) => (r.key.startsWith('nft') ? 'a' : 'b'));
    expect(keys).toEqual(order);
  });

  it('keeps a bounded list of recent drops', () => {
    const agg = new Aggregator(naming, 10);
    for (let i = 0; i < 25; i++) feed(agg, [rawDrop(i)]);
    const recent = agg.snapshot(0).recent;
    expect(recent).toHaveLength(10);
    expect(recent[9].sport).toBe(24);
  });
});

describe('helpers', () => {
  const v6 = (hex: string) => [...Buffer.from(hex, 'hex')];
  const drop = (over: Partial<Parameters<typeof eventRecord>[0]>) =>
    decodeEvent(eventRecord({ location: 0xffffffff81000000n, reason: 3, flags: 1 | 2, ipver: 4, l4: 6, sport: 40000, dport: 80, tcp: 0, ifname: 'eth0', ...over }));
  it.each([
    ['TCP over IPv4', drop({ saddr: [10, 0, 0, 1], daddr: [10, 0, 0, 2] }), 'TCP 10.0.0.1 > 10.0.0.2:80'],
    ['UDP over IPv6', drop({ ethertype: 0x86dd, ipver: 6, l4: 17, dport: 53, saddr: v6('fd000000000000000000000000000001'), daddr: v6('fd000000000000000000000000000002') }), 'UDP fd00::1 > [fd00::2]:53'],
    ['v4-mapped IPv6', drop({ ethertype: 0x86dd, ipver: 6, l4: 17, dport: 53, saddr: v6('00000000000000000000ffff0a000001'), daddr: v6('00000000000000000000ffff0a000002') }), 'UDP ::ffff:10.0.0.1 > [::ffff:10.0.0.2]:53'],
    ['ICMP', drop({ l4: 1, saddr: [10, 0, 0, 1], daddr: [10, 0, 0, 2] }), 'ICMP 10.0.0.1 > 10.0.0.2'],
    ['ARP', drop({ ethertype: 0x0806, flags: 0, ipver: 0 }), 'ARP'],
  ])('rawFlowKey of %s', (_name, d, key) => {
    expect(rawFlowKey(d)).toBe(key);
  });

  it('rawFlowKey of a tunnelled drop: the inner flow, then the tunnel and the outer flow', () => {
    const inner = { tunnel: 1, vni: 1, flags: 1 | 2, ipver: 4, l4: 6, sport: 40000, dport: 2483, tcp: 0x02, saddr: [10, 244, 2, 2], daddr: [10, 244, 1, 1] };
    const outer = { l4: 17, dport: 8472, saddr: [192, 168, 1, 11], daddr: [192, 168, 1, 10] };
    expect(rawFlowKey(drop({ ...outer, inner }))).toBe('TCP 10.244.2.2 > 10.244.1.1:2483 in vxlan 1 (UDP 192.168.1.11 > 192.168.1.10:8472)');
    expect(rawFlowKey(drop({ ...outer, inner: { ...inner, flags: 4, ipver: 0 } }))).toBe('inner headers not read in vxlan 1 (UDP 192.168.1.11 > 192.168.1.10:8472)');
  });

  it.each([
    [[0, 0, 0, 0], '    '],
    [[1, 2, 4, 8], '▁▂▄█'],
    [[5, 5], '██'],
  ])('sparkline %j', (h, s) => {
    expect(sparkline(h, h.length)).toBe(s);
  });
});

describe('a batch gives what its records one at a time give', () => {
  it('same flows, interfaces and recent list from a batch as from its records one by one', () => {
    const recs = [0, 1, 2].map((i) => eventRecord({ location: 0xan, reason: 12, flags: 1 | 2 | 4, ipver: 4, l4: 6, sport: 40000 + i, dport: 2483, tcp: 0, ifname: 'cni0', ifindex: 2, netns: 4026532177, tsNs: 5_000_000_000n }));
    const oneByOne = new Aggregator(naming);
    feed(oneByOne, recs);
    const batched = new Aggregator(naming);
    batched.addBatch(Buffer.concat(recs), recs[0].length, recs.length, 9000, rawToRecord(REASONS));
    for (const agg of [oneByOne, batched]) agg.addCounts(20_000, [rec(0xan, 12, 2, 4026532177, 3)]);
    const a = oneByOne.snapshot(20_000, 'flow');
    const z = batched.snapshot(20_000, 'flow');
    expect(z.rows.map((r) => [r.key, r.total, r.interfaces, r.lastSeen])).toEqual(a.rows.map((r) => [r.key, r.total, r.interfaces, r.lastSeen]));
    expect(z.rows[0]).toMatchObject({ key: 'TCP 10.244.1.2 > 10.244.1.1:2483', total: 3, lastSeen: 14_000 });
    expect(z.recent.map((r) => r.sport)).toEqual([40000, 40001, 40002]);
  });

  it('the recent list from raw batches is the last records in order, across ring wraps, snapshots and clear', () => {
    const reasons = new ReasonTable([[3, 'NO_SOCKET']], 'btf');
    const mk = (sport: number) => eventRecord({ location: 0xbn, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport, dport: 9, tcp: 0, ifname: 'lo', ifindex: 1, netns: 1, tsNs: 5_000_000_000n });
    const viaRecords = new Aggregator(naming, 7);
    const viaBatch = new Aggregator(naming, 7);
    let sport = 1;
    // batch sizes that fill, wrap and overrun a ring of 7, with snapshots in between
    for (const [n, snap] of [[3, false], [5, true], [1, false], [9, true], [2, false], [6, false], [4, true], [13, true]] as const) {
      const recs = Array.from({ length: n }, () => mk(sport++));
      const batch = Buffer.concat(recs);
      feed(viaRecords, recs, reasons);
      viaBatch.addBatch(batch, recs[0].length, n, 0, rawToRecord(reasons));
      if (snap) {
        const want = viaRecords.snapshot(10_000).recent.map((r) => r.sport);
        expect(viaBatch.snapshot(10_000).recent.map((r) => r.sport)).toEqual(want);
        expect(want).toHaveLength(7);
        expect(want[6]).toBe(sport - 1);
      }
    }
    viaBatch.clear(20_000);
    expect(viaBatch.snapshot(20_000).recent).toEqual([]);
    viaBatch.addBatch(mk(999), EVENT_SIZE, 1, 0, rawToRecord(reasons));
    expect(viaBatch.snapshot(20_000).recent.map((r) => r.sport)).toEqual([999]);
  });
});

describe('sampled events (--sample N)', () => {
  it('flow rows count each event as N drops; rows from the kernel counts stay exact', () => {
    const reasons = new ReasonTable([[3, 'NO_SOCKET']], 'btf');
    const one = eventRecord({ location: 0xbn, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 1000, dport: 9, tcp: 0, ifname: 'lo', ifindex: 1, netns: 4026532177, tsNs: 5_000_000_000n });
    const batch = Buffer.concat([one, one, one]);
    const agg = new Aggregator(naming, undefined, 7);
    agg.addBatch(batch, one.length, 3, 0, rawToRecord(reasons));
    agg.addCounts(10_000, [rec(0xbn, 3, 1, 4026532177, 22)]);
    const flows = agg.snapshot(10_000, 'flow').rows;
    expect(flows.map((r) => [r.key, r.total, r.bytes, r.exact])).toEqual([['UDP 10.244.1.2 > 10.244.1.1:9', 21, 21 * 60, false]]);
    expect(agg.snapshot(10_000, 'reason').rows.map((r) => [r.key, r.total, r.exact])).toEqual([['NO_SOCKET', 22, true]]);
  });
});

describe('interface names asked from the namespace', () => {
  it('names a count-only row by asking once, and remembers a miss as ifN', () => {
    const asked: string[] = [];
    const agg = new Aggregator({ ...naming, interface: (ns, ifi) => (asked.push(`${ns}|${ifi}`), ifi === 2 ? 'eth0' : null) });
    agg.addCounts(1000, [rec(0xan, 3, 2, 4026532177, 4), rec(0xan, 3, 9, 4026532177, 1)]);
    for (let i = 0; i < 3; i++) {
      expect(agg.snapshot(1000, 'interface').rows.map((r) => r.key).sort()).toEqual(['eth0', 'if9']);
    }
    expect(asked.sort()).toEqual(['4026532177|2', '4026532177|9']);
  });
});

describe('expected noise (src/model/benign.ts)', () => {
  const names: Naming = {
    location: (addr) => ({ symbol: addr === 0xdn ? 'ip6_mc_input+0x15e' : '__udp4_lib_rcv+0x4bc', function: addr === 0xdn ? 'ip6_mc_input' : '__udp4_lib_rcv', module: null }),
    reason: (code) => ({ 2: 'NOT_SPECIFIED', 3: 'NO_SOCKET' })[code] ?? String(code),
  };
  const reasons = new ReasonTable([[2, 'NOT_SPECIFIED'], [3, 'NO_SOCKET']], 'btf');
  const mdns = (dport = 5353, daddr = [224, 0, 0, 251]) => eventRecord({ location: 0xbn, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 5353, dport, tcp: 0, ifname: 'eth0', ifindex: 2, netns: 1, daddr });

  it('folds a site whose every drop matched, counted in one line; shows it with show', () => {
    const agg = new Aggregator(names);
    agg.addCounts(0, []);
    feed(agg, [mdns(), mdns()], reasons);
    // ip6_mc_input decides by itself: folded even with no event seen
    agg.addCounts(1000, [rec(0xbn, 3, 2, 1, 2), rec(0xdn, 2, 3, 1, 40)]);
    const s = agg.snapshot(1000, 'location');
    expect(s.rows).toEqual([]);
    expect(s.total).toBe(42);
    expect(s.benign.map((b) => [b.rule, b.total])).toEqual([['ipv6-multicast-not-joined', 40], ['multicast-udp-no-listener', 2]]);
    expect(s.recent).toEqual([]);
    const shown = agg.snapshot(1000, 'location', 'count', 'show');
    expect(shown.rows.map((r) => [r.key, r.total, r.benign])).toEqual([['ip6_mc_input+0x15e', 40, 'ipv6-multicast-not-joined'], ['__udp4_lib_rcv+0x4bc', 2, 'multicast-udp-no-listener']]);
    expect(shown.benign).toEqual([]);
    expect(shown.recent).toHaveLength(2);
  });

  it('one unicast drop at the same site keeps the whole site a row: a rule never hides a real drop', () => {
    const agg = new Aggregator(names);
    agg.addCounts(0, []);
    feed(agg, [mdns(), mdns(53, [10, 0, 0, 1])], reasons);
    agg.addCounts(1000, [rec(0xbn, 3, 2, 1, 2)]);
    const s = agg.snapshot(1000, 'location');
    expect(s.rows.map((r) => [r.key, r.total, r.benign])).toEqual([['__udp4_lib_rcv+0x4bc', 2, null]]);
    expect(s.benign).toEqual([]);
  });

  it('a site needing the packet, seen only as a count, stays a row', () => {
    const agg = new Aggregator(names);
    agg.addCounts(0, []);
    agg.addCounts(1000, [rec(0xbn, 3, 2, 1, 7)]);
    expect(agg.snapshot(1000, 'location').rows.map((r) => r.total)).toEqual([7]);
  });
});
