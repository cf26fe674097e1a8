/**
 * A path in words: the FIB outcomes fib_props[] gives as errors, IPv6 route types, qdisc
 * handles, the short form that groups equal paths, and the lines trace prints, from steps as
 * the kernel writes them (decode.ts's pathAt is held to encode.ts in encode.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { STEP, type RawPath, type RawStep } from './decode.js';
import { encodeEvent } from './encode.js';
import { decodeEvent } from './decode.js';
import { formatNs, pathHops, pathLines, pathMembers, routeOf, stepDetail } from './path.js';
import { SymbolTable } from './kallsyms.js';

const step = (over: Partial<RawStep>): RawStep => ({ tsNs: 1000n, kind: STEP.RX, ifindex: 2, netns: 11, ifname: 'b0', detail: 0, result: 0, cpu: 0, reverse: false, fn: 0n, ...over });

describe('stepDetail', () => {
  it.each<[string, Partial<RawStep>, string | null]>([
    ['a device step says nothing more', { kind: STEP.XMIT }, null],
    ['a found route names its device', { kind: STEP.FIB, detail: 254, ifname: 'eth0' }, 'table main: via eth0'],
    ['a blackhole route (EINVAL)', { kind: STEP.FIB, detail: 254, result: -22, ifname: '' }, 'table main: blackhole route (EINVAL)'],
    ['a prohibit route (EACCES) in a numbered table', { kind: STEP.FIB, detail: 100, result: -13, ifname: '' }, 'table 100: prohibit route (EACCES)'],
    ["rp_filter's reverse lookup", { kind: STEP.FIB, detail: 255, reverse: true, ifname: 'lo' }, 'reverse-path check (rp_filter), table local: via lo'],
    ['an IPv6 route type', { kind: STEP.FIB6, detail: 254, result: 7, ifname: 'lo' }, 'table main: unreachable via lo'],
    ['a qdisc handle as tc prints it', { kind: STEP.QDISC_DEQ, detail: 0x10000 }, 'qdisc 1:0'],
  ])('%s', (_name, over, text) => {
    expect(stepDetail(step(over))).toBe(text);
  });
});

describe('the short form and the trace lines', () => {
  const path: RawPath = {
    steps: [
      step({ tsNs: 1_000n, kind: STEP.XMIT_QUEUE, ifname: 'a0', netns: 10 }),
      step({ tsNs: 2_000n, kind: STEP.XMIT, ifname: 'a0', netns: 10 }),
      step({ tsNs: 3_000n, kind: STEP.NETIF_RX, ifname: 'b0', netns: 11 }),
      step({ tsNs: 4_000n, kind: STEP.RX, ifname: 'b0', netns: 11 }),
      step({ tsNs: 5_000n, kind: STEP.FIB, detail: 254, ifname: 'b0', netns: 11 }),
    ],
    cut: 0,
    dstInput: 0xffffffff81000000n,
    dstOutput: 0n,
  };
  const syms = SymbolTable.parse('ffffffff81000000 T ip_local_deliver\nffffffff81000100 T ip_forward\nffffffff82000000 T _etext\n');
  const names = (ns: number) => ({ 10: 'podA', 11: '(host)' })[ns] ?? null;

  it('folds the steps on one device into a hop, names namespaces and ends with the route', () => {
    expect(pathHops(path, routeOf(path, syms), names)).toEqual(['a0 (podA) out', 'b0 (host) in', 'fib: table main: via b0', 'route: local delivery']);
  });

  it('says where steps were cut', () => {
    expect(pathHops({ ...path, cut: 3 }, null, names)).toEqual(['a0 (podA) out', '… 3 steps not kept …', 'b0 (host) in', 'fib: table main: via b0']);
  });

  it('prints each step with its time before the drop', () => {
    const lines = pathLines(path, 15_000n, routeOf(path, syms));
    expect(lines[0]).toBe('    path: 5 steps in 14 µs');
    expect(lines[1]).toBe('         -14 µs  a0 ns:10 handed to the device to send');
    expect(lines[5]).toBe('         -10 µs  IPv4 route lookup: table main: via b0');
    expect(lines[6]).toBe('      route at the drop: local delivery (ip_local_deliver)');
  });

  it('an empty path says why it is empty', () => {
    expect(pathLines({ steps: [], cut: 0, dstInput: 0n, dstOutput: 0n }, 1n, null)).toEqual(['    path: no step seen (the packet matched the filters only at its drop, or was made there)']);
  });

  it('an unknown route function is its address, not a guess', () => {
    expect(routeOf({ ...path, dstInput: 0xffffffff81000010n }, syms)).toEqual({ input: '0xffffffff81000010', output: null, meaning: null });
    expect(routeOf({ ...path, dstInput: 0n }, syms)).toBeNull();
  });

  it('the JSON members keep the steps oldest first, through a record', () => {
    const rec = encodeEvent({ ...decodeEvent(Buffer.alloc(184)), path });
    const base = decodeEvent(rec, 0, rec.length);
    const m = pathMembers(base.path!, syms);
    expect(m.path.map((s) => [s.kind, s.name, s.ifname])).toEqual([
      ['queue', 'net:net_dev_queue', 'a0'],
      ['xmit', 'net:net_dev_start_xmit', 'a0'],
      ['netif_rx', 'net:netif_rx', 'b0'],
      ['rx', 'net:netif_receive_skb', 'b0'],
      ['fib', 'fib:fib_table_lookup', 'b0'],
    ]);
    expect(m.route).toEqual({ input: 'ip_local_deliver', output: null, meaning: 'local delivery' });
  });

  it('a function step is named by its function in the JSON and the lines, and left out of the short form', () => {
    const withFn: RawPath = { ...path, steps: [...path.steps.slice(0, 4), step({ tsNs: 4_500n, kind: STEP.FUNC, fn: 0xffffffff81000100n, ifname: 'b0', netns: 11 }), path.steps[4]] };
    expect(pathMembers(withFn, syms).path[4]).toEqual({ ts_ns: 4500, kind: 'function', name: 'ip_forward', ifname: 'b0', ifindex: 2, netns: 11, cpu: 0, detail: null });
    expect(pathLines(withFn, 15_000n, null, names, syms)[5]).toBe('         -11 µs  ip_forward (b0 (host))');
    expect(pathHops(withFn, null, names)).toEqual(pathHops(path, null, names));
  });

  it.each([
    [800, '800 ns'],
    [14_000, '14 µs'],
    [2_100_000, '2.1 ms'],
    [3_000_000_000, '3.0 s'],
  ])('formatNs(%i) is %s', (ns, text) => {
    expect(formatNs(ns)).toBe(text);
  });
});
