/**
 * Kernel stacks of drops (`--stack`), counted per drop site from raw events, and the caller
 * they name for drops in generic free functions: a NOT_SPECIFIED drop "at" skb_release_data
 * or kfree_skb_list_reason says nothing until the stack says who let go of the packet.
 * Frames are resolved through a lookup (the live tracer, or a recording's STACKS blocks).
 */
import { EV } from '../model/decode.js';
import { isGenericFree } from '../model/functions.js';
import { formatSymbol, type SymbolLookup } from '../model/kallsyms.js';

const MAX_STACKS = 10_000;

/** One distinct stack at a site, with its drops. */
export interface StackRow {
  count: number;
  frames: string[];
}

/** The stacks of one drop site. */
export interface SiteStacks {
  site: string;
  function: string | null;
  total: number;
  /** for a generic free function: the first caller outside them, by drops */
  callers: Array<{ function: string; count: number }>;
  stacks: StackRow[];
}


/** The first function of a stack (innermost first) that is not a generic free function. */
export function callerOf(functions: readonly (string | null)[]): string | null {
  for (const f of functions) if (f && !isGenericFree(f)) return f;
  return null;
}

export class StackCounts {
  /** location → stack id → drops */
  private readonly bySite = new Map<bigint, Map<number, number>>();
  private size = 0;

  /** Counts the stacks of a raw batch's records (those recorded with one). */
  add(buf: Buffer, stride: number, count: number, weight = 1): void {
    for (let i = 0; i < count; i++) {
      const o = i * stride;
      const id = buf.readInt32LE(o + EV.stack_id);
      if (id < 0) continue;
      const loc = buf.readBigUInt64LE(o + EV.location);
      let m = this.bySite.get(loc);
      if (!m) this.bySite.set(loc, (m = new Map()));
      if (!m.has(id) && this.size++ >= MAX_STACKS) continue;
      m.set(id, (m.get(id) ?? 0) + weight);
    }
  }

  get empty(): boolean {
    return this.bySite.size === 0;
  }

  /** The sites' stacks, most drops first, frames symbolized; frames(id) gives a stack's addresses. */
  sites(syms: SymbolLookup | null, frames: (id: number) => readonly bigint[] | null, top = 5): SiteStacks[] {
    const out: SiteStacks[] = [];
    for (const [loc, ids] of this.bySite) {
      const r = syms?.lookup(loc) ?? null;
      const fn = r && !r.implausible ? r.name : null;
      const generic = fn !== null && isGenericFree(fn);
      const callers = new Map<string, number>();
      // stacks that differ only in the tracing frames above the drop site are one stack
      const byFrames = new Map<string, StackRow>();
      let total = 0;
      for (const [id, n] of ids) {
        total += n;
        const all = frames(id) ?? [];
        // the program, bpf_trace_run and the drop function come first: start at the site itself
        const at = all.indexOf(loc);
        const addrs = at >= 0 ? all.slice(at) : all;
        const named = addrs.map((a) => syms?.lookup(a) ?? null);
        const text = addrs.map((a, k) => formatSymbol(named[k], a));
        const key = text.join('\n');
        const row = byFrames.get(key);
        if (row) row.count += n;
        else byFrames.set(key, { count: n, frames: text });
        if (generic) {
          const c = callerOf(named.map((x) => (x && !x.implausible ? x.name : null)));
          if (c) callers.set(c, (callers.get(c) ?? 0) + n);
        }
      }
      const stacks = [...byFrames.values()].sort((a, b) => b.count - a.count);
      out.push({
        site: formatSymbol(r, loc),
        function: fn,
        total,
        callers: [...callers].map(([function_, count]) => ({ function: function_, count })).sort((a, b) => b.count - a.count),
        stacks: stacks.slice(0, top),
      });
    }
    return out.sort((a, b) => b.total - a.total);
  }
}

/** Stacks as text: per site, its callers (generic free functions) and its stacks, innermost frame first. */
export function formatStacks(sites: readonly SiteStacks[], frames = 12): string {
  const lines: string[] = [];
  for (const s of sites) {
    lines.push(`${s.site}: ${s.total} drops with a stack${s.callers.length ? `; freed for ${s.callers.map((c) => `${c.function} (${c.count})`).join(', ')}` : ''}`);
    for (const st of s.stacks) {
      lines.push(`  ${st.count} ×`);
      for (const f of st.frames.slice(0, frames)) lines.push(`      ${f}`);
      if (st.frames.length > frames) lines.push(`      … ${st.frames.length - frames} more frames`);
    }
  }
  return lines.join('\n');
}
