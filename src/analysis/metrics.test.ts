import { describe, expect, it } from 'vitest';
import type { Naming } from '../model/naming.js';
import type { CountRecord } from '../model/decode.js';
import { DropMetrics } from './metrics.js';

const naming: Naming = {
  location: (a) => ({ symbol: `f${a}+0x1`, function: `f${a}`, module: null }),
  reason: (c) => (c === 3 ? 'NO_SOCKET' : `R${c}`),
};
const rec = (location: number, packets: number, netns = 1): CountRecord => ({ location: BigInt(location), reason: 3, ifindex: 1, netns, packets, bytes: packets * 10 });
const metrics = (max = 100) =>
  new DropMetrics(naming, () => 'lo', (ns) => (ns === 7 ? { namespace: 'prod', pod: 'api-1', uid: 'u', container: 'c'.repeat(64), runtime: 'containerd' } : null), max);

describe('DropMetrics', () => {
  it('turns cumulative kernel counts into totals per label set', () => {
    const m = metrics();
    m.update([rec(1, 5), rec(2, 1)]);
    m.update([rec(1, 8), rec(2, 1)]);
    expect(m.all().map((s) => [s.labels.function, s.packets, s.bytes])).toEqual([
      ['f1', 8, 80],
      ['f2', 1, 10],
    ]);
  });

  it('never decreases: a kernel counter that restarts (a new tracer) counts as a reset', () => {
    const m = metrics();
    m.update([rec(1, 100)]);
    m.update([rec(1, 3)]);
    m.update([rec(1, 5)]);
    expect(m.all()[0].packets).toBe(105);
  });

  it('labels pods, with a short container id', () => {
    const m = metrics();
    m.update([rec(1, 2, 7)]);
    expect(m.all()[0].labels).toMatchObject({ namespace: 'prod', pod: 'api-1', container: 'cccccccccccc', netns: '7', reason: 'NO_SOCKET', interface: 'lo' });
  });

  it('a flood of distinct series never grows past the cap; the rest is counted in "other"', () => {
    const m = metrics(10);
    const recs = Array.from({ length: 500 }, (_, i) => rec(i + 1, 2));
    m.update(recs);
    m.update(recs.map((r) => ({ ...r, packets: 3 })));
    const all = m.all();
    expect(all).toHaveLength(10);
    expect(all.filter((s) => s.labels.reason === 'other')).toHaveLength(1);
    expect(all.reduce((n, s) => n + s.packets, 0)).toBe(1500);
    expect(m.folded).toBe(all.find((s) => s.labels.reason === 'other')!.packets);
  });
});

describe('DropMetrics over weeks: what is gone expires, every drop stays counted', () => {
  const sum = (m: DropMetrics) => m.all().reduce((n, s) => n + s.packets, 0) + m.expiredTotals().reduce((n, s) => n + s.packets, 0);

  it('a label set idle for the grace period leaves, its drops move to the expired totals', () => {
    const m = metrics();
    m.update([rec(1, 5, 11), rec(2, 3, 12)], 0);
    m.update([rec(1, 5, 11), rec(2, 9, 12)], 60_000);
    expect(m.expire(61_000, 60_000)).toBe(1);
    expect(m.all().map((s) => s.labels.netns)).toEqual(['12']);
    expect(m.expiredTotals()).toEqual([{ labels: { reason: 'NO_SOCKET', function: 'f1' }, packets: 5, bytes: 50 }]);
    expect(sum(m)).toBe(14);
    // the same label set dropping again is a new series, counted from its new drops only
    m.update([rec(1, 7, 11), rec(2, 9, 12)], 62_000);
    expect(m.all().find((s) => s.labels.netns === '11')!.packets).toBe(2);
    expect(sum(m)).toBe(16);
  });

  it('idle kernel keys are handed out to forget; their last drops and a hot-slot remainder are credited once', () => {
    const m = metrics();
    m.update([rec(1, 5, 11), rec(2, 3, 12)], 0);
    m.update([rec(1, 5, 11), rec(2, 4, 12)], 50_000);
    const idle = m.idleKeys(60_000, 60_000);
    expect(idle.map((k) => k.netns)).toEqual([11]);
    // the map held 4 more in the hash than last read (dropped just before the delete), 2 stay in a hot slot
    m.forgotten([{ ...idle[0], packets: 7, bytes: 70 }], [{ ...idle[0], packets: 2, bytes: 20 }], 60_000);
    expect(m.all().find((s) => s.labels.netns === '11')!.packets).toBe(9);
    // later reads show only the hot-slot remainder: no reset, no double count
    m.update([{ ...idle[0], packets: 2, bytes: 20 }, rec(2, 4, 12)], 61_000);
    m.update([{ ...idle[0], packets: 3, bytes: 30 }, rec(2, 4, 12)], 62_000);
    expect(m.all().find((s) => s.labels.netns === '11')!.packets).toBe(10);
    // a key taken out whole is forgotten: it counts from zero if it comes back
    m.forgotten([{ ...rec(2, 4, 12) }], [], 63_000);
    expect(m.keyCount).toBe(1);
    m.update([rec(2, 1, 12)], 64_000);
    expect(m.all().find((s) => s.labels.netns === '12')!.packets).toBe(5);
  });

  it('500 namespaces come and go: series and keys stay bounded, the sum stays exact', () => {
    const m = metrics(2000);
    let kernel = 0;
    let live: CountRecord[] = [];
    for (let t = 0, ns = 100; ns < 600; ns++, t += 1000) {
      live.push(rec(1, 0, ns));
      live = live.map((r) => ({ ...r, packets: r.packets + (r.netns === ns ? 3 : 0), bytes: r.bytes + (r.netns === ns ? 30 : 0) }));
      kernel += 3;
      m.update(live, t);
      const idle = m.idleKeys(t, 10_000);
      if (idle.length) {
        const gone = new Set(idle.map((k) => k.netns));
        m.forgotten(live.filter((r) => gone.has(r.netns)), [], t);
        live = live.filter((r) => !gone.has(r.netns));
      }
      m.expire(t, 10_000);
      expect(m.all().length).toBeLessThanOrEqual(12);
      expect(m.keyCount).toBeLessThanOrEqual(12);
    }
    expect(sum(m)).toBe(kernel);
    expect(m.expiredSeries).toBeGreaterThan(480);
  });
});

