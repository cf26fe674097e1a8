import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { formatSymbol, KallsymsError, MAX_FUNCTION_SIZE, SymbolTable } from './kallsyms.js';

const vm = gunzipSync(readFileSync(new URL('../../kallsyms/vm-6.18.44-x86_64.kallsyms.gz', import.meta.url))).toString('utf8');

describe('SymbolTable on the real 6.18 VM kallsyms', () => {
  const table = SymbolTable.parse(vm);

  it('keeps every code symbol and only code symbols', () => {
    const textLines = vm.split('\n').filter((l) => / [tTwW] /.test(l)).length;
    expect(table.size).toBeGreaterThan(100_000);
    expect(table.size).toBeLessThanOrEqual(textLines);
    expect(table.stats.zeroAddresses).toBe(0);
  });

  it.each([
    // [address, expected symbol] — addresses taken from the fixture itself
    ['ffffffff81ff6a80', 'ip_rcv+0x0'],
    ['ffffffff81ff6b4f', 'ip_rcv+0xcf'],
    ['ffffffff82046f4c', '__udp4_lib_rcv+0x4bc'],
  ])('%s resolves to %s', (hex, sym) => {
    const addr = BigInt('0x' + hex);
    expect(formatSymbol(table.lookup(addr), addr)).toBe(sym);
  });

  it('finds every code symbol at its own address, and the one before it a byte lower', () => {
    // every address of the file, so every edge of the blocks the search reads first
    const starts = [...new Set(vm.split('\n').filter((l) => / [tTwW] /.test(l)).map((l) => BigInt('0x' + l.split(' ')[0])))].sort((a, b) => (a < b ? -1 : 1));
    let wrong = 0;
    starts.forEach((a, i) => {
      const at = table.lookup(a);
      const below = table.lookup(a - 1n);
      if (at?.start !== a || at.offset !== 0 || (i > 0 ? below?.start !== starts[i - 1] : below !== null)) wrong++;
    });
    expect([starts.length > 100_000, wrong]).toEqual([true, 0]);
  });

  it('prefers the function over its __pfx_ padding symbol and aliases', () => {
    const start = table.addressOf('ip_rcv')!;
    expect(table.lookup(start)!.name).toBe('ip_rcv');
    expect(table.lookup(start - 1n)!.name).toBe('__pfx_ip_rcv');
  });

  it('flags addresses past the end of kernel text instead of inventing a huge offset', () => {
    const etext = BigInt('0x' + /^([0-9a-f]+) T _etext$/m.exec(vm)![1]);
    const r = table.lookup(etext + 0x1000n)!;
    expect(r.implausible).toBe(true);
    expect(formatSymbol(r, etext + 0x1000n)).toBe(`0x${(etext + 0x1000n).toString(16)}`);
  });

  it('returns null below the first symbol', () => {
    expect(table.lookup(0x1000n)).toBeNull();
  });

  it('reads the same table from a file 1 MiB at a time, lines cut at chunk ends included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dt-kallsyms-'));
    try {
      const path = join(dir, 'kallsyms');
      writeFileSync(path, vm);
      expect(statSync(path).size).toBeGreaterThan(4 << 20); // several chunk boundaries
      const streamed = SymbolTable.readFile(path);
      expect(streamed.size).toBe(table.size);
      expect(streamed.stats).toEqual(table.stats);
      // every symbol start and a point inside it resolve alike
      for (const line of vm.split('\n').filter((l) => / [tT] /.test(l)).filter((_, i) => i % 97 === 0)) {
        const addr = BigInt('0x' + line.split(' ')[0]);
        for (const a of [addr, addr + 3n]) expect(streamed.lookup(a)).toEqual(table.lookup(a));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SymbolTable.parse on other inputs', () => {
  it.each([
    ['System.map style', 'ffffffff81000000 T _stext\nffffffff81000100 T foo\nffffffff81000200 t bar\n', 0xffffffff81000150n, 'foo+0x50'],
    ['module symbols, unsorted', 'ffffffffc0002000 t mod_b\t[m2]\nffffffffc0001000 t mod_a\t[m1]\n', 0xffffffffc0001010n, 'mod_a+0x10'],
    ['CRLF line endings', 'ffffffff81000000 T a\r\nffffffff81000010 T b\r\n', 0xffffffff81000011n, 'b+0x1'],
    ['.isra/.cold suffixes kept', 'ffffffff81000000 t f.isra.0\nffffffff81000040 t f.cold\n', 0xffffffff81000041n, 'f.cold+0x1'],
    ['data symbols ignored', 'ffffffff81000000 T f\nffffffff81000010 D data\n', 0xffffffff81000020n, 'f+0x20'],
    ['nm undefined lines skipped', '                 U printk\nffffffff81000000 T f\n', 0xffffffff81000001n, 'f+0x1'],
    ['32-bit addresses', 'c1000000 T start\nc1000100 T f\n', 0xc1000104n, 'f+0x4'],
    ['truncated last line', 'ffffffff81000000 T f\nffffffff8100', 0xffffffff81000005n, 'f+0x5'],
  ])('%s', (_name, text, addr, expected) => {
    const t = SymbolTable.parse(text);
    expect(formatSymbol(t.lookup(addr), addr)).toBe(expected);
  });

  it('keeps module names, including bpf programs', () => {
    const t = SymbolTable.parse('ffffffffc0001000 t bpf_prog_6deef7357e7b4530_droptrace_tp\t[bpf]\n');
    expect(t.lookup(0xffffffffc0001004n)).toMatchObject({ module: 'bpf', offset: 4 });
  });

  it('marks offsets larger than any function as implausible', () => {
    const t = SymbolTable.parse('ffffffffc0001000 t f\t[m]\n');
    expect(t.lookup(0xffffffffc0001000n + BigInt(MAX_FUNCTION_SIZE) + 1n)!.implausible).toBe(true);
  });

  it('refuses a kptr_restrict table with one clear error', () => {
    const zeros = '0000000000000000 T _stext\n0000000000000000 T ip_rcv\n';
    expect(() => SymbolTable.parse(zeros)).toThrow(KallsymsError);
    expect(() => SymbolTable.parse(zeros)).toThrow(/kptr_restrict=0/);
  });

  it.each([[''], ['hello world\n'], ['\u0000\u0001\u0002garbage']])('refuses text with no symbols: %j', (text) => {
    expect(() => SymbolTable.parse(text)).toThrow(KallsymsError);
  });
});
