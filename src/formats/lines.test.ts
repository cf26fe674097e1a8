import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeEvent, EV, EVENT_SIZE, EVENT_SIZE_V1, STEP } from '../model/decode.js';
import { encodeEvent } from '../model/encode.js';
import { pathLines, routeOf } from '../model/path.js';
import { endpoint, icmpName, innerText, socketText, toRecord, type CgroupOwner, type DropRecord } from '../model/drop.js';
import { SymbolTable } from '../model/kallsyms.js';
import { ReasonTable } from '../model/reasons.js';
import { eventRecord as event } from '../../test/helpers/events.js';
import { WallClock, writeJsonLine, writeTextLine, type PodFields } from './lines.js';
import { BLOCK } from './record.js';
import { widenRecords } from './recording.js';
import { scanRecording } from './scan.js';
import { ByteSink } from './sink.js';


/** The oracle for writeTextLine: the text line of a record, from its fields (and the IP version the record had), the obvious way. */
function formatLine(r: DropRecord, ipver: number): string {
  const at = (addr: string | null, port: number | null) => (addr ? endpoint(addr, ipver, port) : '?');
  const time = r.time.slice(11, 23);
  const where = r.module ? `${r.symbol} [${r.module}]` : r.symbol;
  const parts = [time, where.padEnd(28), (r.reason ?? '-').padEnd(16), (r.ifname ?? '-').padEnd(10), `ns:${r.netns}`];
  let flow = r.protocol;
  if (r.l4) flow += ` ${r.l4}`;
  if (r.saddr) flow += ` ${at(r.saddr, r.sport)} > ${at(r.daddr, r.dport)}`;
  if (r.tcpFlags) flow += ` [${r.tcpFlags}]`;
  if (r.icmpType !== null) {
    const name = icmpName(r.l4 === 'ICMPv6' ? 58 : 1, r.icmpType, r.icmpCode ?? 0);
    flow += ` type ${r.icmpType} code ${r.icmpCode}${name.startsWith('type ') ? '' : ` (${name})`}`;
  }
  if (r.inner) flow += ` [${innerText(r.inner)}]`;
  parts.push(flow, `len ${r.len}`);
  if (r.pod) parts.push(`pod ${r.namespace ?? '?'}/${r.pod}`);
  if (r.socket) parts.push(socketText(r.socket));
  return parts.join(' ');
}

describe('the text line', () => {
  it('reads as site, reason, interface, namespace, flow, length', () => {
    const syms = SymbolTable.parse('ffffffff81f63000 T nf_hook_slow\nffffffff81f64000 T next\n');
    const reasons = new ReasonTable([[12, 'NETFILTER_DROP']], 'btf');
    const buf = event({ location: 0xffffffff81f6309an, reason: 12, flags: 1 | 2 | 4, ipver: 4, l4: 6, sport: 40000, dport: 2483, tcp: 0x02, ifname: 'cni0' });
    const pieces: Buffer[] = [];
    const sink = new ByteSink(4096, (b) => pieces.push(b));
    writeTextLine(sink, new WallClock(0n), buf, 0, buf.length, syms, reasons, null);
    sink.flush();
    expect(Buffer.concat(pieces).toString()).toMatch(/nf_hook_slow\+0x9a +NETFILTER_DROP +cni0 +ns:4026532001 IPv4 TCP 10\.244\.1\.2:40000 > 10\.244\.1\.1:2483 \[S\] len 60\n$/);
    expect(formatLine(toRecord(decodeEvent(buf), syms, reasons, 0n), 4)).toMatch(/nf_hook_slow\+0x9a +NETFILTER_DROP/);
  });
});