describe('interface names from ip -o link', () => {
  it('parses indexes and names, dropping the @peer suffix', async () => {
    const { parseIpLink } = await import('../host/netns.js');
    const text = '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n4: eth0@if5: <BROADCAST,MULTICAST,UP> mtu 1500\n9: flannel.1: <BROADCAST> mtu 1450\n';
    expect([...parseIpLink(text)]).toEqual([[1, 'lo'], [4, 'eth0'], [9, 'flannel.1']]);
  });
});

describe('veth peers from ip -d link', () => {
  it('reads the peer namespace by name or by nsid', async () => {
    const { parseVethPeers, parseNsids } = await import('../host/netns.js');
    const link =
      '1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue\\    link/loopback 00:00:00:00:00:00\n' +
      '5: vethA1@if2: <BROADCAST,UP> mtu 1500 master cni0\\    link/ether b6:d0:ae:d3:1c:13 link-netns dtlab-podA1 promiscuity 1 \\    veth \\    bridge_slave\n' +
      '7: veth9c2e1f3a@if3: <BROADCAST,UP> mtu 1450 master cni0\\    link/ether 4a:1b:2c:3d:4e:5f link-netnsid 4 promiscuity 1 \\    veth\n' +
      '8: cni0: <BROADCAST,UP> mtu 1450\\    link/ether 02:42:ac:11:00:01 \\    bridge\n';
    expect([...parseVethPeers(link)]).toEqual([
      [5, { name: 'dtlab-podA1' }],
      [7, { nsid: 4 }],
    ]);
    expect([...parseNsids('nsid 0 (iproute2 netns name: dtlab-hostB)\nnsid 4 (iproute2 netns name: cni-1f2e3d4c)\n')]).toEqual([
      [0, 'dtlab-hostB'],
      [4, 'cni-1f2e3d4c'],
    ]);
  });
});

describe('the hardware trap series', () => {
  it('exports each trap of a device and port with its exact count, and a port the driver did not name as "-"', async () => {
    const { metricsRegistry } = await import('./serving.js');
    const zero = { delivered: 0, lost: 0, mapFull: 0, seen: 0, droppedInProcess: 0, stackFailures: 0, sampledOut: 0, missed: 0, readError: 0, closed: false };
    const trap = { group: 'l3_drops', type: 'drop' as const, device: 'pci/0000:03:00.0', ifindex: 3, netns: 1, bytes: 0 };
    const registry = metricsRegistry(metrics(), () => zero, { version: 'x', kernel: 'x', attach: 'x' }, () => [
      { ...trap, trap: 'blackhole_route', ifname: 'swp1', packets: 12 },
      { ...trap, trap: 'tail_drop', group: 'buffer_drops', ifname: '', packets: 3 },
    ]);
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'droptrace_hardware_trap_drops_total')!;
    expect(m.type).toBe('counter');
    expect(m.values.map((v) => [v.labels, v.value])).toEqual([
      [{ device: 'pci/0000:03:00.0', trap: 'blackhole_route', group: 'l3_drops', type: 'drop', interface: 'swp1' }, 12],
      [{ device: 'pci/0000:03:00.0', trap: 'tail_drop', group: 'buffer_drops', type: 'drop', interface: '-' }, 3],
    ]);
  });
});
