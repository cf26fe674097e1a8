/**
 * The distinct drop locations of a log, found by what a line gives: an address (and its 32-bit
 * halves, for the byte path's lookup without a bigint), a bare address in an address list, or a
 * name and offset alone (perf and ftrace print no address).
 */
import type { LogDrop, LogKind } from '../formats/droplog.js';
import type { LogSite } from './judge.js';

export class LogSites {
  /** every site, in the order first seen */
  readonly all: LogSite[] = [];
  private readonly byLo = new Map<number, LogSite>();
  private readonly byAddr = new Map<bigint, LogSite>();
  private readonly byBare = new Map<bigint, LogSite>();
  private readonly byName = new Map<string, LogSite>();

  /** The site of an address given as its halves (the fast path's), made on first sight. */
  ofHalves(hi: number, lo: number, kind: LogKind): LogSite {
    const s = this.byLo.get(lo);
    return s !== undefined && s.hi === hi ? s : this.ofAddress((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0), hi, lo, kind);
  }

  /** The site a parsed drop line belongs to; a named line fills in a site first seen by address. */
  of(d: LogDrop): LogSite {
    if (d.address !== null && d.kind === 'address') {
      let s = this.byBare.get(d.address);
      if (!s) this.byBare.set(d.address, (s = this.add('address', { address: d.address })));
      return s;
    }
    if (d.address !== null) {
      const s = this.ofAddress(d.address, Number(BigInt.asIntN(32, d.address >> 32n)), Number(BigInt.asIntN(32, d.address)), d.kind);
      if (s.name === null && d.name !== null) Object.assign(s, { name: d.name, offset: d.offset, text: d.text });
      if (s.module === null && d.module !== null) s.module = d.module;
      return s;
    }
    const key = `${d.name}|${d.offset}|${d.module}|${d.hardware}|${d.hashed}`;
    let s = this.byName.get(key);
    if (!s) this.byName.set(key, (s = this.add(d.kind, { name: d.name, offset: d.offset, text: d.text, module: d.module, hardware: d.hardware, hashed: d.hashed })));
    return s;
  }

  private ofAddress(addr: bigint, hi: number, lo: number, kind: LogKind): LogSite {
    let s = this.byAddr.get(addr);
    if (!s) {
      s = this.add(kind, { address: addr, hi: hi | 0, lo: lo | 0 });
      this.byAddr.set(addr, s);
      if (!this.byLo.has(lo | 0)) this.byLo.set(lo | 0, s);
    }
    return s;
  }

  private add(kind: LogKind, fields: Partial<LogSite>): LogSite {
    const s: LogSite = {
      kind, address: null, hi: 0, lo: 0, name: null, offset: null, text: null, module: null, hardware: false, hashed: false,
      bare: kind === 'address', count: 0, lines: 0, first: 0, last: 0, reasons: new Map(), callers: new Map(), res: null, ...fields,
    };
    this.all.push(s);
    return s;
  }
}
