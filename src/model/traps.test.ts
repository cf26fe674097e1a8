import { describe, expect, it } from 'vitest';
import { decodeTraps, TR, TRAP, TRAP_SIZE, type TrapCount } from './decode.js';
import { TrapDeltas, trapHint, trapLabel, trapPackets, trapRecord, trapsByName } from './traps.js';

/** One struct dt_trap_rec as the addon hands it over. */
function rec(o: { devlink?: bigint; trap: string; group: string; type?: number; bus?: string; device?: string; ifname?: string; ifindex?: number; netns?: number; packets: number; bytes: number }): Buffer {
  const b = Buffer.alloc(TRAP_SIZE);
  b.writeBigUInt64LE(o.devlink ?? 0xffff888001000000n, TR['key.devlink']);
  b.writeBigUInt64LE(0xffffffffc0001000n + BigInt(o.trap.length), TR['key.trap']);
  b.writeUInt32LE(o.ifindex ?? 0, TR['key.ifindex']);
  b.writeUInt32LE(o.netns ?? 0, TR['key.netns']);
  b.writeBigUInt64LE(BigInt(o.packets), TR['val.packets']);
  b.writeBigUInt64LE(BigInt(o.bytes), TR['val.bytes']);
  b.writeUInt32LE(o.type ?? TRAP.DROP, TR['val.type']);
  b.write(o.trap, TR['val.trap'], 'latin1');
  b.write(o.group, TR['val.group'], 'latin1');
  b.write(o.bus ?? 'netdevsim', TR['val.bus'], 'latin1');
  b.write(o.device ?? 'netdevsim10', TR['val.device'], 'latin1');
  b.write(o.ifname ?? '', TR['val.ifname'], 'latin1');
  return b;
}

const trap = (over: Partial<TrapCount> & { trap: string; packets: number }): TrapCount => ({
  group: 'l2_drops', type: 'drop', device: 'netdevsim/netdevsim10', ifindex: 2, ifname: 'eth0', netns: 4026531840, bytes: over.packets * 100, key: `${over.trap}|${over.ifname ?? 'eth0'}`, ...over,
});

describe('decodeTraps', () => {
  it('reads every field of each record, names up to their NUL', () => {
    const buf = Buffer.concat([
      rec({ trap: 'blackhole_route', group: 'l3_drops', ifname: 'eth0', ifindex: 3, netns: 4026531840, packets: 7, bytes: 980 }),
      rec({ trap: 'ttl_value_is_too_small', group: 'l3_exceptions', type: TRAP.EXCEPTION, bus: 'pci', device: '0000:03:00.0', packets: 1, bytes: 60 }),
    ]);
    const [a, b] = decodeTraps(buf);
    expect(a).toMatchObject({ trap: 'blackhole_route', group: 'l3_drops', type: 'drop', device: 'netdevsim/netdevsim10', ifname: 'eth0', ifindex: 3, netns: 4026531840, packets: 7, bytes: 980 });
    expect(b).toMatchObject({ trap: 'ttl_value_is_too_small', type: 'exception', device: 'pci/0000:03:00.0', ifname: '', ifindex: 0, packets: 1 });
    expect(a.key).not.toBe(b.key);
  });

  it('reads nothing from an empty buffer or a partial record', () => {
    expect(decodeTraps(Buffer.alloc(0))).toEqual([]);
    expect(decodeTraps(Buffer.alloc(TRAP_SIZE - 1))).toEqual([]);
  });

  it('takes a name that fills its field whole', () => {
    const long = 'x'.repeat(TR['val.group'] - TR['val.trap']);
    expect(decodeTraps(rec({ trap: long, group: 'g', packets: 1, bytes: 1 }))[0].trap).toBe(long);
  });
});

