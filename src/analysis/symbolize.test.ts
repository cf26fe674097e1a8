import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SymbolTable } from '../model/kallsyms.js';
import { Symbolizer, type Emitted, type Entry } from './symbolize.js';

const fixture = (p: string) => new URL(`../../${p}`, import.meta.url);
const vmText = gunzipSync(readFileSync(fixture('kallsyms/vm-6.18.44-x86_64.kallsyms.gz'))).toString('utf8');
const vm = SymbolTable.parse(vmText);
const withModules = SymbolTable.parse(vmText + readFileSync(fixture('kallsyms/constructed-modules.kallsyms'), 'utf8'));

function run(table: SymbolTable, text: string) {
  const s = new Symbolizer(table);
  const out: Emitted[] = [];
  for (const line of text.split('\n')) out.push(...s.push(line));
  out.push(...s.end());
  const entries = out.map((o) => o.entry).filter((e): e is Entry => e !== null);
  return { out, entries, report: s.report() };
}

describe('Symbolizer on real logs of the 6.18 VM', () => {
  it.each([
    ['test/fixtures/trace_pipe-6.18.txt', 23, { ip6_mc_input: 17, nft_do_chain: 3, __udp4_lib_rcv: 2, ip_rcv_finish_core: 1 }],
    ['test/fixtures/perf-script-6.18.txt', 7, { ip6_mc_input: 3, nft_do_chain: 2, __udp4_lib_rcv: 2 }],
    ['test/fixtures/perf-script-raw-6.18.txt', 7, { ip6_mc_input: 3, nft_do_chain: 2, __udp4_lib_rcv: 2 }],
  ])('%s: every line recognised and ranked', (file, lines, byFunction) => {
    const { report } = run(vm, readFileSync(fixture(file), 'utf8').trimEnd());
    expect(report.recognised).toBe(lines);
    expect(report.unrecognised).toBe(0);
    expect(Object.fromEntries(report.byFunction.map((r) => [r.key, r.count]))).toMatchObject(byFunction);
    expect(report.warnings).toEqual([]);
  });

  it('raw perf addresses resolve to what perf itself printed', () => {
    const named = run(vm, readFileSync(fixture('test/fixtures/perf-script-6.18.txt'), 'utf8').trimEnd()).entries;
    const raw = run(vm, readFileSync(fixture('test/fixtures/perf-script-raw-6.18.txt'), 'utf8').trimEnd()).entries;
    expect(raw.map((e) => e.symbol)).toEqual(named.map((e) => e.symbol));
  });

  it('the constructed dropwatch log: summary, packet mode, hardware, reasons from packet blocks', () => {
    const { report, out } = run(vm, readFileSync(fixture('test/fixtures/dropwatch-mixed.constructed.txt'), 'utf8'));
    expect(report.drops).toBe(3 + 2 + 1 + 5 + 4 + 7 + 1 + 3);
    const fn = Object.fromEntries(report.byFunction.map((r) => [r.key, r]));
    expect(fn.__udp4_lib_rcv.count).toBe(5);
    expect(fn.nft_do_chain.reasons).toEqual(['NETFILTER_DROP']);
    expect(fn.ttl_value_is_too_small.module).toBe('hardware');
    expect(report.byFunction[0].key).toBe('ttl_value_is_too_small');
    expect(out.find((o) => o.text.startsWith('3 drops at location'))!.text).toMatch(/=> __udp4_lib_rcv\+0x4bc$/);
    expect(out.some((o) => o.text === '^CGot a stop message')).toBe(true);
  });
});

describe('names the log got wrong, KASLR, and tables that do not match', () => {
  it('re-resolves an old dropwatch module address printed as __brk_limit+…', () => {
    const { entries, report } = run(withModules, '3 drops at __brk_limit+36c27a68 (0xffffffffc0a01010)\n');
    expect(entries[0]).toMatchObject({ symbol: 'nft_do_chain_ipv4+0x10', module: 'nf_tables', logSymbol: '__brk_limit+0x36c27a68', logNameWrong: true });
    expect(report.wrongNames).toBe(1);
    expect(report.warnings.join()).toMatch(/dropwatch before 1\.5\.5/);
  });

  it('resolves module addresses whose sections were listed out of order, and BPF programs', () => {
    const { entries } = run(withModules, '0xffffffffc0a05004\n0xffffffffc0b10801\n0xffffffffc0c00010\n');
    expect(entries.map((e) => `${e.symbol} ${e.module}`)).toEqual(['nft_do_chain_inet+0x4 nf_tables', 'vxlan_xmit+0x1 vxlan', 'bpf_prog_6deef7357e7b4530_droptrace_tp+0x10 bpf']);
  });

  it('detects a KASLR slide from a named line, applies it to raw addresses, and says so', () => {
    const slide = 0x1e00000n;
    const log = [
      `1 drops at location 0x${(0xffffffff81f63638n + slide).toString(16)}`,
      `2 drops at __udp4_lib_rcv+4bc (0x${(0xffffffff82046f4cn + slide).toString(16)}) [software]`,
    ].join('\n');
    const { entries, report } = run(vm, log);
    expect(entries.map((e) => e.symbol)).toEqual(['nft_do_chain+0x3e8', '__udp4_lib_rcv+0x4bc']);
    expect(entries[1].logNameWrong).toBe(false);
    expect(report.slide).toBe('0x1e00000');
    expect(report.warnings[0]).toMatch(/another boot .*KASLR.*-0x1e00000/);
  });

  it('warns, without crashing, when raw addresses do not fit the table and nothing names them', () => {
    const log = ['0xffffffff9a123456', '0xffffffff9b000000', '5 drops at location 0xffffffff9c000010'].join('\n');
    const { report } = run(vm, log);
    expect(report.unresolved).toBe(3);
    expect(report.warnings.join()).toMatch(/results are unreliable/);
  });

  it('says a hashed pointer cannot be resolved', () => {
    const { entries } = run(vm, '<idle>-0 [001] ..s. 12.3: kfree_skb: skbaddr=000000004a2f5e7c protocol=2048 location=000000009b2c1f3a');
    expect(entries[0].unresolved).toMatch(/hashed pointer/);
  });

  it('handles 32-bit tables and addresses', () => {
    const t = SymbolTable.parse('c1000000 T _stext\nc1634a00 T ip_rcv\nc1634b80 T ip_rcv_finish\nc1800000 T _etext\n');
    const { entries } = run(t, '  swapper 0 [000] 99.1: skb:kfree_skb: skbaddr=0xc5a1b2c0 protocol=2048 location=0xc1634a1f');
    expect(entries[0].symbol).toBe('ip_rcv+0x1f');
  });

  it.each([
    ['empty input', ''],
    ['binary garbage', '\u0000\u0001\u00ff\u00fe\n\u0007\u0008'],
    ['CRLF and a truncated last line', '2 drops at location 0xffffffff82046f4c\r\n1 drops at nft_do_chain+3e8 (0xffffffff81f6'],
  ])('%s: no crash, everything passed through', (_name, text) => {
    const { out, report } = run(vm, text);
    expect(out).toHaveLength(text.split('\n').length);
    expect(report.recognised + report.unrecognised).toBe(report.lines);
  });

  it('keeps memory flat: lines are released once the slide is known', () => {
    const s = new Symbolizer(vm);
    s.push('2 drops at __udp4_lib_rcv+4bc (0xffffffff82046f4c) [software]');
    for (let i = 0; i < 100; i++) expect(s.push('1 drops at location 0xffffffff81f63638')).toHaveLength(1);
  });
});
