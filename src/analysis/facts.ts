/**
 * Reads the facts the evidence rules ask for (analysis/evidence.ts `Facts`), in the namespace
 * of the finding that needs them and nothing more: a namespace-wide fact (its rule sets, its
 * addresses, its BPF attachments) is read once however many findings ask, a machine-wide one
 * (program details, cgroup programs) once in all, and a question about one flow (its route,
 * its port's listeners) once per question. Reads are promises, so the findings of a window
 * are read side by side.
 */
import { countTcFilters, parseBpftoolNet, parseCgroupTree, parseLinkXdp, parseProgInfo, parseTcFilters, type AttachedProg, type ProgInfo } from '../host/bpfprogs.js';
import type { RuleCounter } from '../host/iptables.js';
import { NetnsShell, ownNetns, parseFullListeners, parseListeners } from '../host/netns.js';
import { hasTool, readIptables, readNft, type NsSnapshot } from '../host/snapshot.js';
import type { NftRuleset } from '../host/nft.js';
import { parseLocalAddrs, parseNeighbours, parsePolicyRules, parseRouteGet, parseRouteList } from '../host/routes.js';
import { parseXfrmPolicies } from '../host/xfrm.js';
import { parseQdiscs, parseVxlanDevices } from '../host/devices.js';
import type { FactKind, Facts } from './evidence.js';
import type { Finding } from './finding.js';

/** What a reader needs of its window. */
export interface FactSources {
  shell(inode: number): NetnsShell;
  /** the namespace's snapshot before the window, or null when it was not taken */
  before(inode: number): NsSnapshot | null;
  /** the namespace's counters after the window (the window reads them once) */
  countersAfter(inode: number): Promise<Map<string, number>>;
  softnetDrops(): number | null;
}

function mtuFromIp(text: string | null): number | null {
  const m = text ? /\bmtu (\d+)/.exec(text) : null;
  return m ? Number(m[1]) : null;
}

export class FactReader {
  /** reads already under way or done, by "inode|what" */
  private readonly memo = new Map<string, Promise<unknown>>();
  /** every fact read, by kind, with how many findings asked: what "checked" reports */
  readonly read = new Map<FactKind, number>();

  constructor(private readonly src: FactSources) {}

  private once<T>(key: string, read: () => Promise<T>): Promise<T> {
    let p = this.memo.get(key) as Promise<T> | undefined;
    if (!p) this.memo.set(key, (p = read()));
    return p;
  }

