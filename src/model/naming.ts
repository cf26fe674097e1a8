/**
 * Names for what the kernel gives as numbers: addresses → sym+0xoff
 * (cached: a node has few drop sites), reason codes, netns inodes. Pure
 * given its tables; reading /run/netns is netnsNames()'s one side effect.
 */
import { readdirSync, statSync } from 'node:fs';
import type { Naming } from '../analysis/aggregate.js';
import { formatSymbol, type SymbolLookup } from './kallsyms.js';
import type { ReasonTable } from './reasons.js';

export function makeNaming(
  syms: SymbolLookup | null,
  reasons: ReasonTable,
  netns: Map<number, string> = new Map(),
  pod: (inode: number, ifindex: number) => string | null = () => null,
): Naming {
  const cache = new Map<bigint, { symbol: string; function: string; module: string | null }>();
  return {
    location(addr) {
      let v = cache.get(addr);
      if (!v) {
        const r = syms?.lookup(addr) ?? null;
        const symbol = formatSymbol(r, addr);
        v = { symbol, function: r && !r.implausible ? r.name : symbol, module: r && !r.implausible ? r.module : null };
        cache.set(addr, v);
      }
      return v;
    },
    reason: (code) => reasons.name(code),
    netns: (inode) => netns.get(inode) ?? null,
    pod,
  };
}

/** Inode → name of the namespaces `ip netns` knows (/run/netns). */
export function netnsNames(dir = '/run/netns'): Map<number, string> {
  const out = new Map<number, string>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      out.set(Number(statSync(`${dir}/${n}`).ino), n);
    } catch {
      // deleted meanwhile
    }
  }
  return out;
}
