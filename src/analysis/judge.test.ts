import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { LogDrop } from '../formats/droplog.js';
import { SymbolTable } from '../model/kallsyms.js';
import { judge, Resolver, type Judgement, type SnapshotVerdict } from './judge.js';
import { LogSites } from './log-sites.js';

const fixture = (p: string) => new URL(`../../${p}`, import.meta.url);
const vmText = gunzipSync(readFileSync(fixture('kallsyms/vm-6.18.44-x86_64.kallsyms.gz'))).toString('utf8');
const table = SymbolTable.parse(vmText + readFileSync(fixture('kallsyms/constructed-modules.kallsyms'), 'utf8'));

const drop = (d: Partial<LogDrop>): LogDrop => ({ kind: 'dropwatch', count: 1, address: null, name: null, offset: null, text: null, module: null, reason: null, hardware: false, hashed: false, ...d });
const M64 = (1n << 64n) - 1n;

/** A seeded generator: the same sites every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

/**
 * Sites of every kind resolve() tells apart, at log addresses under a slide: core and module
 * addresses, inside functions and past their plausible ends, below every symbol and near the
 * ends of the 64-bit range (where the slide wraps), named rightly, by an alias, wrongly, by
 * an offset no function has, or not at all; and lines with no address.
 */
function sitesUnder(slide: bigint, seed: number): LogSites {
  const sites = new LogSites();
  const r = rng(seed);
  const lo = table.lookup(0xffffffff81000000n)!.start;
  const mod = 0xffffffffc0a01000n;
  const etext = table.addressOf('_etext')!;
  const pick = (n: number) => Math.floor(r() * n);
  for (let k = 0; k < 4000; k++) {
    let addr: bigint;
    switch (pick(7)) {
      case 6:
        addr = etext + BigInt(pick(0x40000)); // past the core kernel's text, near a symbol
        break;
      case 0:
        addr = mod + BigInt(pick(0x200000)); // modules, and past their last function
        break;
      case 1:
        addr = BigInt(pick(0x10000)); // below every symbol (or wrapped by the slide)
        break;
      case 2:
        addr = M64 - BigInt(pick(0x10000));
        break;
      default:
        addr = lo + BigInt(pick(0x3000000)); // the core kernel's text and past its end
    }
    const log = (addr + slide) & M64;
    const res = table.lookup(addr);
    const name = res && !res.implausible ? res.name : null;
    switch (pick(8)) {
      case 0:
      case 1:
        sites.of(drop({ address: log })); // no name
        break;
      case 7:
        // the right name at an offset no function has: the log's offset is wrong, so is its name
        sites.of(drop({ address: log, name, offset: 0x50000, text: name }));
        break;
      case 2:
        sites.of(drop({ address: log, name, offset: res?.offset ?? null, text: name && `${name}+0x${res!.offset.toString(16)}` }));
        break;
      case 3: {
        // an alias at the same address, where there is one
        const names = res ? table.namesAt(res) : [];
        const alias = names[names.length - 1] ?? null;
        sites.of(drop({ address: log, name: alias, offset: res?.offset ?? null, text: alias }));
        break;
      }
      case 4:
        sites.of(drop({ address: log, name: 'ip_rcv', offset: pick(0x400), text: 'ip_rcv' })); // wrong, mostly
        break;
      case 5:
        sites.of(drop({ address: log, name: '__brk_limit', offset: 0x1e1a4 + 0x40000, text: '__brk_limit' })); // misnamed
        break;
      default:
        // lines with no address: a hardware trap, a hashed pointer, a name alone (perf, ftrace)
        if (k % 3 === 0) sites.of(drop({ hardware: true, name: 'ttl_value_is_too_small', text: 'ttl_value_is_too_small' }));
        else if (k % 3 === 1) sites.of(drop({ hashed: true, text: '000000009b2c1f3a' }));
        else sites.of(drop({ kind: 'perf', name, offset: res?.offset ?? null, text: name }));
    }
  }
  return sites;
}

describe('Resolver.locate', () => {
  const verdicts: SnapshotVerdict[] = ['matches', 'one name', 'unchecked', 'mismatch'];
  const slides = [0n, 0x1e00000n, -0x1e00000n, -0x40000000n, -0x100000001n];
  it.each(slides.flatMap((slide) => verdicts.map((v) => [v, slide] as const)))(
    'answers only what resolve() says, by numbers (%s, slide %s)',
    (verdict, slide) => {
      const j: Judgement = {
        verdict,
        slide: verdict === 'unchecked' || verdict === 'mismatch' ? 0n : slide,
        // nf_tables loaded 16 KiB below where the core kernel's slide puts it
        moduleSlides: new Map([['nf_tables', slide + 0x4000n], ['vxlan', slide]]),
        agreement: { agree: 0, of: 0 },
        slideSource: '',
        warnings: [],
      };
      const resolver = new Resolver(table, j);
      const sites = sitesUnder(j.slide, 7 + Number(slide & 0xffffn));
      let answered = 0;
      let plain = 0;
      for (let id = 0; id < sites.size; id++) {
        const full = resolver.resolve(sites.site(id));
        const i = resolver.locate(sites, id);
        // the common site, an address alone that the table resolves in the core kernel, is answered
        if (!full.unresolved && full.module === null && full.address !== null && sites.name(id) === null && !sites.isHardware(id)) {
          plain++;
          expect(i).toBeGreaterThanOrEqual(0);
        }
        if (i < 0) continue;
        answered++;
        const fn = resolver.symbolName(i);
        expect({ function: full.function, offset: full.offset, symbol: full.symbol, logNameWrong: full.logNameWrong, unresolved: full.unresolved }).toEqual({
          function: fn,
          offset: resolver.located,
          symbol: `${fn}+0x${resolver.located.toString(16)}`,
          logNameWrong: false,
          unresolved: null,
        });
      }
      if (verdict === 'mismatch') expect(answered).toBe(0);
      else expect(plain).toBeGreaterThan(100);
      // named sites are answered where the table is shown to be the log's
      if (verdict === 'matches') expect(answered).toBeGreaterThan(plain);
    },
  );
});

describe('judge', () => {
  const named = ['ip_rcv', 'nft_do_chain', '__udp4_lib_rcv', 'tcp_v4_rcv'].map((n) => [n, table.addressOf(n)!] as const);
  const logOf = (slide: bigint) => {
    const sites = new LogSites();
    for (const [name, start] of named) for (const off of [0x10, 0x24, 0x3e]) sites.of(drop({ address: (start + BigInt(off) + slide) & M64, name, offset: off, text: name }));
    return sites;
  };

  it.each([0n, 0x1e00000n, -0x2a00000n, -0x7f0000000000n, -0x7fff00012345678n, -0xffffffff00000000n, -0xfffffffe7f000123n])('finds the slide the named lines agree on (%s), near or far', (slide) => {
    const j = judge(logOf(slide), table);
    expect([j.verdict, j.slide, j.agreement]).toEqual(['matches', slide, { agree: 4, of: 4 }]);
  });
});