describe('TrapDeltas', () => {
  it('gives what grew since the read before, largest first, and nothing for a trap that did not', () => {
    const d = new TrapDeltas();
    expect(d.next([trap({ trap: 'a', packets: 3 }), trap({ trap: 'b', packets: 5 })]).map((c) => [c.trap.trap, c.packets, c.bytes])).toEqual([
      ['b', 5, 500],
      ['a', 3, 300],
    ]);
    expect(d.next([trap({ trap: 'a', packets: 3 }), trap({ trap: 'b', packets: 9 })]).map((c) => [c.trap.trap, c.packets])).toEqual([['b', 4]]);
    expect(d.next([trap({ trap: 'a', packets: 3 }), trap({ trap: 'b', packets: 9 })])).toEqual([]);
  });

  it('takes a smaller count for a new tracer\'s, counted from zero', () => {
    const d = new TrapDeltas();
    d.next([trap({ trap: 'a', packets: 10 })]);
    expect(d.next([trap({ trap: 'a', packets: 4 })]).map((c) => [c.packets, c.bytes])).toEqual([[4, 400]]);
    expect(d.next([trap({ trap: 'a', packets: 6 })]).map((c) => c.packets)).toEqual([2]);
  });

  it('starts over after reset (a new tracer counts from zero)', () => {
    const d = new TrapDeltas();
    d.next([trap({ trap: 'a', packets: 10 })]);
    d.reset();
    expect(d.next([trap({ trap: 'a', packets: 2 })]).map((c) => c.packets)).toEqual([2]);
  });
});

describe('trapsByName', () => {
  it('sums a trap over ports, keeps the port when it is the only one, and ranks by packets', () => {
    const rows = trapsByName([
      trap({ trap: 'a', packets: 2, ifname: 'eth0' }),
      trap({ trap: 'a', packets: 3, ifname: 'eth1' }),
      trap({ trap: 'b', packets: 9, ifname: 'eth0' }),
    ]);
    expect(rows.map((r) => [r.trap, r.packets, r.bytes, r.ifname])).toEqual([
      ['b', 9, 900, 'eth0'],
      ['a', 5, 500, ''],
    ]);
    expect(trapPackets(rows)).toBe(14);
  });

  it('keeps the same trap of two devices apart', () => {
    expect(trapsByName([trap({ trap: 'a', packets: 1 }), trap({ trap: 'a', packets: 1, device: 'netdevsim/netdevsim11' })])).toHaveLength(2);
  });
});

describe('trapHint', () => {
  it('says the hardware dropped a drop trap and gives devlink commands for that trap', () => {
    const h = trapHint(trap({ trap: 'blackhole_route', group: 'l3_drops', packets: 1 }));
    expect(h.id).toBe('trap/l3_drops/blackhole_route');
    expect(h.title).toMatch(/hardware dropped packets: devlink trap blackhole_route \(l3_drops\)/);
    expect(h.causes[0]).toMatch(/blackhole/);
    expect(h.checks).toContain('devlink -s trap show netdevsim/netdevsim10 trap blackhole_route');
    expect(h.checks).toContain('ip -s link show eth0');
  });

  it('says an exception was trapped, not dropped, and falls back for a group it does not know', () => {
    const h = trapHint(trap({ trap: 'x', group: 'vendor_group', type: 'exception', packets: 1, ifname: '' }));
    expect(h.title).toMatch(/could not forward packets in hardware and trapped them/);
    expect(h.causes[0]).toMatch(/vendor_group/);
    expect(h.checks.some((c) => c.startsWith('ip -s link'))).toBe(false);
  });

  it('writes a trap out without the kernel\'s key, every other field kept', () => {
    const t = trap({ trap: 'a', packets: 3 });
    const { key: _key, ...rest } = t;
    expect(trapRecord(t)).toEqual(rest);
    expect(trapRecord(t)).not.toHaveProperty('key');
  });

  it('labels a trap with its group, type, port and device', () => {
    expect(trapLabel(trap({ trap: 'a', packets: 1 }))).toBe('a (l2_drops, drop) on eth0 of netdevsim/netdevsim10');
  });
});
