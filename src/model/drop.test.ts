import { describe, expect, it } from 'vitest';
import { decodeCounts, decodeEvent, EV, EVENT_SIZE, ipv6 } from './decode.js';
import { readFileSync } from 'node:fs';
import { formatLine, tcpFlagLetters, toRecord, WallClock, writeJsonLine, writeTextLine, type PodFields } from './drop.js';
import { ByteSink } from '../formats/sink.js';
import { BLOCK, scanRecording } from '../formats/record.js';
import { SymbolTable } from './kallsyms.js';
import { ReasonTable } from './reasons.js';
import { eventRecord } from '../../test/helpers/events.js';

const event = eventRecord;

describe('decode and format', () => {
  const syms = SymbolTable.parse('ffffffff81f63000 T nf_hook_slow\nffffffff81f64000 T next\n');
  const reasons = new ReasonTable([[12, 'NETFILTER_DROP']], 'btf');

  it('turns a record into the trace --json shape and the text line', () => {
    const buf = event({ location: 0xffffffff81f6309an, reason: 12, flags: 1 | 2 | 4, ipver: 4, l4: 6, sport: 40000, dport: 2483, tcp: 0x02, ifname: 'cni0' });
    const rec = toRecord(decodeEvent(buf), syms, reasons, 0n);
    expect(rec).toMatchObject({
      location: '0xffffffff81f6309a',
      symbol: 'nf_hook_slow+0x9a',
      function: 'nf_hook_slow',
      offset: 0x9a,
      module: null,
      reason: 'NETFILTER_DROP',
      reasonCode: 12,
      ifname: 'cni0',
      protocol: 'IPv4',
      l4: 'TCP',
      saddr: '10.244.1.2',
      daddr: '10.244.1.1',
      sport: 40000,
      dport: 2483,
      tcpFlags: 'S',
      len: 60,
      comm: 'swapper/0',
    });
    expect(formatLine(rec)).toMatch(/nf_hook_slow\+0x9a +NETFILTER_DROP +cni0 +ns:4026532001 IPv4 TCP 10\.244\.1\.2:40000 > 10\.244\.1\.1:2483 \[S\] len 60$/);
  });

  it('leaves what the kernel did not give null: no reason before 5.17, no ports without L4', () => {
    const buf = event({ location: 0xffffffff81f63010n, reason: 0, flags: 1, ipver: 4, l4: 6, sport: 1, dport: 2, tcp: 2, ifname: '' });
    const rec = toRecord(decodeEvent(buf), syms, reasons, 0n);
    expect(rec.reason).toBeNull();
    expect(rec.sport).toBeNull();
    expect(rec.tcpFlags).toBeNull();
    expect(rec.ifname).toBeNull();
  });

  it('decodes batches record by record', () => {
    const a = event({ location: 1n, reason: 12, flags: 4, ipver: 0, l4: 0, sport: 0, dport: 0, tcp: 0, ifname: 'a' });
    const b = event({ location: 2n, reason: 12, flags: 4, ipver: 0, l4: 0, sport: 0, dport: 0, tcp: 0, ifname: 'b' });
    const batch = Buffer.concat([a, b]);
    expect(decodeEvent(batch, 1).ifname).toBe('b');
    expect(decodeEvent(batch, 1).location).toBe(2n);
  });

  it('decodes count records', () => {
    const b = Buffer.alloc(40);
    b.writeBigUInt64LE(0xffffffff81f6309an, 0);
    b.writeUInt32LE(12, 8);
    b.writeUInt32LE(5, 12);
    b.writeUInt32LE(4026532001, 16);
    b.writeBigUInt64LE(7n, 24);
    b.writeBigUInt64LE(420n, 32);
    expect(decodeCounts(b)).toEqual([{ location: 0xffffffff81f6309an, reason: 12, ifindex: 5, netns: 4026532001, packets: 7, bytes: 420 }]);
  });

  it.each([
    ['fd000000000000000000000000000001', 'fd00::1'],
    ['00000000000000000000000000000000', '::'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
    ['00000000000000000000ffff0a000001', '::ffff:10.0.0.1'],
    ['fe800000000000000000000000000000', 'fe80::'],
  ])('ipv6 %s → %s', (hex, text) => {
    expect(ipv6(Buffer.from(hex, 'hex'), 0)).toBe(text);
  });

  it.each([
    [0x02, 'S'],
    [0x12, 'S.'],
    [0x11, 'F.'],
    [0x04, 'R'],
    [0x18, 'P.'],
    [0, 'none'],
  ])('tcp flags %i → %s', (flags, text) => {
    expect(tcpFlagLetters(flags)).toBe(text);
  });
});

describe('writeJsonLine / writeTextLine: trace lines straight from the bytes', () => {
  const reasons = new ReasonTable([[3, 'NO_SOCKET'], [12, 'NETFILTER_DROP']], 'btf');
  const syms = SymbolTable.parse('ffffffff81f63000 T nf_hook_slow\nffffffff81f64000 T next\nffffffffc0a01000 t vx_rcv\t[vxlan]\n');
  const OFF = 1_700_000_000_123_456_789n;
  // the oracle: the record through objects, as JSON.stringify and formatLine write it
  const slow = (buf: Buffer, i: number, stride: number, pod: PodFields | null, table: SymbolTable | null, json: boolean) => {
    const r = { ...toRecord(decodeEvent(buf, i, stride), table, reasons, OFF), ...(pod ?? {}) };
    return (json ? JSON.stringify(r) : formatLine(r)) + '\n';
  };
  // the fast way, through a sink small enough to hand on several pieces
  const fast = (buf: Buffer, n: number, stride: number, pod: PodFields | null, table: SymbolTable | null, json: boolean) => {
    const pieces: Buffer[] = [];
    const sink = new ByteSink(700, (b) => pieces.push(b));
    for (let i = 0; i < n; i++) (json ? writeJsonLine : writeTextLine)(sink, new WallClock(OFF), buf, i, stride, table, reasons, pod);
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
  ];
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
      const raw = Buffer.concat(blocks.map((p) => p.subarray(8)));
      const n = raw.length / st;
      expect(n).toBe(12);
      let want = '';
      for (let i = 0; i < n; i++) want += slow(raw, i, st, null, syms, json);
      expect(fast(raw, n, st, null, syms, json)).toBe(want);
    });
  }

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
