/**
 * Reading the host for diagnose's findings: the counters and rule sets of the namespaces the
 * drops happened in, before the window and after it, and for each finding only the facts
 * its evidence rules ask for (analysis/evidence.ts), each read once per namespace or per
 * question. Drops only counters saw become findings of their own here too.
 */
import { readFileSync } from 'node:fs';
import { countTcFilters, parseBpftoolNet, parseCgroupTree, parseLinkXdp, parseProgInfo, parseTcFilters } from '../host/bpfprogs.js';
import { hasTool, NetnsShell, ownNetns, parseFullListeners, parseListeners, parseSoftnetDrops, readCounters, readIptables, readNft, snapshotNetns, type NsSnapshot } from '../host/netns.js';
import { parseLocalAddrs, parsePolicyRules, parseRouteGet, parseRouteList } from '../host/routes.js';
import { parseXfrmPolicies } from '../host/xfrm.js';
import { counterRule } from '../model/counters.js';
import { causeOf } from './diagnose.js';
import { factsNeeded, judge, type FactKind, type Facts } from './evidence.js';
import type { Finding } from './finding.js';

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

/** What has been read in one namespace after the window, each at most once. */
interface NsReads {
  counters?: Map<string, number>;
  iptables?: ReturnType<typeof readIptables>;
  nft?: ReturnType<typeof readNft>;
  local?: string[];
  /** `ip rule` per address family */
  rules?: Map<string, string | null>;
  xfrm?: string | null;
  progs?: NonNullable<Facts['progs']>['attached'];
}

/** The counters of a window: taken before it starts, compared after it ends. */
export class CounterWindow {
  readonly before = new Map<number, NsSnapshot>();
  private readonly softnetBefore = softnetTotal();
  private softnetAfter: number | null = null;
  private readonly squeezedBefore = softnetSqueezed();
  private squeezedAfter: number | null = null;
  private readonly after = new Map<number, NsReads>();
  private progInfo: ReturnType<typeof parseProgInfo> | undefined;
  private cgroupProgs: Facts['cgroupProgs'] | undefined;
  /** every fact read after the window, by kind: what "checked" reports */
  readonly read = new Map<FactKind, number>();

  /** netns: the one namespace in scope (--netns), else this one and the named ones; rules: false for counters only */
  constructor(
    private readonly names: Map<number, string>,
    netns?: number,
    opts: { rules?: boolean } = {},
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
    const read = [...this.read.keys()];
    return [
      `counters before and after in ${this.before.size} network namespace(s)`,
      this.softnetDrops === null ? 'softnet_stat unreadable' : `softnet_stat (${this.softnetDrops} backlog drops)`,
      ...(read.length ? [`read for the findings: ${read.join(', ')}`] : []),
    ];
  }

  private reads(ino: number): NsReads {
    let r = this.after.get(ino);
    if (!r) this.after.set(ino, (r = {}));
    return r;
  }