  /** Reads the facts a finding's rules need, in its namespace. */
  async facts(f: Finding, needs: ReadonlySet<FactKind>): Promise<Facts> {
    const ino = f.netns.inode;
    const sh = this.src.shell(ino);
    const x: Facts = { where: sh.label };
    if (!sh.reachable) return x;
    for (const need of needs) this.read.set(need, (this.read.get(need) ?? 0) + 1);
    const before = this.src.before(ino);
    const ctx = f.context;
    const iface = f.interfaces[0] ?? null;
    const v6 = f.flow?.ipver === 6;
    const ns = (what: string) => `${ino}|${what}`;
    const iptables = () => this.once(ns('iptables'), () => readIptables(sh));
    const reads: Array<Promise<void>> = [];
    const fact = <K extends FactKind>(k: K, read: () => Promise<Facts[K]>) => {
      if (needs.has(k)) reads.push(read().then((v) => void (x[k] = v)));
    };

    fact('counters', async () => (before ? { before: before.counters, after: await this.src.countersAfter(ino) } : null));
    fact('iptables', async () => {
      const after = await iptables();
      return after ? { before: before?.iptables ?? null, after } : null;
    });
    fact('nft', async () => {
      const after = await this.once(ns('nft'), () => readNft(sh, iptables() as Promise<RuleCounter[] | null>, true));
      return after ? { before: before?.nft ?? null, after: after as NftRuleset } : null;
    });
    fact('local', async () => {
      const local = await this.once(ns('addrs'), async () => parseLocalAddrs((await sh.runAsync(['ip', '-j', 'addr', 'show'])) ?? '[]'));
      return ctx.daddr && local.length ? local.includes(ctx.daddr) : null;
    });
    fact('conntrack', async () => {
      const [c, m] = await Promise.all([sh.readAsync('/proc/sys/net/netfilter/nf_conntrack_count'), sh.readAsync('/proc/sys/net/netfilter/nf_conntrack_max')]);
      return c && m ? { count: Number(c), max: Number(m) } : null;
    });
    fact('listeners', async () => {
      if (!ctx.dport) return null;
      const [tcp, udp] = await Promise.all([sh.runAsync(['ss', '-ltnH', `sport = :${ctx.dport}`]), sh.runAsync(['ss', '-lunH', `sport = :${ctx.dport}`])]);
      return tcp === null && udp === null ? null : { tcp: parseListeners(tcp ?? ''), udp: parseListeners(udp ?? '') };
    });
    fact('fullListeners', async () => parseFullListeners((await sh.runAsync(['ss', '-ltnH'])) ?? ''));
    fact('rpFilter', async () => {
      if (!iface) return null;
      const [all, one] = await Promise.all([sh.readAsync('/proc/sys/net/ipv4/conf/all/rp_filter'), sh.readAsync(`/proc/sys/net/ipv4/conf/${iface}/rp_filter`)]);
      return { all: all?.trim() ?? null, iface: one?.trim() ?? null };
    });
    fact('routeToSource', async () => (ctx.saddr ? sh.runAsync(['ip', 'route', 'get', ctx.saddr]) : null));
    const routeToDest = () => (ctx.daddr ? this.once(ns(`route ${ctx.daddr}`), () => sh.runAsync(['ip', 'route', 'get', ctx.daddr!])) : Promise.resolve(null));
    fact('routeToDest', routeToDest);
    fact('mtu', async () => {
      const dev = /\bdev (\S+)/.exec((await routeToDest()) ?? '')?.[1];
      if (!dev) return null;
      return Number((await sh.readAsync(`/sys/class/net/${dev}/mtu`)) ?? NaN) || mtuFromIp(await sh.runAsync(['ip', 'link', 'show', dev]));
    });
    fact('softnetDrops', async () => this.src.softnetDrops());
    fact('routing', async () => {
      if (!ctx.daddr) return null;
      const fam = v6 ? '-6' : '-4';
      // the question the dropped packet asked: input routing from its source on its interface
      const input = f.reason === 'IP_OUTNOROUTES' || !ctx.saddr || !iface ? [] : ['from', ctx.saddr, 'iif', iface];
      const [got, rules, covering, forwarding] = await Promise.all([
        sh.execAsync(['ip', fam, '-j', 'route', 'get', ctx.daddr, ...input]),
        this.once(ns(`rules ${fam}`), () => sh.runAsync(['ip', fam, '-j', 'rule', 'show'])),
        sh.runAsync(['ip', fam, '-j', 'route', 'show', 'table', 'all', 'match', ctx.daddr]),
        iface ? sh.readAsync(`/proc/sys/net/ipv${v6 ? 6 : 4}/conf/${iface}/forwarding`) : null,
      ]);
      if (!got) return null;
      return { answer: parseRouteGet(got.status, got.stdout, got.stderr), rules: parsePolicyRules(rules ?? '[]'), covering: parseRouteList(covering ?? '[]'), forwarding: forwarding?.trim() ?? null };
    });
    fact('xfrmPolicies', async () => {
      const text = await this.once(ns('xfrm'), () => sh.runAsync(['ip', 'xfrm', 'policy', 'list']));
      return text === null ? null : parseXfrmPolicies(text);
    });
    fact('progs', () => this.progs(sh, ns, iface));
    fact('neighbours', async () => {
      const json = iface ? await sh.runAsync(['ip', '-j', 'neigh', 'show', 'dev', iface]) : null;
      return json === null ? null : parseNeighbours(json);
    });
    fact('vxlanDevices', async () => {
      const json = await sh.runAsync(['ip', '-j', '-d', 'link', 'show', 'type', 'vxlan']);
      return json === null ? null : parseVxlanDevices(json);
    });
    fact('qdiscs', async () => {
      const text = iface ? await sh.runAsync(['tc', '-s', 'qdisc', 'show', 'dev', iface]) : null;
      return text === null ? null : parseQdiscs(text);
    });
    fact('cgroupProgs', () =>
      this.once('cgroup programs', async () => (hasTool('bpftool', 'version') ? parseCgroupTree(await this.own().runAsync(['bpftool', '-j', 'cgroup', 'tree'])) : null)),
    );
    await Promise.all(reads);
    return x;
  }

  /** This namespace's shell: machine-wide facts are read here. */
  private own(): NetnsShell {
    return this.src.shell(ownNetns());
  }

  /** BPF programs on the namespace's XDP and tc hooks, and the classifiers on the drop's device. */
  private async progs(sh: NetnsShell, ns: (what: string) => string, iface: string | null): Promise<Facts['progs']> {
    const bpftool = hasTool('bpftool', 'version');
    const filters = (dir: 'ingress' | 'egress') => (iface ? this.once(ns(`tc ${iface} ${dir}`), () => sh.runAsync(['tc', '-j', 'filter', 'show', 'dev', iface, dir])) : Promise.resolve(null));
    const [attached, info, fin, feg] = await Promise.all([
      this.once(ns('bpf net'), async () =>
        bpftool ? parseBpftoolNet(await sh.runAsync(['bpftool', '-j', 'net', 'show'])) : parseLinkXdp(await sh.runAsync(['ip', '-j', '-d', 'link', 'show'])),
      ),
      // program names, tags, pinned paths and owners are machine-wide
      this.once('bpf programs', async () => (bpftool ? parseProgInfo(await this.own().runAsync(['bpftool', '-j', '-f', 'prog', 'show'])) : new Map<number, ProgInfo>())),
      filters('ingress'),
      filters('egress'),
    ]);
    // without bpftool, tc's own listing names the classifiers of the drop's device
    const all: AttachedProg[] = bpftool || !iface ? attached : [...attached, ...parseTcFilters(iface, 'ingress', fin), ...parseTcFilters(iface, 'egress', feg)];
    return { attached: all, info, filters: { ingress: fin === null ? null : countTcFilters(fin), egress: feg === null ? null : countTcFilters(feg) } };
  }
}
