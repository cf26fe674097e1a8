/**
 * The report of a symbolized log: drops by function and by location, with their reasons,
 * callers and hints, from the log's sites as the judgement resolves them. Pure.
 */
import type { LogKind } from '../formats/droplog.js';
import { isGenericFree } from '../model/functions.js';
import { hintId } from '../model/hints.js';
import { hexSigned, type Judgement, type Resolution, type Resolver, type SnapshotVerdict } from './judge.js';
import { hexDigits, Interned, type LogSites } from './log-sites.js';
import { bump } from './snapshot.js';

export interface Row {
  key: string;
  count: number;
  share: number;
  module: string | null;
  reasons: string[];
  /** for drops in generic free functions: the callers their stacks name, most drops first */
  callers: Array<{ name: string; count: number }>;
  firstLine: number;
  lastLine: number;
  address?: string | null;
  /** what these drops mean (model/hints.ts id), or null */
  hint: string | null;
}

export interface Report {
  lines: number;
  /** drop lines, stack frames and packet-mode fields */
  recognised: number;
  /** prompts, banners, comments, blank lines: part of the log, about no drop */
  ignored: number;
  unrecognised: number;
  drops: number;
  formats: Partial<Record<LogKind, number>>;
  /** log address − table address (hex, signed): subtracted from every address before lookup */
  slide: string;
  slideSource: string;
  snapshot: SnapshotVerdict;
  /** distinct function names that agree on the slide, of those that voted */
  agreement: { agree: number; of: number };
  warnings: string[];
  wrongNames: number;
  unresolved: number;
  /** distinct functions and locations: the tables may hold only the first rows of them */
  functions: number;
  locations: number;
  byFunction: Row[];
  byLocation: Row[];
}

/** What the scanner counted, beside its sites. */
export interface ScanTally {
  lines: number;
  recognised: number;
  ignored: number;
  unrecognised: number;
  formats: Partial<Record<LogKind, number>>;
  warnings: readonly string[];
  /** bare addresses are drops only in a log that is nothing but addresses */
  bareAsDrops: boolean;
}

/**
 * The report over every site. limit bounds the rows made per table (the text view shows a few
 * of a quarter million locations); the totals are of all of them.
 */
