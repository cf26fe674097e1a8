/**
 * The distinct drop locations of a log, kept as columns. A big node's log names hundreds of
 * thousands of locations (a few thousand functions, up to a hundred offsets each), so a
 * location is an index, not an object: its numbers live in typed arrays, its name and module
 * are interned once, its printed text is derived from the name and offset unless the log wrote
 * it some other way, and reasons and callers exist only for the locations that have them.
 *
 * A site is found by what a line gives: an address (as its 32-bit halves, in a hash table of
 * its own, so the byte path needs no bigint and no string), a bare address in an address list (a
 * site of its own: it is a drop only in a log of nothing but addresses), or a name and offset
 * alone (perf and ftrace print no address).
 */
import type { LogDrop, LogKind } from '../formats/droplog.js';
import { bump } from './snapshot.js';

/** What a site is, not how often it was seen: what judge.ts resolves. */
export interface LogSite {
  kind: LogKind;
  address: bigint | null;
  name: string | null;
  offset: number | null;
  /** the location as the log printed it */
  text: string | null;
  module: string | null;
  hardware: boolean;
  hashed: boolean;
  /** a bare address: a drop only when the log is a list of addresses */
  bare: boolean;
}

const KINDS: readonly LogKind[] = ['dropwatch', 'dropwatch-packet', 'stap', 'perf', 'ftrace', 'address'];
const KIND_INDEX = new Map(KINDS.map((k, i) => [k, i]));

const HAS_ADDRESS = 1;
const HARDWARE = 2;
const HASHED = 4;
const BARE = 8;

// how the log printed the location, so that the text need not be kept: nothing, name+hex,
// name+0xhex, the name alone, or something else (kept in `texts`)
const TEXT_NONE = 0;
const TEXT_HEX = 1;
const TEXT_0X = 2;
const TEXT_NAME = 3;
const TEXT_KEPT = 4;

type Column = Int32Array | Float64Array | Uint8Array;

/** The digits of a non-negative int32 in hex, as toString(16) writes it (no string made). */
export function hexDigits(n: number): number {
  return n === 0 ? 1 : (35 - Math.clz32(n)) >> 2;
}

/** A slot's hash: the product's high bits are taken, since its low ones depend only on the keys' low bits. */
function slotHash(lo: number, hi: number, bare: number): number {
  return Math.imul(lo ^ Math.imul(hi ^ Math.imul(bare, 0xc2b2ae35), 0x85ebca6b), 0x9e3779b1);
}

/** a copy of a column with room for n */
export function widen<T extends Column>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

/** Strings by a number each, the same string the same number. */
export class Interned {
  private readonly texts: string[] = [];
  private readonly ids = new Map<string, number>();

  id(text: string): number {
    let p = this.ids.get(text);
    if (p === undefined) {
      p = this.texts.length;
      this.texts.push(text);
      this.ids.set(text, p);
    }
    return p;
  }

  text(p: number): string {
    return this.texts[p];
  }
}

export class LogSites {
  private n = 0;
  private hi = new Int32Array(0);
  private lo = new Int32Array(0);
  private flags = new Uint8Array(0);
  private kinds = new Uint8Array(0);
  private textForm = new Uint8Array(0);
  private nameId = new Int32Array(0);
  private moduleId = new Int32Array(0);
  /** NaN: no offset */
  private offsets = new Float64Array(0);
  /**
   * a bit per site: named (nameId ≥ 0). Every dropwatch line asks it of its site, and a bit
   * set of a quarter million sites stays in the cache where their names' ids do not.
   */
  private named = new Int32Array(0);
  private cap = 0;

  private readonly strings = new Interned();
  private readonly texts = new Map<number, string>();
  /** the strings setNameHex made or found, by their bytes' hash: a slot is the hash and string id + 1 (0: empty) */
  private nameSlots = new Int32Array(2 << 10);
  private nameSlotsUsed = 0;
  private readonly reasonMaps = new Map<number, Map<string, number>>();
  private readonly callerMaps = new Map<number, Map<string, number>>();