describe('writeJsonLine / writeTextLine: trace lines straight from the bytes', () => {
  const reasons = new ReasonTable([[3, 'NO_SOCKET'], [12, 'NETFILTER_DROP']], 'btf');
  const syms = SymbolTable.parse('ffffffff81f63000 T nf_hook_slow\nffffffff81f64000 T next\nffffffffc0a01000 t vx_rcv\t[vxlan]\n');
  const OFF = 1_700_000_000_123_456_789n;
  // the oracle: the record through objects, as JSON.stringify and formatLine write it
  // receiving sockets' cgroups: a pod's, a unit's with a quote in its name; any other id is unknown
  const owners = new Map<number, CgroupOwner>([
    [3445, { path: '/kubepods/burstable/pod0b5c7a2e-1d3f-4a6b-8c9d-0e1f2a3b4c5d/abc', namespace: 'default', pod: 'web-0', container: 'abc' }],
    [77, { path: '/system.slice/x"y.service', namespace: null, pod: null, container: null }],
  ]);
  const owner = (id: number) => owners.get(id) ?? null;
  const slow = (buf: Buffer, i: number, stride: number, pod: PodFields | null, table: SymbolTable | null, json: boolean) => {
    const raw = decodeEvent(buf, i, stride);
    const r = { ...toRecord(raw, table, reasons, OFF, owner), ...(pod ?? {}) };
    return (json ? JSON.stringify(r) : formatLine(r, raw.ipver)) + '\n';
  };
  // the fast way, through a sink small enough to hand on several pieces
  const fast = (buf: Buffer, n: number, stride: number, pod: PodFields | null, table: SymbolTable | null, json: boolean) => {
    const pieces: Buffer[] = [];
    const sink = new ByteSink(700, (b) => pieces.push(b));
    for (let i = 0; i < n; i++) {
      if (json) writeJsonLine(sink, new WallClock(OFF), buf, i, stride, table, reasons, pod, owner);
      else writeTextLine(sink, new WallClock(OFF), buf, i, stride, table, reasons, pod, undefined, owner);
    }
    sink.flush();
    return Buffer.concat(pieces).toString('utf8');
  };

  const shapes: Buffer[] = [
    event({ location: 0xffffffff81f6309an, reason: 12, flags: 1 | 2 | 4, ipver: 4, l4: 6, sport: 40000, dport: 2483, tcp: 0x12, ifname: 'cni0' }),
    event({ location: 0xffffffff81f6309an, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 5, dport: 9, tcp: 0, ifname: 'lo', tsNs: 999_999n }),
    event({ location: 0xffffffff81f63100n, reason: 0, flags: 1 | 2, ipver: 6, l4: 58, sport: 0, dport: 0, tcp: 0, ifname: 'eth0' }),
    event({ location: 0xffffffff81f63100n, reason: 0, flags: 1, ipver: 4, l4: 47, sport: 0, dport: 0, tcp: 0, ifname: 'flannel.1' }),
    event({ location: 0x1000n, reason: 7, flags: 0, ipver: 0, l4: 0, sport: 0, dport: 0, tcp: 0, ifname: '' }),
    event({ location: 0xffffffff81f6309an, reason: 3, flags: 1 | 2, ipver: 4, l4: 1, sport: 0, dport: 0, tcp: 0, ifname: 'we"ird\\' }),
    event({ location: 0xffffffffc0a01044n, reason: 3, flags: 1 | 2 | 4, ipver: 6, l4: 6, sport: 443, dport: 2483, tcp: 0xff, ifname: 'caf\u00e9-0123456789', tsNs: 0xffff_ffff_ffff_ffffn }),
    event({ location: 0x00000001_81f6309an, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 132, sport: 1, dport: 2, tcp: 0, ifname: 'x', tsNs: (1n << 53n) + 999_999n }),
    // tunnelled: VXLAN with a TCP pod flow inside, Geneve with IPv6 ICMPv6 inside, VXLAN whose inner headers were not linear
    event({ location: 0xffffffff81f6309an, reason: 12, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 51000, dport: 8472, tcp: 0, ifname: 'eth0', saddr: [192, 168, 50, 2], daddr: [192, 168, 50, 1],
      inner: { tunnel: 1, vni: 1, flags: 1 | 2, ipver: 4, l4: 6, sport: 40000, dport: 2483, tcp: 0x02, saddr: [10, 244, 1, 2], daddr: [10, 244, 0, 1] } }),
    event({ location: 0xffffffff81f63100n, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 6081, dport: 6081, tcp: 0, ifname: 'eth0',
      inner: { tunnel: 2, vni: 0xabcdef, flags: 1 | 2, ipver: 6, l4: 58, sport: 0, dport: 0, tcp: 0, saddr: [0xfd, 0, ...Array(13).fill(0), 2], daddr: [0xff, 2, ...Array(13).fill(0), 0x16] } }),
    event({ location: 0xffffffff81f63100n, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 1, dport: 4789, tcp: 0, ifname: 'eth0',
      inner: { tunnel: 1, vni: 7, flags: 4, ipver: 0, l4: 0, sport: 0, dport: 0, tcp: 0, saddr: [], daddr: [] } }),
    // the receiving socket (6.11+): a pod's UDP socket, a unit's TCP socket on IPv6, one whose cgroup is not known, a unix socket without a cgroup
    event({ location: 0xffffffff820a7607n, reason: 6, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 5, dport: 7000, tcp: 0, ifname: 'lo',
      socket: { cgroup: 3445, inode: 4117081, uid: 0, family: 2, protocol: 17, addr: '0.0.0.0', port: 7000 } }),
    event({ location: 0xffffffff820a7607n, reason: 20, flags: 1 | 2 | 4, ipver: 6, l4: 6, sport: 5, dport: 2483, tcp: 0x10, ifname: 'eth0',
      socket: { cgroup: 77, inode: 1, uid: 65534, family: 10, protocol: 6, addr: 'fd00::1', port: 2483 } }),
    event({ location: 0xffffffff820a7607n, reason: 6, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 5, dport: 7000, tcp: 0, ifname: 'lo',
      socket: { cgroup: 12345678901, inode: 0, uid: 1000, family: 2, protocol: 17, addr: '127.0.0.1', port: 7000 } }),
    event({ location: 0xffffffff820a7607n, reason: 5, flags: 4, ipver: 0, l4: 0, sport: 0, dport: 0, tcp: 0, ifname: '',
      socket: { cgroup: 0, inode: 9, uid: 0, family: 1, protocol: 0, addr: null, port: 0 } }),
  ];
  shapes[9][EV.inner_icmp_type] = 143; // MLDv2 report
  shapes[4][EV.tunnel] = 7; // a tunnel kind this droptrace does not know: no inner flow
  shapes[2].fill(0, EV.saddr, EV.saddr + 32);
  shapes[2][EV.saddr + 15] = 1; // ::1
  shapes[2][EV.icmp_type] = 135;
  shapes[3].write('a"quote', EV.comm, 'latin1');
  shapes[3].writeUInt16LE(0x88cc, EV.ethertype);
  shapes[4].writeUInt16LE(0x1234, EV.ethertype);
  shapes[5].write('a"b\\\u0001\t\u007f\u00ff', EV.comm, 'latin1'); // a quote, a backslash, control bytes, DEL, latin1
  shapes[6].fill(0, EV.saddr, EV.saddr + 32);
  shapes[6].write('20010db8000000000000ff0000420001', EV.saddr, 'hex');
  shapes[6].write('0000000000000000000000000a000001', EV.daddr, 'hex');
  shapes[6].fill(0xff, EV.len, EV.len + 4);
  shapes[6].fill(0x41, EV.comm, EV.comm + 16); // no NUL: all 16 bytes
  const stride = shapes[0].length;
  const batch = Buffer.concat(shapes);
  const pods: Array<PodFields | null> = [null, { namespace: 'kube-system', pod: 'etcd-0', container: 'etcd' }, { namespace: null, pod: 'p\u00e9"d', container: null }];

  for (const json of [true, false]) {
    it(`${json ? 'JSON' : 'text'}: the same bytes as ${json ? 'JSON.stringify' : 'formatLine'} of the record, on every shape of record, with and without a pod or symbols`, () => {
      for (const pod of pods) {
        for (const table of [syms, null]) {
          let want = '';
          for (let i = 0; i < shapes.length; i++) want += slow(batch, i, stride, pod, table, json);
          expect(fast(batch, shapes.length, stride, pod, table, json)).toBe(want);
        }
      }
    });

    it(`${json ? 'JSON' : 'text'}: the same bytes on every record of a real recording (packet bytes after each record)`, () => {
      const scan = scanRecording(readFileSync(new URL('../../test/fixtures/seed-6.18.dtr', import.meta.url)));
      const blocks = scan.blocks.filter((b) => b.type === BLOCK.EVENTS).map((b) => b.payload);
      const st = blocks[0].readUInt32LE(4);
      // a format-1 recording: its 136-byte records widened as the reader does
      const v1 = Buffer.concat(blocks.map((p) => p.subarray(8)));
      const n = v1.length / st;
      expect(n).toBe(12);
      const { buf: raw, stride: wide } = widenRecords(v1, n, st, EVENT_SIZE_V1);
      let want = '';
      for (let i = 0; i < n; i++) want += slow(raw, i, wide, null, syms, json);
      expect(fast(raw, n, wide, null, syms, json)).toBe(want);
    });
  }

  it('--path: a record ending with its path is the record with path, pathCut and route in JSON, and its path lines under the text line', () => {
    const path = {
      steps: [
        { tsNs: 900_000n, kind: STEP.XMIT, ifindex: 2, netns: 10, ifname: 'a0', detail: 0, result: 0, cpu: 0, reverse: false, fn: 0n },
        { tsNs: 950_000n, kind: STEP.FUNC, ifindex: 3, netns: 11, ifname: 'b"0', detail: 0, result: 0, cpu: 1, reverse: false, fn: 0xffffffff81f63000n },
        { tsNs: 990_000n, kind: STEP.FIB, ifindex: 3, netns: 11, ifname: 'b"0', detail: 254, result: -22, cpu: 1, reverse: true, fn: 0n },
      ],
      cut: 2,
      dstInput: 0xffffffff81f64000n,
      dstOutput: 0n,
    };
    const recs = [shapes[0], shapes[8]].map((b) => encodeEvent({ ...decodeEvent(b, 0, b.length), tsNs: 1_000_000n, path }));
    const buf = Buffer.concat(recs);
    const st = recs[0].length;
    for (const table of [syms, null]) {
      expect(fast(buf, 2, st, pods[1], table, true)).toBe(slow(buf, 0, st, pods[1], table, true) + slow(buf, 1, st, pods[1], table, true));
      const text = (i: number) => {
        const raw = decodeEvent(buf, i, st);
        return slow(buf, i, st, null, table, false) + pathLines(raw.path!, raw.tsNs, routeOf(raw.path!, table), undefined, table).join('\n') + '\n';
      };
      expect(fast(buf, 2, st, null, table, false)).toBe(text(0) + text(1));
    }
    expect(JSON.parse(fast(buf, 1, st, null, syms, true)).path[1].name).toBe('nf_hook_slow');
  });

  it('WallClock gives the bigint arithmetic\'s milliseconds at every boundary and at the top of the range', () => {
    const b = Buffer.alloc(EVENT_SIZE);
    const tss = [0n, 1n, 999_999n, 1_000_000n, 4_294_967_295n, 4_294_967_296n, (1n << 53n) - 1n, 1n << 53n, (1n << 63n) + 999_999n, 0xffff_ffff_ffff_ffffn];
    for (let k = 0; k < 2000; k++) tss.push(BigInt(Math.floor(Math.random() * 2 ** 32)) * 4_294_967_296n + BigInt(Math.floor(Math.random() * 2 ** 32)));
    for (const off of [0n, OFF, 1_000_000n - 1n, -5_000_001n]) {
      const clock = new WallClock(off);
      for (const ts of tss) {
        if (ts + off < 0n) continue;
        b.writeBigUInt64LE(ts, EV.ts_ns);
        expect(clock.msAt(b, 0)).toBe(Number((ts + off) / 1_000_000n));
      }
    }
  });
});
