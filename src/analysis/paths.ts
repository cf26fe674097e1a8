/**
 * Paths of dropped packets (`--path`), counted by their short form per drop site and reason:
 * "a0 (podA) out → b0 (host) in → fib: table main: via b0 → route: local delivery → dropped
 * at nft_do_chain+0x46f (NETFILTER_DROP)", how many drops took it and how long they took from
 * the first step to the drop. Read from raw records, as stacks.ts counts stacks.
 */
import { EV, FLAG, pathAt } from '../model/decode.js';
import { dropSite } from '../model/drop.js';
import type { SymbolLookup } from '../model/kallsyms.js';
import { formatNs, pathHops, pathSpanNs, routeOf, type NetnsName } from '../model/path.js';
import type { ReasonTable } from '../model/reasons.js';

/** Distinct paths kept: past it, drops of new paths are counted as `other`. */
const MAX_PATHS = 5_000;
/** Latencies kept per path for its median: the first ones (a flood repeats itself). */
const MAX_SAMPLES = 1_000;

export interface PathRow {
  /** the hops, oldest first, then the route held at the drop */
  hops: string[];
  /** the drop site (symbol+offset) and reason */
  site: string;
  reason: string | null;
  count: number;
  /** from the path's first step to the drop */
  medianNs: number;
  maxNs: number;
}

export interface PathSummary {
  rows: PathRow[];
  /** dropped packets with a path block but no step (they matched the filters only at the drop, or were made there) */
  noSteps: number;
  /** drops of paths beyond MAX_PATHS */
  other: number;
}

export class PathCounts {
  private readonly rows = new Map<string, PathRow & { samples: number[] }>();
  private noSteps = 0;
  private other = 0;

  constructor(
    private readonly syms: SymbolLookup | null,
    private readonly reasons: ReasonTable,
    private readonly nsName: NetnsName,
  ) {}

  /** Counts the paths of a raw batch's records (those recorded with --path). */
  add(buf: Buffer, stride: number, count: number, weight = 1): void {
    for (let i = 0; i < count; i++) {
      const o = i * stride;
      if (!(buf[o + EV.flags] & FLAG.PATH)) continue;
      const p = pathAt(buf, o, stride)!;
      const route = routeOf(p, this.syms);
      if (!p.steps.length && !route) {
        this.noSteps += weight;
        continue;
      }
      const site = dropSite(this.syms, buf.readBigUInt64LE(o + EV.location)).symbol;
      const reason = buf[o + EV.flags] & FLAG.REASON ? this.reasons.name(buf.readUInt32LE(o + EV.reason)) : null;
      const hops = pathHops(p, route, this.nsName);
      const key = `${hops.join('\n')}\n${site}\n${reason}`;
      let row = this.rows.get(key);
      if (!row) {
        if (this.rows.size >= MAX_PATHS) {
          this.other += weight;
          continue;
        }
        this.rows.set(key, (row = { hops, site, reason, count: 0, medianNs: 0, maxNs: 0, samples: [] }));
      }
      const ns = pathSpanNs(p, buf.readBigUInt64LE(o + EV.ts_ns));
      row.count += weight;
      row.maxNs = Math.max(row.maxNs, ns);
      if (row.samples.length < MAX_SAMPLES) row.samples.push(ns);
    }
  }

  summary(top = 10): PathSummary {
    const rows = [...this.rows.values()]
      .sort((a, b) => b.count - a.count)
      .slice(0, top)
      .map(({ samples, ...r }) => {
        const s = [...samples].sort((a, b) => a - b);
        return { ...r, medianNs: s.length ? s[s.length >> 1] : 0 };
      });
    return { rows, noSteps: this.noSteps, other: this.other };
  }
}

/** The text `report --paths` prints: one block per path, most drops first. */
export function formatPaths(s: PathSummary): string {
  if (!s.rows.length && !s.noSteps) return '  none: the recording has no paths (record --path)';
  const lines: string[] = [];
  for (const r of s.rows) {
    lines.push(`  ${r.count} drop${r.count === 1 ? '' : 's'}, ${formatNs(r.medianNs)} median from first step to drop (max ${formatNs(r.maxNs)}):`);
    lines.push(`    ${[...r.hops, `dropped at ${r.site}${r.reason ? ` (${r.reason})` : ''}`].join(' → ')}`);
  }
  if (s.noSteps) lines.push(`  ${s.noSteps} drop${s.noSteps === 1 ? '' : 's'} with no step before the drop (made or first matched there)`);
  if (s.other) lines.push(`  ${s.other} drops of further distinct paths not listed`);
  return lines.join('\n');
}
