/**
 * Gathering the evidence for diagnose's findings from the namespaces the
 * drops happened in: counters before the window, then after it for each
 * finding, plus what the drop's own flow points at (listeners on its port,
 * rp_filter on its interface, routes to both ends, conntrack fill, MTU).
 */
import { readFileSync } from 'node:fs';
import { NetnsShell, ownNetns, parseFullListeners, parseSoftnetDrops, snapshotNetns, type NsSnapshot } from '../host/netns.js';
import { counterRule } from '../model/counters.js';
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

/** time_squeeze summed over CPUs (third column of /proc/net/softnet_stat, hex). */
function softnetSqueezed(): number | null {
  try {
    return readFileSync('/proc/net/softnet_stat', 'utf8')
      .split('\n')
      .filter(Boolean)
      .reduce((n, l) => n + parseInt(l.trim().split(/\s+/)[2] ?? '0', 16), 0);
  } catch {
    return null;
  }
}

/** Drops traced in a window, by namespace: per interface, and per reason, to tell a counter's drops from the traced ones. */
export interface TracedDrops {
  onInterface(netns: number, iface: string, reasons?: readonly string[]): number;
  withReason(netns: number, reasons: readonly string[]): number;
}

/** TracedDrops over the window's count keys (Aggregator.keyTotals()). */
export function tracedDrops(keys: ReadonlyArray<{ netns: number; iface: string; reason: string; packets: number }>): TracedDrops {
  const sum = (match: (k: (typeof keys)[number]) => boolean) => keys.reduce((n, k) => n + (match(k) ? k.packets : 0), 0);
  return {
    onInterface: (netns, iface, reasons) => sum((k) => k.netns === netns && k.iface === iface && (!reasons || reasons.includes(k.reason))),
    withReason: (netns, reasons) => sum((k) => k.netns === netns && reasons.includes(k.reason)),
  };
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
  private readonly squeezedBefore = softnetSqueezed();
  private squeezedAfter: number | null = null;

  /** netns: the one namespace in scope (--netns), else this one and the named ones; rules: false for counters only */
  constructor(
    private readonly names: Map<number, string>,
    netns?: number,
    private readonly opts: { rules?: boolean } = {},
  ) {
    const targets = netns ? [netns] : [ownNetns(), ...[...names.keys()].slice(0, MAX_PRESNAPSHOT)];
    for (const ino of targets) {
      const sh = this.shell(ino);
      if (sh.reachable) this.before.set(ino, snapshotNetns(sh, opts));
    }
  }

  shell(inode: number): NetnsShell {
    return new NetnsShell(inode, this.names);
  }

  /** Ends the window for the machine-wide counters. */
  close(): void {
    this.softnetAfter = softnetTotal();
    this.squeezedAfter = softnetSqueezed();
  }

  /** Backlog drops during the window, null when softnet_stat cannot be read. */
  get softnetDrops(): number | null {
    return this.softnetBefore !== null && this.softnetAfter !== null ? this.softnetAfter - this.softnetBefore : null;
  }

  /** What "checked" says of this window. */
  describe(): string[] {
    return [`counters before and after in ${this.before.size} network namespace(s)`, this.softnetDrops === null ? 'softnet_stat unreadable' : `softnet_stat (${this.softnetDrops} backlog drops)`];
  }

  /**
   * Findings of drops only counters saw: in every namespace snapshotted before the window, a
   * counter of a known drop (model/counters.ts) that moved by more than the drops traced for
   * it there. One finding per rule and interface; its count is what the trace did not see.
   */
  counterFindings(traced: TracedDrops, seconds: number): Finding[] {
    const out: Finding[] = [];
    const moved = (ino: number, where: string, label: string, prefix: string, deltas: Array<[string, number]>) => {
      const best = new Map<string, Finding>();
      for (const [key, delta] of deltas) {
        const hit = counterRule(key);
        if (!hit || delta <= 0) continue;
        const { rule, m } = hit;
        const iface = rule.id.startsWith('counter/dev') || rule.id === 'counter/qdisc' || rule.id === 'counter/ethtool' ? m[1] : null;
        const seen = iface ? traced.onInterface(ino, iface, rule.id === 'counter/qdisc' ? rule.reasons : undefined) : rule.reasons.length ? traced.withReason(ino, rule.reasons) : 0;
        const count = delta - seen;
        // a counter that moved with traced drops is those drops; what the trace missed is a
        // finding of its own only when it outnumbers them (the snapshots and the attach are
        // not the same instant: a drop or two falls between them)
        if (count <= 0 || (seen > 0 && count <= seen)) continue;
        const id = `${rule.id}|${iface ?? ''}`;
        if ((best.get(id)?.count ?? 0) >= count) continue;
        const h = rule.hint(m, prefix);
        best.set(id, {
          rank: 0,
          location: key,
          function: null,
          reason: null,
          count,
          share: 0,
          rate: seconds > 0 ? count / seconds : 0,
          avgLen: 0,
          interfaces: iface ? [iface] : [],
          netns: { inode: ino, label },
          flows: [],
          context: { reason: null, function: null, ifname: iface, nsPrefix: prefix, l4: null, saddr: null, daddr: null, dport: null },
          hint: h,
          evidence: [{ verdict: 'confirms', text: `${key} rose by ${delta} in ${where} during the window${seen ? `; ${seen} of them were traced` : ', and no drop was traced for it'}` }],
          syn: 0,
          unicast: 0,
          topUnicast: null,
          benign: null,
          baseline: null,
          impact: { class: rule.impact, why: '' },
          cause: h.title,
          counter: { key, delta: count, impact: rule.impact },
        });
      }
      // an overflowing accept queue names its listener: the one whose queue is full now
      for (const f of best.values()) {
        if (f.hint?.id !== 'counter/ListenOverflows') continue;
        const full = parseFullListeners(this.shell(ino).run(['ss', '-ltnH']) ?? '');
        for (const l of full) {
          f.evidence.push({ verdict: 'confirms', text: `${l.local} in ${where} has ${l.queued} connection(s) waiting for accept() with a backlog of ${l.backlog}` });
        }
        if (full.length) f.cause = `the accept queue of ${full.map((l) => l.local).join(', ')} is full (${full[0].queued} waiting, backlog ${full[0].backlog}): the service is not accepting, new connections are dropped`;
      }
      out.push(...best.values());
    };
    for (const [ino, before] of this.before) {
      const sh = this.shell(ino);
      if (!sh.reachable) continue;
      const after = snapshotNetns(sh, this.opts);
      const deltas: Array<[string, number]> = [...after.snmp].map(([k, v]) => [k, v - (before.snmp.get(k) ?? v)]);
      moved(ino, sh.label, `${ino} (${sh.label})`, sh.commandPrefix, deltas);
    }
    if (this.squeezedBefore !== null && this.squeezedAfter !== null) {
      moved(0, 'this machine', '(machine-wide)', '', [['softnet:squeezed', this.squeezedAfter - this.squeezedBefore]]);
    }
    return out;
  }

  /** Reads each finding's namespace now and sets its evidence (benign findings need none). */
  gather(findings: Finding[]): void {
    for (const f of findings) {
      if (f.benign || f.counter) continue;
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

/** The key of a traced count: namespace, interface name, reason name. */
type KeyTotal = { netns: number; iface: string; reason: string; packets: number };

/**
 * Counter findings for a running view (live): a CounterWindow per period (every `everyMs`),
 * compared with the drops traced in that same period. Each snapshot runs a few commands per
 * namespace (~15 ms each here; no iptables-save), hence a period of seconds, not the screen's
 * interval.
 */
export class CounterWatch {
  private window: CounterWindow;
  private since: number;
  private tracedAt: KeyTotal[];
  /** the counter findings of the last whole period */
  latest: Finding[] = [];

  constructor(
    private readonly names: () => Map<number, string>,
    private readonly netns: number | undefined,
    keys: KeyTotal[],
    now: number,
    private readonly everyMs = 5000,
  ) {
    this.window = new CounterWindow(names(), netns, { rules: false });
    this.since = now;
    this.tracedAt = keys;
  }

  /** Ends a period when it is due: its findings become `latest`; returns whether it did. */
  tick(now: number, keys: KeyTotal[]): boolean {
    if (now - this.since < this.everyMs) return false;
    const before = new Map(this.tracedAt.map((k) => [`${k.netns}|${k.iface}|${k.reason}`, k.packets]));
    const during = keys.map((k) => ({ ...k, packets: k.packets - (before.get(`${k.netns}|${k.iface}|${k.reason}`) ?? 0) }));
    this.window.close();
    this.latest = this.window.counterFindings(tracedDrops(during), (now - this.since) / 1000);
    this.window = new CounterWindow(this.names(), this.netns, { rules: false });
    this.since = now;
    this.tracedAt = keys;
    return true;
  }
}

/** One line of a counter finding: "TcpExt:ListenOverflows +54 in dtlab-hostA: a listening socket's accept queue overflowed". */
export function countedLine(f: Finding): string {
  return `${f.counter?.key ?? f.location} +${f.count} in ${f.netns.label}: ${f.cause ?? f.hint?.title ?? ''}`;
}