  /** per site: drops, lines, first line, last line (together: a line touches them all) */
  private tally = new Float64Array(0);
  /**
   * Address sites by the address (its halves) and BARE or 0, open-addressed: a slot is the low
   * half and the site id + 1 (0: empty); the rest of the key is the site's own (hi, flags),
   * read only when some site could differ from it there (everyHi, bareSites).
   * Eight bytes a slot, where the key in full would take twice that: a big log's table spans
   * megabytes, and each of its pages is a fault the first time and a cache miss after.
   */
  private slots = new Int32Array(2 << 12);
  private slotBits = 12;
  private indexed = 0;
  /** the high half of every address site (a kernel's addresses mostly share one), else NaN */
  private everyHi = NaN;
  private bareSites = 0;
  private readonly byName = new Map<string, number>();

  get size(): number {
    return this.n;
  }

  /** The site of an address given as its halves (the byte path's), made on first sight. */
  ofHalves(hi: number, lo: number, kind: LogKind): number {
    return this.ofAddress(hi | 0, lo | 0, 0, kind);
  }

  /** The site a parsed drop line belongs to; a named line fills in a site first seen by address. */
  of(d: LogDrop): number {
    if (d.address !== null) {
      const hi = Number(BigInt.asIntN(32, d.address >> 32n));
      const lo = Number(BigInt.asIntN(32, d.address));
      if (d.kind === 'address') return this.ofAddress(hi, lo, BARE, d.kind);
      const id = this.ofAddress(hi, lo, 0, d.kind);
      if (!this.hasName(id) && d.name !== null) this.setName(id, d.name, d.offset, d.text);
      if (this.moduleId[id] < 0 && d.module !== null) this.moduleId[id] = this.strings.id(d.module);
      return id;
    }
    const key = `${d.name}|${d.offset}|${d.module}|${d.hardware}|${d.hashed}`;
    let id = this.byName.get(key);
    if (id === undefined) {
      id = this.add(d.kind, 0, 0, (d.hardware ? HARDWARE : 0) | (d.hashed ? HASHED : 0));
      if (d.name !== null) this.setName(id, d.name, d.offset, d.text);
      else this.setText(id, d.text);
      if (d.module !== null) this.moduleId[id] = this.strings.id(d.module);
      this.byName.set(key, id);
    }
    return id;
  }

  hasName(id: number): boolean {
    return (this.named[id >> 5] & (1 << (id & 31))) !== 0;
  }

  /** Names a site first seen by its address alone. */
  setName(id: number, name: string, offset: number | null, text: string | null): void {
    this.nameId[id] = this.strings.id(name);
    this.named[id >> 5] |= 1 << (id & 31);
    this.offsets[id] = offset ?? NaN;
    this.setText(id, text);
  }

  /**
   * Names a site whose line printed name+hex as offset.toString(16) would (the byte path
   * checks), the name as latin1 bytes buf[ns, ne): a name seen before is found from its bytes,
   * so a string is made only for a name new to the log (a big log names a quarter million
   * sites after a few thousand functions).
   */
  setNameHex(id: number, buf: Buffer, ns: number, ne: number, offset: number): void {
    let h = 0x811c9dc5;
    for (let k = ns; k < ne; k++) h = Math.imul(h ^ buf[k], 0x01000193);
    const slots = this.nameSlots;
    const mask = (slots.length >> 1) - 1;
    let i = h & mask;
    let name = -1;
    for (let v; (v = slots[i * 2 + 1]) !== 0; i = (i + 1) & mask) {
      if (slots[i * 2] !== h) continue;
      const str = this.strings.text(v - 1);
      if (str.length !== ne - ns) continue;
      let k = 0;
      while (k < str.length && str.charCodeAt(k) === buf[ns + k]) k++;
      if (k === str.length) {
        name = v - 1;
        break;
      }
    }
    if (name < 0) {
      name = this.strings.id(buf.toString('latin1', ns, ne));
      slots[i * 2] = h;
      slots[i * 2 + 1] = name + 1;
      if (++this.nameSlotsUsed * 4 > slots.length) this.growNameSlots();
    }
    this.nameId[id] = name;
    this.named[id >> 5] |= 1 << (id & 31);
    this.offsets[id] = offset;
    this.textForm[id] = TEXT_HEX;
    this.texts.delete(id);
  }

