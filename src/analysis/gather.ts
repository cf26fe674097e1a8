/**
 * The window of counters around a capture: the counters and rule sets of the namespaces the
 * drops happened in, before the window and after it; drops only counters saw as findings of
 * their own; and each finding's evidence, judged by the rules of evidence.ts on what
 * facts.ts reads for them.
 */
import { readFileSync } from 'node:fs';
import { NetnsShell, ownNetns, parseSoftnetDrops } from '../host/netns.js';
import { readCounters, snapshotNetns, type NsSnapshot } from '../host/snapshot.js';
import { counterRule } from '../model/counters.js';
import { causeOf } from './diagnose.js';
import { factsNeeded, judge } from './evidence.js';
import { FactReader } from './facts.js';
import { untracedFinding, type Finding } from './finding.js';

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

/** The counters of a window: taken before it starts, compared after it ends. */
export class CounterWindow {
  private readonly shells = new Map<number, NetnsShell>();
  private softnetAfter: number | null = null;
  private squeezedAfter: number | null = null;
  private readonly countersAfter = new Map<number, Promise<Map<string, number>>>();
  private readonly reader: FactReader;

  private constructor(
    private readonly names: Map<number, string>,
    readonly before: Map<number, NsSnapshot>,
    private readonly softnetBefore: number | null,
    private readonly squeezedBefore: number | null,
  ) {
    this.reader = new FactReader({
      shell: (ino) => this.shell(ino),
      before: (ino) => this.before.get(ino) ?? null,
      countersAfter: (ino) => this.counters(ino),
      softnetDrops: () => this.softnetDrops,
    });
  }

  /**
   * Opens a window: snapshots this namespace and the named ones (or only `netns`), all at
   * once; rules: false for counters only.
   */
  static async open(names: Map<number, string>, netns?: number, opts: { rules?: boolean } = {}): Promise<CounterWindow> {
    const softnet = softnetTotal();
    const squeezed = softnetSqueezed();
    const targets = netns ? [netns] : [ownNetns(), ...[...names.keys()].slice(0, MAX_PRESNAPSHOT)];
    const w = new CounterWindow(names, new Map(), softnet, squeezed);
    const snaps = await Promise.all(targets.map((ino) => (w.shell(ino).reachable ? snapshotNetns(w.shell(ino), opts) : null)));
    targets.forEach((ino, i) => snaps[i] && w.before.set(ino, snaps[i]));
    return w;
  }

  /** The namespace's shell, made once: finding a process in an unnamed namespace scans /proc. */
  shell(inode: number): NetnsShell {
    let sh = this.shells.get(inode);
    if (!sh) this.shells.set(inode, (sh = new NetnsShell(inode, this.names)));
    return sh;
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
    const read = [...this.reader.read.keys()];
    return [
      `counters before and after in ${this.before.size} network namespace(s)`,
      this.softnetDrops === null ? 'softnet_stat unreadable' : `softnet_stat (${this.softnetDrops} backlog drops)`,
      ...(read.length ? [`read for the findings: ${read.join(', ')}`] : []),
    ];
  }

  /** The namespace's counters after the window, read once. */
  private counters(ino: number): Promise<Map<string, number>> {
    let p = this.countersAfter.get(ino);
    if (!p) this.countersAfter.set(ino, (p = readCounters(this.shell(ino))));
    return p;
  }

