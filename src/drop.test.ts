import { describe, expect, it } from 'vitest';
import { decodeCounts, decodeEvent, EV, ipv6 } from './decode.js';
import { readFileSync } from 'node:fs';
import { formatLine, jsonLineAt, tcpFlagLetters, toRecord, type PodFields } from './drop.js';
import { BLOCK, scanRecording } from './record.js';
import { SymbolTable } from './kallsyms.js';
import { ReasonTable } from './reasons.js';
import { eventRecord } from '../test/helpers/events.js';

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

describe('jsonLineAt: the trace --json line straight from the bytes', () => {
  const reasons = new ReasonTable([[3, 'NO_SOCKET'], [12, 'NETFILTER_DROP']], 'btf');
  const syms = SymbolTable.parse('ffffffff81f63000 T nf_hook_slow\nffffffff81f64000 T next\n');
  const slow = (buf: Buffer, i: number, stride: number, pod: PodFields | null, table: SymbolTable | null = syms) => {
    const r = toRecord(decodeEvent(buf, i, stride), table, reasons, 1_700_000_000_000_000_000n);
    return JSON.stringify(pod ? { ...r, ...pod } : r);
  };

  it('is exactly JSON.stringify(toRecord(decodeEvent)) for every shape of record, with and without a pod or symbols', () => {
    const shapes: Buffer[] = [
      event({ location: 0xffffffff81f6309an, reason: 12, flags: 1 | 2 | 4, ipver: 4, l4: 6, sport: 40000, dport: 2483, tcp: 0x12, ifname: 'cni0' }),
      event({ location: 0xffffffff81f6309an, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 5, dport: 9, tcp: 0, ifname: 'lo' }),
      event({ location: 0xffffffff81f63100n, reason: 0, flags: 1 | 2, ipver: 6, l4: 58, sport: 0, dport: 0, tcp: 0, ifname: 'eth0' }),
      event({ location: 0xffffffff81f63100n, reason: 0, flags: 1, ipver: 4, l4: 47, sport: 0, dport: 0, tcp: 0, ifname: 'gre1' }),
      event({ location: 0x1000n, reason: 7, flags: 0, ipver: 0, l4: 0, sport: 0, dport: 0, tcp: 0, ifname: '' }),
      event({ location: 0xffffffff81f6309an, reason: 3, flags: 1 | 2, ipver: 4, l4: 1, sport: 0, dport: 0, tcp: 0, ifname: 'we"ird\\' }),
    ];
    shapes[2].fill(0, EV.saddr, EV.saddr + 32);
    shapes[2][EV.saddr + 15] = 1; // ::1
    shapes[2][EV.icmp_type] = 135;
    shapes[3].write('a"quote', EV.comm, 'latin1');
    shapes[5].write('a"b\\\u0001', EV.comm, 'latin1'); // a quote, a backslash, a control byte
    const stride = shapes[0].length;
    const batch = Buffer.concat(shapes);
    const pod = { namespace: 'kube-system', pod: 'etcd-0', container: 'etcd' };
    for (let i = 0; i < shapes.length; i++) {
      for (const p of [null, pod]) {
        for (const table of [syms, null]) {
          const fast = jsonLineAt(batch, i, stride, table, reasons, 1_700_000_000_000_000_000n, p);
          expect(fast).toBe(slow(batch, i, stride, p, table));
        }
      }
    }
  });

  it('is exactly JSON.stringify on every record of a real recording (with its packet bytes after each record)', () => {
    const scan = scanRecording(readFileSync(new URL('../test/fixtures/seed-6.18.dtr', import.meta.url)));
    const blocks = scan.blocks.filter((b) => b.type === BLOCK.EVENTS).map((b) => b.payload);
    const stride = blocks[0].readUInt32LE(4);
    const raw = Buffer.concat(blocks.map((p) => p.subarray(8)));
    const n = raw.length / stride;
    expect(n).toBe(12);
    for (let i = 0; i < n; i++) expect(jsonLineAt(raw, i, stride, syms, reasons, 1_700_000_000_000_000_000n, null)).toBe(slow(raw, i, stride, null));
  });
});