  /** Twice the slots, each moved by the hash it keeps: no name is hashed again. */
  private growNameSlots(): void {
    const old = this.nameSlots;
    const slots = (this.nameSlots = new Int32Array(old.length * 2));
    const mask = (slots.length >> 1) - 1;
    for (let at = 0; at < old.length; at += 2) {
      if (old[at + 1] === 0) continue;
      let i = old[at] & mask;
      while (slots[i * 2 + 1] !== 0) i = (i + 1) & mask;
      slots[i * 2] = old[at];
      slots[i * 2 + 1] = old[at + 1];
    }
  }

  /** Counts a line of n drops, line number no, into a site. */
  count(id: number, n: number, no: number): void {
    const t = id * 4;
    this.tally[t] += n;
    this.tally[t + 1]++;
    if (!this.tally[t + 2]) this.tally[t + 2] = no;
    this.tally[t + 3] = no;
  }

  addReason(id: number, reason: string, n: number): void {
    let m = this.reasonMaps.get(id);
    if (!m) this.reasonMaps.set(id, (m = new Map()));
    bump(m, reason, n);
  }

  addCaller(id: number, name: string): void {
    let m = this.callerMaps.get(id);
    if (!m) this.callerMaps.set(id, (m = new Map()));
    bump(m, name, 1);
  }

  drops(id: number): number {
    return this.tally[id * 4];
  }
  lines(id: number): number {
    return this.tally[id * 4 + 1];
  }
  first(id: number): number {
    return this.tally[id * 4 + 2];
  }
  last(id: number): number {
    return this.tally[id * 4 + 3];
  }
  reasons(id: number): ReadonlyMap<string, number> | undefined {
    return this.reasonMaps.get(id);
  }
  callers(id: number): ReadonlyMap<string, number> | undefined {
    return this.callerMaps.get(id);
  }
  isBare(id: number): boolean {
    return (this.flags[id] & BARE) !== 0;
  }
  isHardware(id: number): boolean {
    return (this.flags[id] & HARDWARE) !== 0;
  }
  /** an address and no name: what only the table can name */
  addressOnly(id: number): boolean {
    return (this.flags[id] & HAS_ADDRESS) !== 0 && this.nameId[id] < 0;
  }
  hasAddress(id: number): boolean {
    return (this.flags[id] & HAS_ADDRESS) !== 0;
  }
  /** The address of a site with one. */
  address(id: number): bigint {
    return (BigInt(this.hi[id] >>> 0) << 32n) | BigInt(this.lo[id] >>> 0);
  }
  /** The address's high half, unsigned (a site with an address). */
  hiOf(id: number): number {
    return this.hi[id] >>> 0;
  }
  loOf(id: number): number {
    return this.lo[id] >>> 0;
  }
  /** The offset the log printed after the name; NaN: none. */
  offsetOf(id: number): number {
    return this.offsets[id];
  }
  name(id: number): string | null {
    return this.nameId[id] < 0 ? null : this.strings.text(this.nameId[id]);
  }

  /** The location as the log printed it, as far as the lines so far said. */
  text(id: number): string | null {
    const name = this.name(id);
    return this.textOf(id, name, Number.isNaN(this.offsets[id]) ? null : this.offsets[id]);
  }

  /** The site as an object, made on each call: for resolving, not for keeping. */
  site(id: number): LogSite {
    const f = this.flags[id];
    return new SiteView(
      this,
      id,
      KINDS[this.kinds[id]],
      f & HAS_ADDRESS ? this.address(id) : null,
      this.name(id),
      Number.isNaN(this.offsets[id]) ? null : this.offsets[id],
      this.moduleId[id] < 0 ? null : this.strings.text(this.moduleId[id]),
      f,
    );
  }

  private textOf(id: number, name: string | null, offset: number | null): string | null {
    switch (this.textForm[id]) {
      case TEXT_HEX:
        return `${name}+${offset!.toString(16)}`;
      case TEXT_0X:
        return `${name}+0x${offset!.toString(16)}`;
      case TEXT_NAME:
        return name;
      case TEXT_KEPT:
        return this.texts.get(id)!;
      default:
        return null;
    }
  }