  /**
   * Findings of drops only counters saw: in every namespace snapshotted before the window, a
   * counter of a known drop (model/counters.ts) that moved by more than the drops traced for
   * it there. One finding per rule and interface; its count is what the trace did not see.
   */
  async counterFindings(traced: TracedDrops, seconds: number): Promise<Finding[]> {
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
        best.set(
          id,
          untracedFinding({
            // a device's own counters are its driver's; qdisc and protocol counters are the stack's
            layer: rule.id.startsWith('counter/dev') || rule.id === 'counter/ethtool' ? 'driver' : 'kernel stack',
            location: key,
            count,
            rate: seconds > 0 ? count / seconds : 0,
            interfaces: iface ? [iface] : [],
            netns: { inode: ino, label },
            context: { reason: null, function: null, ifname: iface, nsPrefix: prefix, l4: null, saddr: null, daddr: null, dport: null },
            hint: h,
            evidence: [{ verdict: 'confirms', text: `${key} rose by ${delta} in ${where} during the window${seen ? `; ${seen} of them were traced` : ', and no drop was traced for it'}` }],
            impact: { class: rule.impact, why: '' },
            cause: h.title,
            counter: { key, delta: count, impact: rule.impact },
          }),
        );
      }
      out.push(...best.values());
    };
    const spaces = [...this.before].filter(([ino]) => this.shell(ino).reachable);
    const afters = await Promise.all(spaces.map(([ino]) => this.counters(ino)));
    spaces.forEach(([ino, before], i) => {
      const sh = this.shell(ino);
      const deltas: Array<[string, number]> = [...afters[i]].map(([k, v]) => [k, v - (before.counters.get(k) ?? v)]);
      moved(ino, sh.label, `${ino} (${sh.label})`, sh.commandPrefix, deltas);
    });
    if (this.squeezedBefore !== null && this.squeezedAfter !== null) {
      moved(0, 'this machine', '(machine-wide)', '', [['softnet:squeezed', this.squeezedAfter - this.squeezedBefore]]);
    }
    return out;
  }

  /**
   * Sets each finding's evidence from the rules that apply to it (benign findings need none),
   * reading in its namespace only what those rules ask for, every finding at once; a counter
   * finding's cause then follows its evidence.
   */
  async gather(findings: Finding[]): Promise<void> {
    await Promise.all(
      findings.map(async (f) => {
        if (f.benign) return;
        const needs = factsNeeded(f);
        if (!needs.size) return;
        const evidence = judge(f, await this.reader.facts(f, needs));
        f.evidence = f.counter ? [...f.evidence, ...evidence] : evidence;
        if (f.counter) f.cause = causeOf(f);
      }),
    );
  }
}

/** The key of a traced count: namespace, interface name, reason name. */
type KeyTotal = { netns: number; iface: string; reason: string; packets: number };

/**
 * Counter findings for a running view (live): a CounterWindow per period (every `everyMs`),
 * compared with the drops traced in that same period. Each snapshot runs a few commands per
 * namespace (no rule sets), hence a period of seconds, not the screen's interval; the reads
 * run beside the screen, never blocking it.
 */
export class CounterWatch {
  private window: Promise<CounterWindow>;
  private since: number;
  private tracedAt: KeyTotal[];
  private busy = false;
  private fresh = false;
  /** the counter findings of the last whole period */
  latest: Finding[] = [];

  constructor(
    private readonly names: () => Map<number, string>,
    private readonly netns: number | undefined,
    keys: KeyTotal[],
    now: number,
    private readonly everyMs = 5000,
  ) {
    this.window = CounterWindow.open(names(), netns, { rules: false });
    this.since = now;
    this.tracedAt = keys;
  }

  /** Ends a period when it is due (its findings become `latest` once read); returns whether `latest` is new since the last call. */
  tick(now: number, keys: KeyTotal[]): boolean {
    if (!this.busy && now - this.since >= this.everyMs) {
      const before = new Map(this.tracedAt.map((k) => [`${k.netns}|${k.iface}|${k.reason}`, k.packets]));
      const during = keys.map((k) => ({ ...k, packets: k.packets - (before.get(`${k.netns}|${k.iface}|${k.reason}`) ?? 0) }));
      const seconds = (now - this.since) / 1000;
      const ending = this.window;
      this.busy = true;
      this.since = now;
      this.tracedAt = keys;
      this.window = CounterWindow.open(this.names(), this.netns, { rules: false });
      void ending
        .then(async (w) => {
          w.close();
          const found = await w.counterFindings(tracedDrops(during), seconds);
          await w.gather(found);
          this.latest = found;
          this.fresh = true;
        })
        .finally(() => (this.busy = false));
    }
    const fresh = this.fresh;
    this.fresh = false;
    return fresh;
  }
}

/** One line of a counter finding: "TcpExt:ListenOverflows +54 in dtlab-hostA: a listening socket's accept queue overflowed". */
export function countedLine(f: Finding): string {
  return `${f.counter?.key ?? f.location} +${f.count} in ${f.netns.label}: ${f.cause ?? f.hint?.title ?? ''}`;
}