  /** The namespace's counters after the window, read once. */
  private countersAfter(ino: number): Map<string, number> {
    const r = this.reads(ino);
    return (r.counters ??= readCounters(this.shell(ino)));
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
          flow: null,
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
      out.push(...best.values());
    };
    for (const [ino, before] of this.before) {
      const sh = this.shell(ino);
      if (!sh.reachable) continue;
      const after = this.countersAfter(ino);
      const deltas: Array<[string, number]> = [...after].map(([k, v]) => [k, v - (before.counters.get(k) ?? v)]);
      moved(ino, sh.label, `${ino} (${sh.label})`, sh.commandPrefix, deltas);
    }
    if (this.squeezedBefore !== null && this.squeezedAfter !== null) {
      moved(0, 'this machine', '(machine-wide)', '', [['softnet:squeezed', this.squeezedAfter - this.squeezedBefore]]);
    }
    return out;
  }

  /**
   * Sets each finding's evidence from the rules that apply to it (benign findings need none),
   * reading in its namespace only what those rules ask for; a counter finding's cause then
   * follows its evidence.
   */
  gather(findings: Finding[]): void {
    for (const f of findings) {
      if (f.benign) continue;
      const needs = factsNeeded(f);
      if (!needs.size) continue;
      const evidence = judge(f, this.facts(f, needs));
      f.evidence = f.counter ? [...f.evidence, ...evidence] : evidence;
      if (f.counter) f.cause = causeOf(f);
    }
  }

  /** Reads the facts a finding's rules need, in its namespace. */
  facts(f: Finding, needs: ReadonlySet<FactKind>): Facts {
    const ino = f.netns.inode;
    const sh = this.shell(ino);
    const x: Facts = { where: sh.label };
    if (!sh.reachable) return x;
    const r = this.reads(ino);
    const before = this.before.get(ino) ?? null;
    const ctx = f.context;
    const iface = f.interfaces[0];
    const v6 = f.flow?.ipver === 6;
    for (const need of needs) this.read.set(need, (this.read.get(need) ?? 0) + 1);
    if (needs.has('counters')) x.counters = before ? { before: before.counters, after: this.countersAfter(ino) } : null;
    if (needs.has('iptables') || needs.has('nft')) {
      r.iptables ??= readIptables(sh);
      x.iptables = r.iptables ? { before: before?.iptables ?? null, after: r.iptables } : null;
    }
    if (needs.has('nft')) {
      if (r.nft === undefined) r.nft = readNft(sh, r.iptables ?? null);
      x.nft = r.nft ? { before: before?.nft ?? null, after: r.nft } : null;
    }
    if (needs.has('local')) {
      r.local ??= parseLocalAddrs(sh.run(['ip', '-j', 'addr', 'show']) ?? '[]');
      x.local = ctx.daddr && r.local.length ? r.local.includes(ctx.daddr) : null;
    }
    if (needs.has('conntrack')) {
      const c = sh.read('/proc/sys/net/netfilter/nf_conntrack_count');
      const m = sh.read('/proc/sys/net/netfilter/nf_conntrack_max');
      x.conntrack = c && m ? { count: Number(c), max: Number(m) } : null;
    }
    if (needs.has('listeners') && ctx.dport) {
      const tcp = sh.run(['ss', '-ltnH', `sport = :${ctx.dport}`]);
      const udp = sh.run(['ss', '-lunH', `sport = :${ctx.dport}`]);
      x.listeners = tcp === null && udp === null ? null : { tcp: parseListeners(tcp ?? ''), udp: parseListeners(udp ?? '') };
    }
    if (needs.has('fullListeners')) x.fullListeners = parseFullListeners(sh.run(['ss', '-ltnH']) ?? '');
    if (needs.has('rpFilter') && iface) x.rpFilter = { all: sh.read('/proc/sys/net/ipv4/conf/all/rp_filter')?.trim() ?? null, iface: sh.read(`/proc/sys/net/ipv4/conf/${iface}/rp_filter`)?.trim() ?? null };
    if (needs.has('routeToSource') && ctx.saddr) x.routeToSource = sh.run(['ip', 'route', 'get', ctx.saddr]);
    if ((needs.has('routeToDest') || needs.has('mtu')) && ctx.daddr) x.routeToDest = sh.run(['ip', 'route', 'get', ctx.daddr]);
    if (needs.has('mtu') && x.routeToDest) {
      const dev = /\bdev (\S+)/.exec(x.routeToDest)?.[1];
      if (dev) x.mtu = Number(sh.read(`/sys/class/net/${dev}/mtu`) ?? NaN) || mtuFromIp(sh.run(['ip', 'link', 'show', dev]));
    }
    if (needs.has('softnetDrops')) x.softnetDrops = this.softnetDrops;
    if (needs.has('routing') && ctx.daddr) {
      const fam = v6 ? ['-6'] : ['-4'];
      // the question the dropped packet asked: input routing from its source on its interface
      const input = f.reason === 'IP_OUTNOROUTES' || !ctx.saddr || !iface ? [] : ['from', ctx.saddr, 'iif', iface];
      const got = sh.exec(['ip', ...fam, '-j', 'route', 'get', ctx.daddr, ...input]);
      r.rules ??= new Map();
      if (!r.rules.has(fam[0])) r.rules.set(fam[0], sh.run(['ip', ...fam, '-j', 'rule', 'show']));
      x.routing = got
        ? {
            answer: parseRouteGet(got.status, got.stdout, got.stderr),
            rules: parsePolicyRules(r.rules.get(fam[0]) ?? '[]'),
            covering: parseRouteList(sh.run(['ip', ...fam, '-j', 'route', 'show', 'table', 'all', 'match', ctx.daddr]) ?? '[]'),
            forwarding: iface ? (sh.read(`/proc/sys/net/ipv${v6 ? 6 : 4}/conf/${iface}/forwarding`)?.trim() ?? null) : null,
          }
        : null;
    }
    if (needs.has('xfrmPolicies')) {
      if (r.xfrm === undefined) r.xfrm = sh.run(['ip', 'xfrm', 'policy', 'list']);
      x.xfrmPolicies = r.xfrm === null ? null : parseXfrmPolicies(r.xfrm);
    }
    if (needs.has('progs')) {
      const bpftool = hasTool('bpftool', 'version');
      r.progs ??= bpftool ? parseBpftoolNet(sh.run(['bpftool', '-j', 'net', 'show'])) : parseLinkXdp(sh.run(['ip', '-j', '-d', 'link', 'show']));
      const filters = (dir: 'ingress' | 'egress') => (iface ? sh.run(['tc', '-j', 'filter', 'show', 'dev', iface, dir]) : null);
      const fin = filters('ingress');
      const feg = filters('egress');
      const attached = bpftool || !iface ? r.progs : [...r.progs, ...parseTcFilters(iface, 'ingress', fin), ...parseTcFilters(iface, 'egress', feg)];
      // program names, tags, pinned paths and owners are machine-wide: read once
      this.progInfo ??= bpftool ? parseProgInfo(new NetnsShell(ownNetns(), this.names).run(['bpftool', '-j', '-f', 'prog', 'show'])) : new Map();
      x.progs = { attached, info: this.progInfo, filters: { ingress: fin === null ? null : countTcFilters(fin), egress: feg === null ? null : countTcFilters(feg) } };
    }
    if (needs.has('cgroupProgs')) {
      this.cgroupProgs ??= hasTool('bpftool', 'version') ? parseCgroupTree(new NetnsShell(ownNetns(), this.names).run(['bpftool', '-j', 'cgroup', 'tree'])) : null;
      x.cgroupProgs = this.cgroupProgs;
    }
    return x;
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
    this.window.gather(this.latest);
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