  private setText(id: number, text: string | null): void {
    this.texts.delete(id);
    const name = this.name(id);
    const offset = Number.isNaN(this.offsets[id]) ? null : this.offsets[id];
    let form = TEXT_KEPT;
    if (text === null) form = TEXT_NONE;
    else if (text === name) form = TEXT_NAME;
    else if (name !== null && offset !== null && text.length > name.length + 1 && text.startsWith(name) && text[name.length] === '+') {
      const hex = offset.toString(16);
      const rest = text.length - name.length - 1;
      if (rest === hex.length && text.endsWith(hex)) form = TEXT_HEX;
      else if (rest === hex.length + 2 && text.endsWith(`0x${hex}`)) form = TEXT_0X;
    }
    this.textForm[id] = form;
    if (form === TEXT_KEPT) this.texts.set(id, text!);
  }

  private ofAddress(hi: number, lo: number, bare: number, kind: LogKind): number {
    const slots = this.slots;
    const mask = (1 << this.slotBits) - 1;
    let i = slotHash(lo, hi, bare) >>> (32 - this.slotBits);
    for (;;) {
      const v = slots[i * 2 + 1];
      if (v === 0) break;
      // the site's own columns are read only when another site could share the low half
      if (slots[i * 2] === lo && (hi === this.everyHi || this.hi[v - 1] === hi) && (this.bareSites === 0 ? bare === 0 : (this.flags[v - 1] & BARE) === bare)) return v - 1;
      i = (i + 1) & mask;
    }
    const id = this.add(kind, hi, lo, HAS_ADDRESS | bare);
    this.everyHi = this.indexed === 0 || hi === this.everyHi ? hi : NaN;
    if (bare) this.bareSites++;
    slots[i * 2] = lo;
    slots[i * 2 + 1] = id + 1;
    if (++this.indexed * 2 > 1 << this.slotBits) this.growSlots();
    return id;
  }

  private growSlots(): void {
    const old = this.slots;
    const bits = ++this.slotBits;
    const slots = (this.slots = new Int32Array(2 << bits));
    const mask = (1 << bits) - 1;
    for (let at = 0; at < old.length; at += 2) {
      const v = old[at + 1];
      if (v === 0) continue;
      let i = slotHash(old[at], this.hi[v - 1], this.flags[v - 1] & BARE) >>> (32 - bits);
      while (slots[i * 2 + 1] !== 0) i = (i + 1) & mask;
      slots[i * 2] = old[at];
      slots[i * 2 + 1] = v;
    }
  }

  private add(kind: LogKind, hi: number, lo: number, flags: number): number {
    if (this.n === this.cap) this.grow();
    const id = this.n++;
    this.hi[id] = hi;
    this.lo[id] = lo;
    this.flags[id] = flags;
    this.kinds[id] = KIND_INDEX.get(kind)!;
    this.nameId[id] = -1;
    this.moduleId[id] = -1;
    this.offsets[id] = NaN;
    return id;
  }

  private grow(): void {
    // by four: each new column is an allocation the collector is told about
    const cap = (this.cap = Math.max(1 << 12, this.cap * 4));
    this.hi = widen(this.hi, cap);
    this.lo = widen(this.lo, cap);
    this.flags = widen(this.flags, cap);
    this.kinds = widen(this.kinds, cap);
    this.textForm = widen(this.textForm, cap);
    this.nameId = widen(this.nameId, cap);
    this.moduleId = widen(this.moduleId, cap);
    this.offsets = widen(this.offsets, cap);
    this.named = widen(this.named, cap >> 5);
    this.tally = widen(this.tally, cap * 4);
  }
}

/**
 * A site as LogSite, its text made only when read: the report resolves many sites of a big log
 * in full, and most of them never ask how the log printed it.
 */
class SiteView implements LogSite {
  readonly hardware: boolean;
  readonly hashed: boolean;
  readonly bare: boolean;

  constructor(
    private readonly sites: LogSites,
    private readonly id: number,
    readonly kind: LogKind,
    readonly address: bigint | null,
    readonly name: string | null,
    readonly offset: number | null,
    readonly module: string | null,
    flags: number,
  ) {
    this.hardware = (flags & HARDWARE) !== 0;
    this.hashed = (flags & HASHED) !== 0;
    this.bare = (flags & BARE) !== 0;
  }

  get text(): string | null {
    return this.sites.text(this.id);
  }
}
