import { describe, expect, it } from 'vitest';
import { decodeCounts, decodeEvent, ipv6 } from './decode.js';
import { tcpFlagLetters, toRecord } from './drop.js';
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