export function symbolizeReport(sites: LogSites, resolver: Resolver, judgement: Judgement, t: ScanTally, limit = Infinity): Report {
  // a group key's text before any offset (a function, a symbol as printed), by a number
  const prefixes = new Interned();
  const fns = new Groups(prefixes);
  const locs = new Groups(prefixes);
  // the prefix of each table symbol locate() gives, made on its first site (−1: not yet)
  const symbolPrefix = new Int32Array(resolver.symbols).fill(-1);
  let drops = 0;
  let wrongNames = 0;
  let unresolved = 0;
  let bareLines = 0;
  // each site's groups (−1: a site in no table), then each table grouped at once (Groups.fill)
  const fnOf = new Int32Array(sites.size).fill(-1);
  const locOf = new Int32Array(sites.size).fill(-1);
  const locOffset = new Int32Array(sites.size);
  for (let id = 0; id < sites.size; id++) {
    if (sites.isBare(id) && !t.bareAsDrops) {
      bareLines += sites.lines(id);
      continue;
    }
    drops += sites.drops(id);
    // resolved here rather than kept (a resolution per location is what memory cannot hold), and
    // with all the log said of the site: a name may come lines after its address. Most sites
    // are a table symbol and offset, found by numbers; the rest are resolved in full.
    const sym = resolver.locate(sites, id);
    if (sym >= 0) {
      let p = symbolPrefix[sym];
      if (p < 0) p = symbolPrefix[sym] = prefixes.id(resolver.symbolName(sym));
      fnOf[id] = locOf[id] = p;
      locOffset[id] = resolver.located;
      continue;
    }
    const r = resolver.resolve(sites.site(id));
    if (r.logNameWrong) wrongNames += sites.lines(id);
    if (r.unresolved) unresolved += sites.lines(id);
    fnOf[id] = prefixes.id(r.function ?? r.symbol ?? '(unresolved)');
    // a location is its function and offset, kept as a number, when the symbol says just that
    const whole = canonical(r);
    locOf[id] = prefixes.id(whole ? r.function! : r.symbol ?? '(unresolved)');
    locOffset[id] = whole ? r.offset! : -1;
  }
  fns.fill(fnOf, null, sites);
  locs.fill(locOf, locOffset, sites);
  const warnings = [...t.warnings];
  if (wrongNames) {
    warnings.push(`${wrongNames} line(s) printed a name that is none of the names at its address (dropwatch before 1.5.5 misnamed module addresses); the re-resolved name is shown`);
  }
  const rows = (g: Groups, withAddress: boolean): Row[] =>
    g.ranked(limit).map((i) => {
      const key = g.key(i);
      const members = g.sitesOf(i);
      const r = resolver.resolve(sites.site(members[0]));
      let first = Infinity;
      let last = -Infinity;
      const reasonsBy = new Map<string, number>();
      const callersBy = new Map<string, number>();
      for (const site of members) {
        first = Math.min(first, sites.first(site));
        last = Math.max(last, sites.last(site));
        sites.reasons(site)?.forEach((n, k) => bump(reasonsBy, k, n));
        sites.callers(site)?.forEach((n, k) => bump(callersBy, k, n));
      }
      const reasons = sorted(reasonsBy);
      return {
        key,
        count: g.count[i],
        share: drops ? g.count[i] / drops : 0,
        module: r.module,
        reasons: reasons.map(([k]) => k),
        callers: isGenericFree(key.replace(/\+0x[0-9a-f]+$/, '')) ? sorted(callersBy).map(([name, count]) => ({ name, count })) : [],
        firstLine: first,
        lastLine: last,
        ...(withAddress ? { address: r.address } : {}),
        hint: hintId(reasons[0]?.[0] ?? null, key.startsWith('0x') || key.startsWith('(') ? null : key.replace(/\+0x[0-9a-f]+$/, '')),
      };
    });
  return {
    lines: t.lines,
    recognised: t.recognised - (t.bareAsDrops ? 0 : bareLines),
    ignored: t.ignored + (t.bareAsDrops ? 0 : bareLines),
    unrecognised: t.unrecognised,
    drops,
    formats: Object.fromEntries(Object.entries(t.formats).filter(([k]) => k !== 'address' || t.bareAsDrops)),
    slide: hexSigned(judgement.slide),
    slideSource: judgement.slideSource,
    snapshot: judgement.verdict,
    agreement: { ...judgement.agreement },
    warnings,
    wrongNames,
    unresolved,
    functions: fns.size,
    locations: locs.size,
    byFunction: rows(fns, false),
    byLocation: rows(locs, true),
  };
}

/**
 * Sites grouped under a key (a function, or a function and offset). A group is a run of the
 * site ids sorted by key: a big log has a location per site or nearly, and a sort of ids costs a
 * few arrays where a table of groups costs a hash and columns per group, every page of them new.
 * Only the count of a group is kept; the rest (first and last line, reasons, callers) is read
 * from its sites for the rows shown, and its key string made only for them. The module and
 * address of a group are its first site's (the lowest id: the sort is stable).
 */
class Groups {
  constructor(private readonly prefixes: Interned) {}

  /** site ids, sorted by key; group g is sorted[start[g], start[g + 1]) */
  private sorted: Int32Array = new Int32Array(0);
  private start: Int32Array = new Int32Array(1);
  count = new Float64Array(0);
  private prefixOf: Int32Array = new Int32Array(0);
  private offsetOf: Int32Array | null = null;

  get size(): number {
    return this.count.length;
  }

