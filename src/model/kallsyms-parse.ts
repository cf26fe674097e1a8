/**
 * Reading kallsyms / System.map / nm text into columns: one pass over the
 * bytes, a line at a time, keeping only code symbols (types t T w W), with
 * no string or object per line: addresses as two 32-bit halves, names as
 * ranges of one blob. SymbolTable (kallsyms.ts) sorts and indexes them.
 */

function startsWith(buf: Buffer, at: number, end: number, prefix: string): boolean {
  if (end - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix.charCodeAt(i)) return false;
  return true;
}

/** Rank for choosing among symbols at one address: global beats local beats weak; no __pfx_ padding. */
function rankCode(type: number, buf: Buffer, ns: number, ne: number): number {
  if (startsWith(buf, ns, ne, '__pfx_') || startsWith(buf, ns, ne, '__cfi_')) return 0;
  return type === 84 ? 4 : type === 116 ? 3 : type === 87 ? 2 : 1;
}

export interface ParseStats {
  lines: number;
  symbols: number;
  zeroAddresses: number;
  skipped: number;
}

/**
 * Growable columns of the symbols read so far, in file order. Sized for the text when its
 * length is known: room reserved but never written costs nothing (its pages are not backed
 * until touched), where growing copies every column and touches new pages twice, and a new page
 * is dear on a VM.
 */
export class Columns {
  cap: number;
  count = 0;
  hi: Uint32Array;
  lo: Uint32Array;
  rank: Uint8Array;
  nameAt: Uint32Array;
  nameLen: Uint16Array;
  mod: Uint16Array; // 0: core kernel, else index + 1 into modules
  /** every kept name's bytes, back to back */
  blob: Buffer;
  blobLen = 0;

  /** textBytes: the length of the whole text, when known */
  constructor(textBytes = 0) {
    // a 64-bit kallsyms line is ~40 bytes, never under 21; a table of shorter lines grows as before
    this.cap = Math.max(1 << 14, Math.ceil(textBytes / 24));
    this.hi = new Uint32Array(this.cap);
    this.lo = new Uint32Array(this.cap);
    this.rank = new Uint8Array(this.cap);
    this.nameAt = new Uint32Array(this.cap);
    this.nameLen = new Uint16Array(this.cap);
    this.mod = new Uint16Array(this.cap);
    // allocUnsafeSlow: zero-filling would touch every page of it
    this.blob = textBytes > 0 ? Buffer.allocUnsafeSlow(textBytes) : Buffer.alloc(1 << 20);
  }

  push(hi: number, lo: number, rank: number, src: Buffer, ns: number, ne: number, mod: number): void {
    if (this.count === this.cap) {
      this.cap *= 2;
      const grow = <T extends Uint32Array | Uint16Array | Uint8Array>(a: T, b: T): T => (b.set(a), b);
      this.hi = grow(this.hi, new Uint32Array(this.cap));
      this.lo = grow(this.lo, new Uint32Array(this.cap));
      this.rank = grow(this.rank, new Uint8Array(this.cap));
      this.nameAt = grow(this.nameAt, new Uint32Array(this.cap));
      this.nameLen = grow(this.nameLen, new Uint16Array(this.cap));
      this.mod = grow(this.mod, new Uint16Array(this.cap));
    }
    const len = Math.min(ne - ns, 0xffff);
    if (this.blobLen + len > this.blob.length) {
      const b = Buffer.alloc(Math.max(this.blob.length * 2, this.blobLen + len));
      this.blob.copy(b, 0, 0, this.blobLen);
      this.blob = b;
    }
    // byte by byte: a name is ~20 bytes, and Buffer#copy's own checks cost more than that per call
    const blob = this.blob;
    for (let k = 0, at = this.blobLen; k < len; k++) blob[at + k] = src[ns + k];
    const i = this.count++;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.rank[i] = rank;
    this.nameAt[i] = this.blobLen;
    this.nameLen[i] = len;
    this.mod[i] = mod;
    this.blobLen += len;
  }
}

/** Parses kallsyms lines as they arrive; holds only the symbols, never the whole text. */
export class Parser {
  readonly cols: Columns;
  readonly stats: ParseStats = { lines: 0, symbols: 0, zeroAddresses: 0, skipped: 0 };
  readonly modules: string[] = [];
  private readonly modIndex = new Map<string, number>();
  etext: [number, number] | null = null;
  private carry: Buffer | null = null;

  /** textBytes: the length of the whole text, when known (Columns) */
  constructor(textBytes = 0) {
    this.cols = new Columns(textBytes);
  }

  /** Feeds the next bytes; a line cut at the end waits for the rest. */
  write(chunk: Buffer): void {
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    const last = buf.lastIndexOf(10);
    this.lines(buf, 0, last + 1);
    this.carry = last + 1 < buf.length ? Buffer.from(buf.subarray(last + 1)) : null;
  }

  end(): void {
    if (this.carry) this.lines(this.carry, 0, this.carry.length);
    this.carry = null;
  }

  private lines(buf: Buffer, from: number, len: number): void {
    let pos = from;
    while (pos < len) {
      let end = buf.indexOf(10, pos);
      if (end < 0 || end > len) end = len;
      const ls = pos;
      let le = end;
      pos = end + 1;
      if (le > ls && buf[le - 1] === 13) le--;
      if (le === ls) continue;
      this.line(buf, ls, le);
    }
  }

  private line(buf: Buffer, ls: number, le: number): void {
    const stats = this.stats;
    stats.lines++;
    let sp = ls;
    while (sp < le && buf[sp] !== 32) sp++;
    if (sp === ls || sp + 2 >= le || buf[sp + 2] !== 32 || sp - ls > 16) {
      stats.skipped++;
      return;
    }
    let hi = 0;
    let lo = 0;
    for (let i = ls; i < sp; i++) {
      const c = buf[i];
      const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (v < 0) {
        stats.skipped++;
        return;
      }
      if (sp - i > 8) hi = hi * 16 + v;
      else lo = lo * 16 + v;
    }
    if (hi === 0 && lo === 0) {
      stats.zeroAddresses++;
      return;
    }
    const type = buf[sp + 1];
    const isText = type === 116 || type === 84 || type === 119 || type === 87; // t T w W
    const ns = sp + 3;
    let ne = ns;
    while (ne < le && buf[ne] !== 9 && buf[ne] !== 91 && buf[ne] !== 32) ne++; // tab, '[', space
    let br = ne;
    while (br < le && buf[br] !== 91) br++;
    const isEtext = ne - ns === 6 && buf.toString('latin1', ns, ne) === '_etext';
    if (isEtext && br === le) this.etext = [hi, lo];
    if (!isText) return;
    let mod = 0;
    if (br < le) {
      let close = br + 1;
      while (close < le && buf[close] !== 93) close++;
      const m = buf.toString('latin1', br + 1, close);
      mod = this.modIndex.get(m) ?? 0;
      if (!mod) {
        this.modules.push(m);
        mod = this.modules.length;
        this.modIndex.set(m, mod);
      }
    }
    this.cols.push(hi, lo, rankCode(type, buf, ns, ne), buf, ns, ne, mod);
  }
}
