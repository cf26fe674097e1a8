/**
 * Drop-reason names from the running kernel. First source: the kernel's BTF
 * `enum skb_drop_reason` (via the addon, prefix stripped). Second: the
 * tracefs format file of skb:kfree_skb, whose print fmt lists the pairs.
 * Never a table of our own: codes move between kernels, and a wrong name
 * is worse than a number.
 */
import { readFileSync } from 'node:fs';

export type ReasonSource = 'btf' | 'tracefs' | 'none' | 'recording';

/** Codes above this carry a subsystem in their high 16 bits (SKB_DROP_REASON_SUBSYS_SHIFT). */
const SUBSYS_SHIFT = 16;

export class ReasonTable {
  private readonly byCode = new Map<number, string>();
  private readonly byName = new Map<string, number>();
  private readonly subsystems = new Map<number, string>();
  private readonly subsystemCodes = new Map<string, number>();

  /**
   * pairs: code and name, core and subsystem reasons alike; subsystems: index and name of
   * enum skb_drop_reason_subsys (OPENVSWITCH, MAC80211_UNUSABLE), for codes nothing names.
   */
  constructor(
    pairs: Iterable<[number, string]>,
    readonly source: ReasonSource,
    subsystems: Iterable<[number, string]> = [],
  ) {
    for (const [code, name] of pairs) {
      if (!this.byCode.has(code)) this.byCode.set(code, name);
      this.byName.set(name, code);
    }
    for (const [i, name] of subsystems) {
      this.subsystems.set(i, name);
      this.subsystemCodes.set(name, i);
    }
  }

  /** index → name of the reason subsystems this kernel has (for recordings) */
  subsystemEntries(): Array<[number, string]> {
    return [...this.subsystems.entries()];
  }

  get size(): number {
    return this.byCode.size;
  }

  /**
   * The name; for a code this kernel does not name, the bare number, or SUBSYS:code for a
   * subsystem reason (OPENVSWITCH:3; SUBSYS7:3 when even the subsystem has no name): never
   * another reason's name.
   */
  name(code: number): string {
    const n = this.byCode.get(code);
    if (n !== undefined) return n;
    const sub = code >>> SUBSYS_SHIFT;
    if (!sub) return String(code);
    return `${this.subsystems.get(sub) ?? `SUBSYS${sub}`}:${code & 0xffff}`;
  }

  known(code: number): boolean {
    return this.byCode.has(code);
  }

  /**
   * Code for a user-typed name: case-insensitive, with or without the
   * SKB_DROP_REASON_ prefix; a number is taken as is. Undefined when unknown.
   */
  code(name: string): number | undefined {
    if (/^\d+$/.test(name)) return Number(name);
    const sub = /^([A-Z0-9_]+):(\d+)$/i.exec(name);
    if (sub) {
      const i = /^SUBSYS(\d+)$/i.exec(sub[1]) ? Number(sub[1].slice(6)) : this.subsystemCodes.get(sub[1].toUpperCase());
      const low = Number(sub[2]);
      return i !== undefined && i > 0 && low <= 0xffff ? ((i << SUBSYS_SHIFT) | low) >>> 0 : undefined;
    }
    const n = name.toUpperCase().replace(/^SKB_DROP_REASON_/, '').replace(/^SKB_/, '');
    return this.byName.get(n);
  }

  /** Names close to a mistyped one, for the error message. */
  /** Names close to a mistyped one: by edit distance, then by containing it. */
  suggest(name: string, max = 3): string[] {
    const n = name.toUpperCase();
    const near = Math.max(2, Math.floor(n.length / 4));
    return [...this.byName.keys()]
      .map((k) => ({ k, d: k.includes(n) || n.includes(k) ? Math.min(editDistance(n, k), near) : editDistance(n, k) }))
      .filter((x) => x.d <= near)
      .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k))
      .slice(0, max)
      .map((x) => x.k);
  }

  entries(): Array<[number, string]> {
    return [...this.byCode.entries()].sort((a, b) => a[0] - b[0]);
  }
}

/** Parses the `__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, …)` list of a format file. */
export function parseTracefsFormat(text: string): Array<[number, string]> {
  const at = text.indexOf('__print_symbolic(REC->reason');
  if (at < 0) return [];
  const out: Array<[number, string]> = [];
  const re = /\{\s*(\d+)\s*,\s*"([A-Z0-9_]+)"\s*\}/g;
  re.lastIndex = at;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push([Number(m[1]), m[2]]);
  return out;
}

export const TRACEFS_FORMATS = [
  '/sys/kernel/tracing/events/skb/kfree_skb/format',
  '/sys/kernel/debug/tracing/events/skb/kfree_skb/format',
];

/** Loads the table: BTF pairs if given, else the first readable tracefs format file. */
export function loadReasons(btfPairs: Array<[number, string]> | null, formats = TRACEFS_FORMATS, subsystems: Array<[number, string]> = []): ReasonTable {
  if (btfPairs && btfPairs.length) return new ReasonTable(btfPairs, 'btf', subsystems);
  for (const f of formats) {
    try {
      const pairs = parseTracefsFormat(readFileSync(f, 'utf8'));
      if (pairs.length) return new ReasonTable(pairs, 'tracefs');
    } catch {
      // not mounted or not readable: try the next place
    }
  }
  return new ReasonTable([], 'none');
}

/** Levenshtein distance: insertions, deletions and substitutions each cost 1. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