  /**
   * Groups the sites by prefixOf[site] (an Interned id; −1: in no group) and offsetOf[site] (−1: none;
   * null: no offsets), counting each group's drops.
   */
  fill(prefixOf: Int32Array, offsetOf: Int32Array | null, sites: LogSites): void {
    this.prefixOf = prefixOf;
    this.offsetOf = offsetOf;
    let n = 0;
    for (let id = 0; id < prefixOf.length; id++) if (prefixOf[id] >= 0) n++;
    let ids = new Int32Array(n);
    for (let id = 0, k = 0; id < prefixOf.length; id++) if (prefixOf[id] >= 0) ids[k++] = id;
    // least significant first, each pass stable: the offset's halves, then the prefix's
    let tmp = new Int32Array(n);
    const counts = new Int32Array(1 << 16);
    for (let pass = 0; pass < 4; pass++) {
      const col = pass < 2 ? offsetOf : prefixOf;
      if (!col) continue;
      // the digits of the unsigned value: −1 (no offset) is 0xffffffff, which no offset is
      const shift = pass & 1 ? 16 : 0;
      counts.fill(0);
      for (let k = 0; k < n; k++) counts[(col[ids[k]] >>> shift) & 0xffff]++;
      if (n === 0 || counts[(col[ids[0]] >>> shift) & 0xffff] === n) continue; // a digit all share
      for (let d = 0, at = 0; d < counts.length; d++) {
        const c = counts[d];
        counts[d] = at;
        at += c;
      }
      for (let k = 0; k < n; k++) tmp[counts[(col[ids[k]] >>> shift) & 0xffff]++] = ids[k];
      const t = ids;
      ids = tmp;
      tmp = t;
    }
    this.sorted = ids;
    // the runs: a group where the key changes
    const start = new Int32Array(n + 1);
    let g = 0;
    for (let k = 0; k < n; k++) if (k === 0 || !this.sameKey(ids[k], ids[k - 1])) start[g++] = k;
    start[g] = n;
    this.start = start.subarray(0, g + 1);
    // counted in id order, the sites' tallies read front to back (in key order each would be a
    // cache miss): each site's group first, written where the ids were sorted from
    const groupOf = tmp.length === prefixOf.length ? tmp : new Int32Array(prefixOf.length);
    for (let i = 0; i < g; i++) for (let k = this.start[i]; k < this.start[i + 1]; k++) groupOf[ids[k]] = i;
    const count = (this.count = new Float64Array(g));
    for (let id = 0; id < prefixOf.length; id++) if (prefixOf[id] >= 0) count[groupOf[id]] += sites.drops(id);
  }

  private sameKey(a: number, b: number): boolean {
    return this.prefixOf[a] === this.prefixOf[b] && (!this.offsetOf || this.offsetOf[a] === this.offsetOf[b]);
  }

  /** The sites of group g, lowest id first. */
  sitesOf(g: number): Int32Array {
    return this.sorted.subarray(this.start[g], this.start[g + 1]);
  }

  key(g: number): string {
    const site = this.sorted[this.start[g]];
    const prefix = this.prefixes.text(this.prefixOf[site]);
    const offset = this.offsetOf ? this.offsetOf[site] : -1;
    return offset < 0 ? prefix : `${prefix}+0x${offset.toString(16)}`;
  }

  /** The groups with the most drops first (then by key), at most limit of them. */
  ranked(limit: number): number[] {
    const counts = this.count;
    const n = counts.length;
    let ids: number[];
    if (limit < n) {
      // only groups that can be among the first limit are sorted with their keys
      const least = nthLargest(counts, limit);
      ids = [];
      for (let i = 0; i < n; i++) if (counts[i] >= least) ids.push(i);
    } else ids = Array.from({ length: n }, (_, i) => i);
    const keys = new Map(ids.map((i) => [i, this.key(i)]));
    ids.sort((a, b) => counts[b] - counts[a] || (keys.get(a)! < keys.get(b)! ? -1 : 1));
    return ids.length > limit ? ids.slice(0, limit) : ids;
  }
}

/** The k-th largest of values (1 ≤ k ≤ length), through a min-heap of the k largest so far. */
export function nthLargest(values: ArrayLike<number>, k: number): number {
  const heap = new Float64Array(k);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (n < k) {
      // sift up
      let c = n++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (heap[p] <= v) break;
        heap[c] = heap[p];
        c = p;
      }
      heap[c] = v;
    } else if (v > heap[0]) {
      // replace the least, sift down
      let c = 0;
      for (;;) {
        let m = 2 * c + 1;
        if (m >= k) break;
        if (m + 1 < k && heap[m + 1] < heap[m]) m++;
        if (heap[m] >= v) break;
        heap[c] = heap[m];
        c = m;
      }
      heap[c] = v;
    }
  }
  return heap[0];
}

/**
 * The symbol is function+0xoffset, the offset an int32. The resolver writes the symbol so
 * whenever it gives both a function and an offset; its length is checked (reading the text
 * would flatten a string made per site, which costs more than the rest of the grouping).
 */
function canonical(r: Resolution): boolean {
  const f = r.function;
  const off = r.offset;
  if (f === null || off === null || r.symbol === null || off < 0 || off > 0x7fffffff) return false;
  return r.symbol.length === f.length + 3 + hexDigits(off);
}

function sorted(m: ReadonlyMap<string, number> | undefined): Array<[string, number]> {
  return m ? [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])) : [];
}
