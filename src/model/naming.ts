/**
 * Names for what the kernel gives as numbers: addresses → sym+0xoff
 * (cached: a node has few drop sites), reason codes, netns inodes. Pure
 * given its tables.
 */
import type { RawSocket } from './decode.js';
import { socketLabel, socketRecord, type CgroupLookup } from './drop.js';
import { formatSymbol, type SymbolLookup } from './kallsyms.js';
import type { ReasonTable } from './reasons.js';

export interface Naming {
  location(addr: bigint): { symbol: string; function: string; module: string | null };
  reason(code: number): string;
  /** a network namespace's name (from /run/netns) or null */
  netns?(inode: number): string | null;
  /** the Kubernetes pod ("namespace/name") a drop in this namespace, on this interface, belongs to */
  pod?(inode: number, ifindex: number): string | null;
  /** an interface's name asked from its namespace, when no event or recording named it */
  interface?(inode: number, ifindex: number): string | null;
  /** a receiving socket and its owner ("UDP 0.0.0.0:7000 uid 0 pod default/web-0") */
  socket?(s: RawSocket): string;
}

export function makeNaming(
  syms: SymbolLookup | null,
  reasons: ReasonTable,
  netns: Map<number, string> = new Map(),
  pod: (inode: number, ifindex: number) => string | null = () => null,
  owner: CgroupLookup | null = null,
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
    socket: (s) => socketLabel(socketRecord(s, owner)!),
  };
}

/** A namespace as people know it, for a packet's path: its pod, else its `ip netns` name (null: neither). */
export function netnsLabel(n: Naming): (inode: number) => string | null {
  return (inode) => n.pod?.(inode, 0) ?? n.netns?.(inode) ?? null;
}
