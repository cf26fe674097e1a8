/**
 * Gathering the evidence for diagnose's findings from the namespaces the
 * drops happened in: counters before the window, then after it for each
 * finding, plus what the drop's own flow points at (listeners on its port,
 * rp_filter on its interface, routes to both ends, conntrack fill, MTU).
 */
import { readFileSync } from 'node:fs';
import { NetnsShell, ownNetns, parseSoftnetDrops, snapshotNetns, type NsSnapshot } from '../host/netns.js';
import { evidenceFor, parseLsListeners, type EvidenceInput, type Finding } from './diagnose.js';

/** Namespaces snapshotted before the window: beyond this many named ones, only the drop's own are read after. */
const MAX_PRESNAPSHOT = 32;

function softnetTotal(): number | null {
  try {
    return parseSoftnetDrops(readFileSync('/proc/net/softnet_stat', 'utf8')).reduce((a, b) => a + b, 0);
  } catch {
    return null;
  }
}

function mtuFromIp(text: string | null): number | null {
  const m = text ? /\bmtu (\d+)/.exec(text) : null;
  return m ? Number(m[1]) : null;
}

/** The counters of a window: taken before it starts, compared after it ends. */
export class CounterWindow {
  readonly before = new Map<number, NsSnapshot>();
  private readonly softnetBefore = softnetTotal();
  private softnetAfter: number | null = null;

  /** netns: the one namespace in scope (--netns), else this one and the named ones */
  constructor(
    private readonly names: Map<number, string>,
    netns?: number,
  ) {
    const targets = netns ? [netns] : [ownNetns(), ...[...names.keys()].slice(0, MAX_PRESNAPSHOT)];
    for (const ino of targets) {
      const sh = this.shell(ino);
      if (sh.reachable) this.before.set(ino, snapshotNetns(sh));
    }
  }

  shell(inode: number): NetnsShell {
    return new NetnsShell(inode, this.names);
  }

  /** Ends the window for the machine-wide counters. */
  close(): void {
    this.softnetAfter = softnetTotal();
  }

  /** Backlog drops during the window, null when softnet_stat cannot be read. */
  get softnetDrops(): number | null {
    return this.softnetBefore !== null && this.softnetAfter !== null ? this.softnetAfter - this.softnetBefore : null;
  }

  /** What "checked" says of this window. */
  describe(): string[] {
    return [`counters before and after in ${this.before.size} network namespace(s)`, this.softnetDrops === null ? 'softnet_stat unreadable' : `softnet_stat (${this.softnetDrops} backlog drops)`];
  }

  /** Reads each finding's namespace now and sets its evidence (benign findings need none). */
  gather(findings: Finding[]): void {
    for (const f of findings) {
      if (f.benign) continue;
      const sh = this.shell(f.netns.inode);
      const iface = f.interfaces[0];
      const ctx = f.context;
      const c = sh.read('/proc/sys/net/netfilter/nf_conntrack_count');
      const m = sh.read('/proc/sys/net/netfilter/nf_conntrack_max');
      const input: EvidenceInput = {
        where: sh.label,
        before: this.before.get(f.netns.inode) ?? null,
        after: sh.reachable ? snapshotNetns(sh) : null,
        softnetDrops: this.softnetDrops,
        listeners: ctx.dport ? parseLsListeners(sh.run(['ss', '-ltnH', `sport = :${ctx.dport}`]), sh.run(['ss', '-lunH', `sport = :${ctx.dport}`])) : null,
        rpFilter: iface ? { all: sh.read('/proc/sys/net/ipv4/conf/all/rp_filter')?.trim() ?? null, iface: sh.read(`/proc/sys/net/ipv4/conf/${iface}/rp_filter`)?.trim() ?? null } : null,
        routeToSource: ctx.saddr ? sh.run(['ip', 'route', 'get', ctx.saddr]) : null,
        routeToDest: ctx.daddr ? sh.run(['ip', 'route', 'get', ctx.daddr]) : null,
        conntrack: c && m ? { count: Number(c), max: Number(m) } : null,
        mtu: null,
      };
      const dev = input.routeToDest ? /\bdev (\S+)/.exec(input.routeToDest)?.[1] : undefined;
      if (dev) input.mtu = Number(sh.read(`/sys/class/net/${dev}/mtu`) ?? NaN) || mtuFromIp(sh.run(['ip', 'link', 'show', dev]));
      f.evidence = evidenceFor(f, input);
    }
  }
}
