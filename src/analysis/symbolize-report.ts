/**
 * The report of a symbolized log: drops by function and by location, with their reasons,
 * callers and hints, from the log's sites as the judgement resolved them. Pure.
 */
import type { LogKind } from '../formats/droplog.js';
import { isGenericFree } from '../model/functions.js';
import { hintId } from '../model/hints.js';
import { hexSigned, type Judgement, type LogSite, type Resolution, type SnapshotVerdict } from './judge.js';
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

export function symbolizeReport(sites: readonly LogSite[], judgement: Judgement, t: ScanTally): Report {
  const fns = new Map<string, Acc>();
  const locs = new Map<string, Acc>();
  let drops = 0;
  let wrongNames = 0;
  let unresolved = 0;
  let bareLines = 0;
  for (const s of sites) {
    if (s.bare && !t.bareAsDrops) {
      bareLines += s.lines;
      continue;
    }
    const r = s.res!;
    drops += s.count;
    if (r.logNameWrong) wrongNames += s.lines;
    if (r.unresolved) unresolved += s.lines;
    accumulate(fns, r.function ?? r.symbol ?? '(unresolved)', s, r);
    accumulate(locs, r.symbol ?? '(unresolved)', s, r);
  }
  const warnings = [...t.warnings];
  if (wrongNames) {
    warnings.push(`${wrongNames} line(s) printed a name that is none of the names at its address (dropwatch before 1.5.5 misnamed module addresses); the re-resolved name is shown`);
  }
  const rows = (m: Map<string, Acc>, withAddress: boolean): Row[] =>
    [...m.entries()]
      .map(([key, a]) => ({
        key,
        count: a.count,
        share: drops ? a.count / drops : 0,
        module: a.module,
        reasons: sorted(a.reasons).map(([r]) => r),
        callers: isGenericFree(key.replace(/\+0x[0-9a-f]+$/, '')) ? sorted(a.callers).map(([name, count]) => ({ name, count })) : [],
        firstLine: a.first,
        lastLine: a.last,
        ...(withAddress ? { address: a.address } : {}),
        hint: hintId(sorted(a.reasons)[0]?.[0] ?? null, key.startsWith('0x') || key.startsWith('(') ? null : key.replace(/\+0x[0-9a-f]+$/, '')),
      }))
      .sort((x, y) => y.count - x.count || x.key.localeCompare(y.key));
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
    byFunction: rows(fns, false),
    byLocation: rows(locs, true),
  };
}

interface Acc {
  count: number;
  module: string | null;
  reasons: Map<string, number>;
  callers: Map<string, number>;
  first: number;
  last: number;
  address: string | null;
}

function accumulate(m: Map<string, Acc>, key: string, s: LogSite, r: Resolution): void {
  let a = m.get(key);
  if (!a) m.set(key, (a = { count: 0, module: r.module, reasons: new Map(), callers: new Map(), first: s.first, last: s.last, address: r.address }));
  a.count += s.count;
  a.first = Math.min(a.first, s.first);
  a.last = Math.max(a.last, s.last);
  for (const [k, n] of s.reasons) bump(a.reasons, k, n);
  for (const [k, n] of s.callers) bump(a.callers, k, n);
}


function sorted(m: Map<string, number>): Array<[string, number]> {
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

