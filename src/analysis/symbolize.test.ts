import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SymbolTable } from '../model/kallsyms.js';
import { formatReport } from '../views/symbolize.js';
import { HOLD_LINES, Symbolizer, type Emitted, type Entry } from './symbolize.js';

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
    // the "# 4 drops at" line is a comment: not counted
    expect(report.drops).toBe(3 + 2 + 1 + 5 + 7 + 1 + 3);
    expect(report.unrecognised).toBe(0);
    expect(report.snapshot).toBe('matches');
    const fn = Object.fromEntries(report.byFunction.map((r) => [r.key, r]));
    expect(fn.__udp4_lib_rcv.count).toBe(5);
    expect(fn.nft_do_chain.reasons).toEqual(['NETFILTER_DROP']);
    expect(fn.ttl_value_is_too_small.module).toBe('hardware');
    expect(report.byFunction[0].key).toBe('ttl_value_is_too_small');
    expect(out.find((o) => o.text.startsWith('3 drops at location'))!.text).toMatch(/=> __udp4_lib_rcv\+0x4bc$/);
    expect(out.some((o) => o.text === '^CGot a stop message')).toBe(true);
  });
});


/** A log of this VM's kernel with every address moved by `slide` (another boot of it). */
function shifted(slide: bigint): string {
  const at = (a: bigint) => `0x${(a + slide).toString(16)}`;
  return [
    `1 drops at location ${at(0xffffffff81f63638n)}`,
    `2 drops at __udp4_lib_rcv+4bc (${at(0xffffffff82046f4cn)}) [software]`,
    `5 drops at ip6_mc_input+15e (${at(0xffffffff820d96aen)}) [software]`,
  ].join('\n');
}

