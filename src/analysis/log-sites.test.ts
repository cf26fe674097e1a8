import { describe, expect, it } from 'vitest';
import { parseLine, type LogDrop } from '../formats/droplog.js';
import { hexDigits, LogSites } from './log-sites.js';

const drop = (line: string) => parseLine(line) as LogDrop;

describe('LogSites', () => {
  it('keeps a quarter million locations apart and counts each exactly, across every growth of its table', () => {
    const sites = new LogSites();
    const n = 250_000;
    // addresses that differ in the high half as well as the low one; every 11th shares its low
    // half with another (only the high half tells them apart)
    const addr = (i: number) => [i % 7 === 0 ? -2 : -1, (0x81000000 + i * 3) | 0] as const;
    const twin = (i: number) => [-3, (0x81000000 + i * 3) | 0] as const;
    for (let round = 1; round <= 3; round++) {
      for (let i = 0; i < n; i++) {
        sites.count(sites.ofHalves(...addr(i), 'dropwatch'), i % 5, round * n + i);
        if (i % 11 === 0) sites.count(sites.ofHalves(...twin(i), 'dropwatch'), 1, round * n + i);
      }
    }
    expect(sites.size).toBe(n + Math.ceil(n / 11));
    for (const i of [0, 1, 7, 11, 4242, n - 1]) {
      const id = sites.ofHalves(...addr(i), 'dropwatch');
      expect([sites.drops(id), sites.lines(id), sites.first(id), sites.last(id)]).toEqual([3 * (i % 5), 3, n + i, 3 * n + i]);
      expect(sites.site(id).address).toBe((BigInt(addr(i)[0] >>> 0) << 32n) | BigInt(addr(i)[1] >>> 0));
      if (i % 11 === 0) expect(sites.drops(sites.ofHalves(...twin(i), 'dropwatch'))).toBe(3);
    }
  });

  it('a bare address is a site of its own beside the same address on a drop line', () => {
    const sites = new LogSites();
    const a = sites.of(drop('3 drops at location 0xffffffff81631acf'));
    const b = sites.of(drop('0xffffffff81631acf'));
    expect(a).not.toBe(b);
    expect([sites.isBare(a), sites.isBare(b)]).toEqual([false, true]);
    expect(sites.of(drop('2 drops at ip_rcv+cf (0xffffffff81631acf) [software]'))).toBe(a);
  });

  it('addresses of one low half stay apart by their high half, and bare from not', () => {
    // thousands of keys in one table that share the low half: their probes cross each other's slots
    const sites = new LogSites();
    const hex = (hi: number) => `0x${(0xffff0000 + hi).toString(16)}81631acf`;
    const ids = new Map<string, number>();
    for (let round = 0; round < 2; round++) {
      for (let hi = 0; hi < 3000; hi++) {
        for (const line of [`1 drops at location ${hex(hi)}`, hex(hi)]) {
          const id = sites.of(drop(line));
          if (round === 0) ids.set(line, id);
          else expect(id).toBe(ids.get(line));
        }
      }
    }
    expect(new Set(ids.values()).size).toBe(6000);
    expect(sites.size).toBe(6000);
  });

  it('a name seen after its address names the site; the text is the log\'s, derived or kept', () => {
    const sites = new LogSites();
    const a = sites.of(drop('3 drops at location 0xffffffff81631acf'));
    expect([sites.name(a), sites.text(a), sites.addressOnly(a)]).toEqual([null, null, true]);
    sites.of(drop('2 drops at ip_rcv+cf (0xffffffff81631acf) [software]'));
    expect(sites.site(a)).toMatchObject({ name: 'ip_rcv', offset: 0xcf, text: 'ip_rcv+cf', bare: false });
    expect(sites.addressOnly(a)).toBe(false);
    // printed other ways: with 0x, with leading zeros, in capitals
    const perf = sites.of(drop('  swapper 0 [000] 99.1: skb:kfree_skb: skbaddr=0xc5a1b2c0 protocol=2048 location=nft_do_chain+0x3e8 reason: NETFILTER_DROP'));
    expect(sites.text(perf)).toBe('nft_do_chain+0x3e8');
    const zeros = sites.of(drop('1 drops at tcp_v4_rcv+00AB (0xffffffff81000001) [software]'));
    expect(sites.site(zeros)).toMatchObject({ offset: 0xab, text: 'tcp_v4_rcv+00AB' });
    const hw = sites.of(drop('5 drops at ttl_value_is_too_small [hardware]'));
    expect(sites.site(hw)).toMatchObject({ name: 'ttl_value_is_too_small', text: 'ttl_value_is_too_small', hardware: true, address: null });
    expect(sites.isHardware(hw)).toBe(true);
  });

  it('names from bytes: each its own, through the growth of the table that finds them', () => {
    const sites = new LogSites();
    const names = Array.from({ length: 5000 }, (_, i) => `fn_${i.toString(36)}${i % 3 ? '.isra.0' : ''}`).concat(['caf\u00e9_rcv']);
    const ids: number[] = [];
    for (let round = 0; round < 2; round++) {
      names.forEach((name, i) => {
        const buf = Buffer.from(`  ${name}+1f `, 'latin1');
        const id = sites.ofHalves(-1, 0x1000 + i * 64 + round, 'dropwatch');
        sites.setNameHex(id, buf, 2, 2 + name.length, 0x1f);
        ids.push(id);
      });
    }
    expect(ids.map((id) => sites.name(id))).toEqual([...names, ...names]);
    expect(sites.site(ids[1]).text).toBe(`${names[1]}+1f`);
  });

  it('reasons and callers exist only for sites that have them', () => {
    const sites = new LogSites();
    const a = sites.of(drop('3 drops at location 0xffffffff81631acf'));
    const b = sites.of(drop('3 drops at location 0xffffffff81631ad0'));
    sites.addReason(a, 'NO_SOCKET', 2);
    sites.addReason(a, 'NO_SOCKET', 1);
    sites.addCaller(a, 'ip_rcv_finish');
    expect([...sites.reasons(a)!]).toEqual([['NO_SOCKET', 3]]);
    expect([...sites.callers(a)!]).toEqual([['ip_rcv_finish', 1]]);
    expect([sites.reasons(b), sites.callers(b)]).toEqual([undefined, undefined]);
  });

  it('counts hex digits as toString(16) writes them', () => {
    for (const n of [0, 1, 15, 16, 255, 256, 0xfffff, 0x100000, 0x7fffffff]) expect(hexDigits(n)).toBe(n.toString(16).length);
  });
});
