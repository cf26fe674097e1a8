/**
 * The report of a symbolized log: drops by function and by location, with their reasons,
 * callers and hints, from the log's sites as the judgement resolves them. Pure.
 */
import type { LogKind } from '../formats/droplog.js';
import { isGenericFree } from '../model/functions.js';
import { hintId } from '../model/hints.js';
import { hexSigned, type Judgement, type Resolution, type Resolver, type SnapshotVerdict } from './judge.js';
import { IntTable } from './int-table.js';
import { hexDigits, widen, type LogSites } from './log-sites.js';
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
  const fns = new Groups(0);
  // nearly a location per site, in a big log
  const locs = new Groups(sites.size);
  let drops = 0;
  let wrongNames = 0;
  let unresolved = 0;
  let bareLines = 0;
  // each site's groups first (−1: a site in no table), then the groups filled a table at a time: see fillGroups
  const fnOf = new Int32Array(sites.size).fill(-1);
  const locOf = new Int32Array(sites.size).fill(-1);
  const locOffset = new Int32Array(sites.size);
  for (let id = 0; id < sites.size; id++) {
    if (sites.isBare(id) && !t.bareAsDrops) {
      bareLines += sites.lines(id);
      continue;
    }
    // resolved here rather than kept (a resolution per location is what memory cannot hold), and
    // with all the log said of the site: a name may come lines after its address
    const r = resolver.resolve(sites.site(id));
    drops += sites.drops(id);
    if (r.logNameWrong) wrongNames += sites.lines(id);
    if (r.unresolved) unresolved += sites.lines(id);
    fnOf[id] = fns.prefixId(r.function ?? r.symbol ?? '(unresolved)');
    // a location is its function and offset, kept as a number, when the symbol says just that
    const whole = canonical(r);
    locOf[id] = locs.prefixId(whole ? r.function! : r.symbol ?? '(unresolved)');
    locOffset[id] = whole ? r.offset! : -1;
  }
  fillGroups(fns, fnOf, null, sites);
  fillGroups(locs, locOf, locOffset, sites);
  const warnings = [...t.warnings];
  if (wrongNames) {
    warnings.push(`${wrongNames} line(s) printed a name that is none of the names at its address (dropwatch before 1.5.5 misnamed module addresses); the re-resolved name is shown`);
  }
  const rows = (g: Groups, withAddress: boolean): Row[] =>
    g.ranked(limit).map((i) => {
      const key = g.key(i);
      const r = resolver.resolve(sites.site(g.firstSite[i]));
      const reasons = sorted(g.reasons.get(i));
      return {
        key,
        count: g.count[i],
        share: drops ? g.count[i] / drops : 0,
        module: r.module,
        reasons: reasons.map(([k]) => k),
        callers: isGenericFree(key.replace(/\+0x[0-9a-f]+$/, '')) ? sorted(g.callers.get(i)).map(([name, count]) => ({ name, count })) : [],
        firstLine: g.first[i],
        lastLine: g.last[i],
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
 * Sites grouped under a key (a function, or a function and offset), as columns found through an
 * IntTable: a group per location must cost a few numbers, not objects the collector keeps
 * moving, and its key string is made only for the rows shown. The module and
 * address of a group are its first site's.
 */
class Groups {
  private n = 0;
  count = new Float64Array(1024);
  first = new Float64Array(1024);
  last = new Float64Array(1024);
  firstSite = new Int32Array(1024);
  private prefix = new Int32Array(1024);
  /** −1: none */
  private offset = new Int32Array(1024);
  readonly reasons = new Map<number, Map<string, number>>();
  readonly callers = new Map<number, Map<string, number>>();
  private readonly prefixes: string[] = [];
  private readonly prefixIds = new Map<string, number>();
  /** prefix, offset → group */
  private readonly index: IntTable;

  constructor(expected: number) {
    this.index = new IntTable(expected);
    if (expected > this.count.length) this.widen(expected);
  }

  get size(): number {
    return this.n;
  }

  prefixId(prefix: string): number {
    let p = this.prefixIds.get(prefix);
    if (p === undefined) {
      p = this.prefixes.length;
      this.prefixes.push(prefix);
      this.prefixIds.set(prefix, p);
    }
    return p;
  }

  /** Counts a site into the group of prefix p (prefixId) and offset (−1: none). */
  add(p: number, offset: number, site: number, sites: LogSites): void {
    let g = this.index.get(p, offset, 0);
    if (g < 0) this.index.add(p, offset, 0, (g = this.make(p, offset, site, sites)));
    this.count[g] += sites.drops(site);
    if (sites.first(site) < this.first[g]) this.first[g] = sites.first(site);
    if (sites.last(site) > this.last[g]) this.last[g] = sites.last(site);
    merge(this.reasons, g, sites.reasons(site));
    merge(this.callers, g, sites.callers(site));
  }

  key(g: number): string {
    const prefix = this.prefixes[this.prefix[g]];
    return this.offset[g] < 0 ? prefix : `${prefix}+0x${this.offset[g].toString(16)}`;
  }

  /** The groups with the most drops first (then by key), at most limit of them. */
  ranked(limit: number): number[] {
    const counts = this.count.subarray(0, this.n);
    let ids: number[];
    if (limit < this.n) {
      // only groups that can be among the first limit are sorted with their keys
      const least = nthLargest(counts, limit);
      ids = [];
      for (let i = 0; i < this.n; i++) if (counts[i] >= least) ids.push(i);
    } else ids = Array.from({ length: this.n }, (_, i) => i);
    const keys = new Map(ids.map((i) => [i, this.key(i)]));
    ids.sort((a, b) => counts[b] - counts[a] || (keys.get(a)! < keys.get(b)! ? -1 : 1));
    return ids.length > limit ? ids.slice(0, limit) : ids;
  }

  private widen(cap: number): void {
    this.count = widen(this.count, cap);
    this.first = widen(this.first, cap);
    this.last = widen(this.last, cap);
    this.firstSite = widen(this.firstSite, cap);
    this.prefix = widen(this.prefix, cap);
    this.offset = widen(this.offset, cap);
  }

  private make(p: number, offset: number, site: number, sites: LogSites): number {
    if (this.n === this.count.length) this.widen(this.n * 4);
    const g = this.n++;
    this.prefix[g] = p;
    this.offset[g] = offset;
    this.first[g] = sites.first(site);
    this.last[g] = sites.last(site);
    this.firstSite[g] = site;
    return g;
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
 * Adds each site to its group (prefix[site], −1: not counted), in a loop of its own: a quarter
 * million groups spread their index over megabytes, and a loop that does little else between
 * two lookups lets the processor wait for many at once.
 */
function fillGroups(groups: Groups, prefix: Int32Array, offset: Int32Array | null, sites: LogSites): void {
  for (let id = 0; id < prefix.length; id++) if (prefix[id] >= 0) groups.add(prefix[id], offset ? offset[id] : -1, id, sites);
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

function merge(into: Map<number, Map<string, number>>, g: number, from: ReadonlyMap<string, number> | undefined): void {
  if (!from) return;
  let m = into.get(g);
  if (!m) into.set(g, (m = new Map()));
  for (const [k, n] of from) bump(m, k, n);
}

function sorted(m: ReadonlyMap<string, number> | undefined): Array<[string, number]> {
  return m ? [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])) : [];
}