describe('the snapshot is checked before a name is replaced', () => {
  it('distinct functions agreeing on a KASLR slide: applied to raw addresses, said with its sign', () => {
    const { entries, report } = run(vm, shifted(0x1e00000n));
    expect(report.snapshot).toBe('matches');
    expect(report.agreement).toEqual({ agree: 2, of: 2 });
    expect(entries.map((e) => e.symbol)).toEqual(['nft_do_chain+0x3e8', '__udp4_lib_rcv+0x4bc', 'ip6_mc_input+0x15e']);
    expect(entries.some((e) => e.logNameWrong)).toBe(false);
    expect(report.slide).toBe('0x1e00000');
    expect(report.warnings[0]).toMatch(/another boot .*KASLR.*table's 0x1e00000 \(the slide, log − table\)/);
  });

  it('one named function cannot check the table: its name is kept, the slide is said to be unverified', () => {
    const { entries, report } = run(vm, shifted(0x1e00000n).split('\n').slice(0, 2).join('\n'));
    expect(report.snapshot).toBe('one name');
    expect(entries[1]).toMatchObject({ symbol: '__udp4_lib_rcv+0x4bc', logNameWrong: false });
    expect(entries[0].symbol).toBe('nft_do_chain+0x3e8');
    expect(report.warnings[0]).toMatch(/only one function .* cannot be checked .*unverified/);
  });

  it('a snapshot of another kernel: names kept and ranked, nothing renamed or flagged, said first and loudly', () => {
    const said: string[][] = [];
    const s = new Symbolizer(vm, { text: true, entries: true }, (w) => said.push(w));
    const out: Emitted[] = [];
    for (const line of readFileSync(fixture('test/fixtures/logs/dropwatch-issue3-4.19.txt'), 'utf8').split('\n')) out.push(...s.push(line));
    out.push(...s.end());
    const report = s.report();
    expect(report.snapshot).toBe('mismatch');
    expect(said[0][0]).toMatch(/NOT THE LOG'S KERNEL/);
    expect(report.wrongNames).toBe(0);
    const entries = out.map((o) => o.entry).filter((e): e is Entry => e !== null);
    expect(entries.some((e) => e.logNameWrong)).toBe(false);
    expect(report.byFunction.map((r) => [r.key, r.count])).toEqual([
      ['skb_release_data', 414],
      ['tcp_v4_do_rcv', 33],
    ]);
    // the perf -g stack under the drop names who freed it: tcp_recvmsg, not the free functions
    expect(report.byFunction[0].callers).toEqual([{ name: 'tcp_recvmsg', count: 1 }]);
    expect(out.find((o) => o.text.startsWith('413 drops'))!.text).toMatch(/=> skb_release_data\+0xb1$/);
    expect(formatReport(report)).toMatch(/DOES NOT MATCH THIS LOG/);
  });

  it('old dropwatch misnaming a module address (__brk_limit+…) is corrected when the snapshot matches', () => {
    const log = [
      '1 drops at nft_do_chain+3e8 (0xffffffff81f63638) [software]',
      '2 drops at __udp4_lib_rcv+4bc (0xffffffff82046f4c) [software]',
      '3 drops at __brk_limit+36c27a68 (0xffffffffc0a01010)',
    ].join('\n');
    const { entries, report } = run(withModules, log);
    expect(report.snapshot).toBe('matches');
    expect(entries[2]).toMatchObject({ symbol: 'nft_do_chain_ipv4+0x10', module: 'nf_tables', logSymbol: '__brk_limit+36c27a68', logNameWrong: true });
    expect(report.wrongNames).toBe(1);
    expect(report.warnings.join()).toMatch(/dropwatch before 1\.5\.5/);
  });

  it('a misnamed line with no other named line is resolved by its address, and the table said to be unverified', () => {
    const log = ['3 drops at __brk_limit+36c27a68 (0xffffffffc0a01010)', '2 drops at 0xffffffff82046f4c'].join('\n');
    const { entries, report } = run(withModules, log);
    expect(report.snapshot).toBe('unchecked');
    expect(entries[0]).toMatchObject({ symbol: 'nft_do_chain_ipv4+0x10', module: 'nf_tables', logSymbol: '__brk_limit+36c27a68', logNameWrong: false });
    expect(entries[0].unresolved).toMatch(/resolved by address, unverified/);
    expect(report.byFunction.map((f) => f.key)).not.toContain('__brk_limit');
    expect(report.warnings.join('\n')).toMatch(/nothing vouches for this kallsyms/);
  });

  it('the same misnamed line against a kernel that is not the log\'s stays as the log printed it', () => {
    const { report } = run(vm, readFileSync(fixture('test/fixtures/logs/dropwatch-clearlinux-1043.txt'), 'utf8'));
    expect(report.snapshot).toBe('mismatch');
    expect(report.wrongNames).toBe(0);
    expect(report.byFunction[0]).toMatchObject({ key: '__brk_limit', count: 41 });
    expect(report.ignored).toBe(7); // six lines of banner and prompt, and the empty line after the last newline
    expect(report.unrecognised).toBe(0);
  });

  it('a name that is an alias of the symbol at its address is not wrong', () => {
    const t = SymbolTable.parse('ffffffff81000000 T _stext\nffffffff810a1230 T __do_sys_getpid\nffffffff810a1230 T __ia32_sys_getpid\nffffffff810a1280 T ip_rcv\nffffffff810a1400 T next\nffffffff81200000 T _etext\n');
    const log = ['1 drops at __ia32_sys_getpid+10 (0xffffffff810a1240)', '2 drops at ip_rcv+20 (0xffffffff810a12a0)'].join('\n');
    const { entries, report } = run(t, log);
    expect(report.snapshot).toBe('matches');
    expect(entries[0]).toMatchObject({ symbol: '__ia32_sys_getpid+0x10', logNameWrong: false });
  });
});

describe('every drop line a person pastes', () => {
  it('dropwatch packet mode after a shell prompt, and the summary of another boot', () => {
    const p = run(vm, readFileSync(fixture('test/fixtures/logs/dropwatch-issue77-packet.txt'), 'utf8'));
    expect(p.report.byFunction[0]).toMatchObject({ key: 'ip_rcv_finish_core.isra.0', count: 2 });
    expect(p.report.unrecognised).toBe(0);
    const s = run(vm, readFileSync(fixture('test/fixtures/logs/dropwatch-issue77-summary.txt'), 'utf8'));
    expect(s.report.byFunction[0]).toMatchObject({ key: 'net_tx_action', count: 18 });
    expect(s.report.snapshot).toBe('one name');
    expect(s.report.wrongNames).toBe(0);
  });

  it('SystemTap dropwatch.stp: addresses of an old kernel stay unresolved, with a warning', () => {
    const { report } = run(vm, readFileSync(fixture('test/fixtures/logs/stap-dropwatch-guide.txt'), 'utf8'));
    expect(report.formats).toEqual({ stap: 6 });
    expect(report.drops).toBe(51 + 2 + 51 + 1 + 97 + 1);
    expect(report.unresolved).toBe(6);
    expect(report.ignored).toBe(3);
    expect(report.warnings.join()).toMatch(/results are unreliable/);
  });

  it('quoted in prose, in chat, with the netns tag, before a comment; comments and prompts are not drops', () => {
    const log = [
      'dropwatch showed "95255 drops at ip_rcv_finish_core+25b (0xffffffff81ff5acb) [software]" overnight',
      '[10:02] <ops> 3 drops at __udp4_lib_rcv+4bc (0xffffffff82046f4c) [software] [ns: 4026531840]',
      '> 2 drops at nft_do_chain+3e8 (0xffffffff81f63638) [software] # the firewall',
      '# 1000 drops at ip_rcv+cf (0xffffffff81631acf)',
      'dropwatch> start',
      '0xffffffff81f63638',
    ].join('\n');
    const { report } = run(vm, log);
    expect(Object.fromEntries(report.byFunction.map((r) => [r.key, r.count]))).toEqual({ ip_rcv_finish_core: 95255, __udp4_lib_rcv: 3, nft_do_chain: 2 });
    expect(report.snapshot).toBe('matches');
    expect(report.ignored).toBe(3); // the comment, the prompt, and an address among drop lines
    expect(report.unrecognised).toBe(0);
  });

  it('old perf with decimal addresses, and an ftrace stack naming the caller of a generic free', () => {
    const log = [
      `  nc 311 [000] 10.5: skb:kfree_skb: skbaddr=0xffff8800 protocol=2048 location=${BigInt('0xffffffff82046f4c').toString(10)}`,
      '  <idle>-0 [001] ..s1. 12.3: kfree_skb: skbaddr=00000000cdf5d6a6 protocol=2048 location=skb_release_data+0xb1/0x1e0 reason: NOT_SPECIFIED',
      '  <idle>-0 [001] ..s1. 12.3: <stack trace>',
      ' => kfree_skb_reason+0x84/0x1b0',
      ' => skb_release_data+0xb1/0x1e0',
      ' => ip_do_fragment+0x5c9/0x8d0',
      ' => ip_sabotage_in+0x4f/0x70',
    ].join('\n');
    const { report, entries } = run(vm, log);
    expect(entries[0].symbol).toBe('__udp4_lib_rcv+0x4bc');
    const fn = Object.fromEntries(report.byFunction.map((r) => [r.key, r]));
    expect(fn.skb_release_data.callers).toEqual([{ name: 'ip_do_fragment', count: 1 }]);
    expect(report.unrecognised).toBe(0);
  });

  it('a list of bare addresses is a list of drops', () => {
    const { report } = run(vm, '0xffffffff81f63638\nffffffff82046f4c\n0xffffffff81f63638\n');
    expect(report.drops).toBe(3);
    expect(report.byFunction.map((r) => r.key)).toEqual(['nft_do_chain', '__udp4_lib_rcv']);
  });

  it('bare addresses before other drop lines are context: in no table, counted as ignored', () => {
    const log = ['0xffffffff81f63638', '0xffffffff81f63638', '3 drops at nft_do_chain+3e8 (0xffffffff81f63638) [software]', '2 drops at location 0xffffffff82046f4c'].join('\n');
    const { report } = run(vm, log);
    expect(report.drops).toBe(5);
    expect([report.ignored, report.recognised]).toEqual([2, 2]);
    for (const rows of [report.byFunction, report.byLocation]) expect(rows.reduce((a, r) => a + r.count, 0)).toBe(5);
    expect(report.locations).toBe(2);
  });
});

describe('--summary counts the common dropwatch line in batches', () => {
  it('to the same report as a line at a time, across batches, buffer reuse and other forms between', () => {
    // real functions of the table, many offsets each: more sites and lines than a batch holds
    const fns = ['ip_rcv_core', 'tcp_v4_rcv', 'nft_do_chain', 'udp_queue_rcv_one_skb', 'sk_skb_reason_drop', 'ip_forward'];
    const lines: string[] = [];
    const extra = readFileSync(fixture('test/fixtures/perf-script-6.18.txt'), 'utf8').trimEnd().split('\n');
    for (let i = 0; i < 20_000; i++) {
      const base = vm.addressOf(fns[i % fns.length])!;
      const off = (i * 7919) % 5000;
      const addr = (base + BigInt(off)).toString(16);
      lines.push(i % 3 ? `${1 + (i % 17)} drops at location 0x${addr}` : `${1 + (i % 17)} drops at ${fns[i % fns.length]}+${off.toString(16)} (0x${addr}) [software]`);
      // a stack under a drop line names its caller; perf lines and a prompt between batches
      if (i % 997 === 0) {
        const free = vm.addressOf('skb_release_data')! + 0x1an;
        lines.push(`1 drops at skb_release_data+1a (0x${free.toString(16)}) [software]`, ' => kfree_skb_reason+0x42/0x110', ` => ${fns[i % fns.length]}+0x10/0x4a0`);
      }
      if (i % 4999 === 0) lines.push(...extra, 'dropwatch> start');
    }
    const text = lines.join('\n');
    const summary = new Symbolizer(vm, { text: false, entries: false });
    // one buffer read into again and again, as eachLine does: queued names must be copies
    const buf = Buffer.alloc(4096);
    for (const line of lines) {
      const n = buf.write(line, 0, 'utf8');
      summary.pushBytes(buf, 0, n);
      buf.fill(0x7a);
    }
    summary.end();
    const { report } = run(vm, text);
    const batched = summary.report();
    expect(batched).toEqual(report);
    expect(batched.byLocation.length).toBeGreaterThan(4096);
    expect(batched.byFunction.find((r) => r.key === 'skb_release_data')?.callers.length).toBeGreaterThan(1);
  });
});

describe('the report groups every site into its function and location', () => {
  it('as its own entries say, past 65,536 functions and offsets past 0xffff, two sites to a location', () => {
    // a table of more functions than one 16-bit digit holds, each 0x40000 long
    const base = 0xffffffff81000000n;
    const fns = 66_000;
    const at = (f: number, off: number) => (base + BigInt(f) * 0x40000n + BigInt(off)).toString(16);
    const table = SymbolTable.parse(Array.from({ length: fns }, (_, f) => `${at(f, 0)} T fn${f}`).join('\n') + `\n${at(fns, 0)} T _etext\n`);
    const log: string[] = [];
    let seed = 11;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (let f = 0; f < fns; f++) log.push(`${1 + rand(9)} drops at fn${f}+${(f % 7).toString(16)} (0x${at(f, f % 7)}) [software]`);
    for (let i = 0; i < 3000; i++) {
      // a few functions, offsets either side of 0xffff, some printed by name alone (a second site of the same location)
      const f = rand(5);
      const off = [0x10, 0xffff, 0x10000, 0x10010, 0x3fff0][rand(5)];
      if (rand(3)) log.push(`${1 + rand(9)} drops at fn${f}+${off.toString(16)} (0x${at(f, off)}) [software]`);
      else log.push(`  <idle>-0 [001] ..s1. 12.3: kfree_skb: skbaddr=00000000cdf5d6a6 protocol=2048 location=fn${f}+0x${off.toString(16)}/0x40000 reason: ${['NO_SOCKET', 'NETFILTER_DROP'][rand(2)]}`);
    }
    log.push('2 drops at location 0xffffffff01000000');
    const { entries, report } = run(table, log.join('\n'));

    type Want = { count: number; firstLine: number; lastLine: number; reasons: Map<string, number> };
    const group = (keyOf: (e: Entry) => string) => {
      const m = new Map<string, Want>();
      for (const e of entries) {
        const key = keyOf(e);
        const w = m.get(key) ?? { count: 0, firstLine: e.line, lastLine: e.line, reasons: new Map<string, number>() };
        w.count += e.count;
        w.lastLine = e.line;
        if (e.reason) w.reasons.set(e.reason, (w.reasons.get(e.reason) ?? 0) + 1);
        m.set(key, w);
      }
      return m;
    };
    const check = (rows: typeof report.byLocation, want: Map<string, Want>) => {
      const byKey = (a: [string, ...unknown[]], b: [string, ...unknown[]]) => (a[0] < b[0] ? -1 : 1);
      const got = rows.map((r) => [r.key, r.count, r.firstLine, r.lastLine, [...r.reasons].sort().join()] as [string, ...unknown[]]);
      const expected = [...want].map(([key, w]) => [key, w.count, w.firstLine, w.lastLine, [...w.reasons.keys()].sort().join()] as [string, ...unknown[]]);
      expect(got.sort(byKey)).toEqual(expected.sort(byKey));
      expect(rows.every((r, i) => i === 0 || rows[i - 1].count >= r.count)).toBe(true);
    };
    check(report.byLocation, group((e) => e.symbol ?? '(unresolved)'));
    check(report.byFunction, group((e) => e.function ?? e.symbol ?? '(unresolved)'));
    expect(report.functions).toBe(fns + 1);
    expect(report.byLocation.find((r) => r.key === 'fn3+0x10000')?.address).toBe(`0x${at(3, 0x10000)}`);
  });
});

describe('robustness', () => {
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
    expect(report.recognised + report.ignored + report.unrecognised).toBe(report.lines);
  });

  it('a report of the first rows counts all of them, and the text says how many more', () => {
    const s = new Symbolizer(vm, { text: false, entries: false });
    const lines = readFileSync(fixture('test/fixtures/trace_pipe-6.18.txt'), 'utf8').trimEnd().split('\n');
    for (const line of lines) s.push(line);
    s.end();
    const all = s.report();
    const two = s.report(2);
    expect([two.functions, two.locations]).toEqual([all.byFunction.length, all.byLocation.length]);
    expect(two.byFunction).toEqual(all.byFunction.slice(0, 2));
    expect(two.byLocation).toEqual(all.byLocation.slice(0, 2));
    expect(formatReport(two, 2)).toContain(`… ${all.byLocation.length - 2} more`);
  });

  it('holds lines only until the slide is decided, and none with --summary', () => {
    const s = new Symbolizer(vm);
    let out = 0;
    for (let i = 0; i < HOLD_LINES - 1; i++) out += s.push('1 drops at location 0xffffffff81f63638').length;
    expect(out).toBe(0);
    expect(s.push('1 drops at location 0xffffffff81f63638')).toHaveLength(HOLD_LINES);
    expect(s.push('1 drops at location 0xffffffff81f63638')).toHaveLength(1);
    const quiet = new Symbolizer(vm, { text: false, entries: false });
    expect(quiet.push('1 drops at location 0xffffffff81f63638')).toHaveLength(0);
    expect(quiet.end()).toHaveLength(0);
    expect(quiet.report().drops).toBe(1);
  });

  it('the byte path and the string path give the same report', () => {
    const text = readFileSync(fixture('test/fixtures/dropwatch-mixed.constructed.txt'), 'utf8') + shifted(0n) + '\n' + shifted(0x2a00000n);
    const bytes = new Symbolizer(vm, { text: false, entries: false });
    const buf = Buffer.from(text);
    for (let p = 0; p < buf.length; ) {
      let nl = buf.indexOf(10, p);
      if (nl < 0) nl = buf.length;
      bytes.pushBytes(buf, p, nl);
      p = nl + 1;
    }
    const strings = new Symbolizer(vm, { text: false, entries: false });
    for (const line of text.split('\n')) strings.push(line);
    expect(bytes.report()).toEqual(strings.report());
  });

  it('the byte path prints the same annotated lines and entries as the string path', () => {
    const text = readFileSync(fixture('test/fixtures/dropwatch-mixed.constructed.txt'), 'utf8') + shifted(0x2a00000n);
    const out = (viaBytes: boolean) => {
      const s = new Symbolizer(vm, { text: true, entries: true });
      const got: Emitted[] = [];
      const buf = Buffer.from(text);
      for (let p = 0; p <= buf.length; ) {
        let nl = buf.indexOf(10, p);
        if (nl < 0) nl = buf.length;
        got.push(...(viaBytes ? s.pushBytes(buf, p, nl) : s.push(buf.toString('utf8', p, nl))));
        p = nl + 1;
      }
      got.push(...s.end());
      return { got, report: s.report() };
    };
    const a = out(true);
    const b = out(false);
    expect(a.got).toEqual(b.got);
    expect(a.report).toEqual(b.report);
    expect(a.got.filter((e) => e.entry).length).toBeGreaterThan(8);
  });
});

describe('a resolution names its symbol function+0xoffset whenever it gives both', () => {
  it.each([
    ['the table matches', vm, shifted(0x1e00000n)],
    ['one name: the log\'s names kept', vm, shifted(0x1e00000n).split('\n').slice(0, 2).join('\n')],
    ['another kernel', withModules, shifted(0x5000n)],
    ['real trace_pipe and dropwatch logs', vm, readFileSync(fixture('test/fixtures/trace_pipe-6.18.txt'), 'utf8') + readFileSync(fixture('test/fixtures/dropwatch-mixed.constructed.txt'), 'utf8')],
    ['old dropwatch of another kernel (misnamed module addresses)', vm, readFileSync(fixture('test/fixtures/logs/dropwatch-issue3-4.19.txt'), 'utf8')],
    ['dropwatch packet mode of another kernel', withModules, readFileSync(fixture('test/fixtures/logs/dropwatch-issue77-packet.txt'), 'utf8')],
  ])('%s', (_name, table, text) => {
    const { entries } = run(table, text);
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) if (e.function !== null && e.offset !== null) expect(e.symbol).toBe(`${e.function}+0x${e.offset.toString(16)}`);
  });
});
