/**
 * The evidence rules: what droptrace checks on the host for a kind of drop, and how it
 * judges what it read. Each rule says which findings it applies to (reasons, drop functions,
 * counter findings), which facts it needs read in the finding's namespace (only those are
 * read: gather.ts reads a fact when a rule that applies asks for it), and turns them into
 * evidence that confirms, refutes or informs, with the cause a confirmation establishes and
 * the command that shows it. Pure: the facts come in as values, so every rule is tested on
 * real command output (test/fixtures/host).
 *
 * Long because it is a table: one entry per kind of machinery (netfilter, routing, sockets,
 * IPsec, BPF programs, tunnels, neighbours, queues), each a few lines of judgement.
 */
import type { RuleCounter } from '../host/iptables.js';
import { movedDropRules, ruleLabel } from '../host/iptables.js';
import { movedNftDrops, nftRuleLabel, type NftRule, type NftRuleset } from '../host/nft.js';
import { movedCounters } from '../host/netns.js';
import { prefixLen, type Neighbour, type PolicyRule, type RouteAnswer, type RouteEntry } from '../host/routes.js';
import type { XfrmPolicy } from '../host/xfrm.js';
import type { Qdisc, VxlanDevice } from '../host/devices.js';
import { progLabel, type AttachedProg, type CgroupProg, type ProgInfo } from '../host/bpfprogs.js';
import type { Evidence, Finding } from './finding.js';
import { inPrefix } from '../model/addr.js';
import { baseFunction } from '../model/functions.js';
import { QDISC_REASON_NAMES } from '../model/hints.js';
import { hooksFor, matchRule, type DroppedFlow, type Match } from './nft-match.js';

/** What a rule may ask to be read in a finding's namespace; each is read once per namespace (or per question). */
export interface Facts {
  /** the namespace as a person names it */
  where: string;
  /** SNMP/netstat, device, qdisc, ethtool and xfrm_stat counters before and after the window */
  counters?: { before: Map<string, number>; after: Map<string, number> } | null;
  /** iptables and ip6tables rules with their counters, before (null: not snapshotted) and after */
  iptables?: { before: RuleCounter[] | null; after: RuleCounter[] } | null;
  /** nftables' own tables (iptables-nft's left out), before and after */
  nft?: { before: NftRuleset | null; after: NftRuleset } | null;
  /** whether the flow's destination is an address of this namespace (null: unknown) */
  local?: boolean | null;
  conntrack?: { count: number; max: number } | null;
  /** listening sockets on the flow's port */
  listeners?: { tcp: string[]; udp: string[] } | null;
  /** listeners whose accept queue is full now */
  fullListeners?: Array<{ local: string; queued: number; backlog: number }> | null;
  rpFilter?: { all: string | null; iface: string | null } | null;
  /** `ip route get` to the flow's source and destination from this namespace */
  routeToSource?: string | null;
  routeToDest?: string | null;
  /** MTU of the device the route to the destination leaves by */
  mtu?: number | null;
  /** backlog drops of /proc/net/softnet_stat during the window (machine-wide) */
  softnetDrops?: number | null;
  /** the input route the dropped packet asked for, the policy rules, the routes covering its destination, forwarding on its interface */
  routing?: { answer: RouteAnswer; rules: PolicyRule[]; covering: RouteEntry[]; forwarding: string | null } | null;
  xfrmPolicies?: XfrmPolicy[] | null;
  /** BPF programs on the devices' XDP and tc hooks; classifiers per tc hook of the drop's device */
  progs?: { attached: AttachedProg[]; info: Map<number, ProgInfo>; filters: { ingress: number | null; egress: number | null } } | null;
  cgroupProgs?: CgroupProg[] | null;
  /** the qdiscs of the drop's device now (tc -s qdisc show dev IFACE) */
  qdiscs?: Qdisc[] | null;
  /** the neighbour entries of the drop's device now (ip -j neigh show dev IFACE) */
  neighbours?: Neighbour[] | null;
  /** the namespace's VXLAN devices (ip -j -d link show type vxlan) */
  vxlanDevices?: VxlanDevice[] | null;
}
export type FactKind = Exclude<keyof Facts, 'where'>;

export interface EvidenceRule {
  id: string;
  /** what it checks, in a few words (DESIGN.md's table and diagnose --help are made of these) */
  checks: string;
  applies(f: Finding): boolean;
  needs: readonly FactKind[];
  judge(f: Finding, x: Facts): Evidence[];
}

const fnIs = (f: Finding, re: RegExp) => re.test(baseFunction(f.function ?? ''));
const reasonIn = (f: Finding, ...rs: string[]) => rs.includes(f.reason ?? '');
const unspecified = (f: Finding) => f.reason === null || f.reason === 'NOT_SPECIFIED';

/** The finding's top flow as a firewall sees it. */
export function droppedFlow(f: Finding): DroppedFlow {
  return {
    ipver: f.flow?.ipver ?? null,
    l4: f.flow?.l4 ?? f.context.l4 ?? null,
    saddr: f.flow?.saddr ?? f.context.saddr ?? null,
    daddr: f.flow?.daddr ?? f.context.daddr ?? null,
    dport: f.flow?.dport ?? f.context.dport ?? null,
    iface: f.interfaces[0] ?? null,
    ctNew: f.syn > 0 && f.syn >= f.count,
  };
}

const NETFILTER = /^(nf_hook_slow|nft_do_chain|ipt_do_table|ip6t_do_table|nf_conntrack_in|nf_ct_|nft_)/;

/** Native nftables candidates for a drop no counter explains: dropping rules and drop policies the flow can meet. */
function nftCandidates(f: Finding, nft: { after: NftRuleset }, local: boolean | null): Array<{ label: string; match: Match; rule: NftRule | null }> {
  const flow = droppedFlow(f);
  const hooks = hooksFor(local);
  const out: Array<{ label: string; match: Match; rule: NftRule | null }> = [];
  const inHook = new Set(nft.after.chains.filter((c) => !c.hook || hooks.includes(c.hook)).map((c) => `${c.family} ${c.table} ${c.name}`));
  for (const r of nft.after.rules) {
    if ((r.verdict !== 'drop' && r.verdict !== 'reject') || !inHook.has(`${r.family} ${r.table} ${r.chain}`)) continue;
    const m = matchRule(r, flow, nft.after.sets);
    if (m !== 'nomatch') out.push({ label: nftRuleLabel(r), match: m, rule: r });
  }
  for (const c of nft.after.chains) {
    if (c.policy !== 'drop' || !c.hook || !hooks.includes(c.hook)) continue;
    // the policy decides only for a packet no rule of the chain accepts
    const accepted = accepts(nft.after, c.family, c.table, c.name, flow, 0);
    if (accepted === 'match') continue;
    out.push({ label: `${c.family} ${c.table} ${c.name}: policy drop (hook ${c.hook})`, match: accepted === 'unknown' ? 'unknown' : 'match', rule: null });
  }
  return out;
}

/** Whether a chain accepts the flow: an accept rule that matches it, or a jump or goto to a chain that does. */
function accepts(rs: NftRuleset, family: string, table: string, chain: string, flow: DroppedFlow, depth: number): Match {
  if (depth > 8) return 'unknown';
  let out: Match = 'nomatch';
  for (const r of rs.rules) {
    if (r.family !== family || r.table !== table || r.chain !== chain) continue;
    if (r.verdict !== 'accept' && r.verdict !== 'jump' && r.verdict !== 'goto') continue;
    let m = matchRule(r, flow, rs.sets);
    if (m !== 'nomatch' && r.verdict !== 'accept') {
      const target = r.expr.map((e) => (e.jump ?? e.goto) as { target?: string } | undefined).find((t) => t?.target)?.target;
      const inner = target ? accepts(rs, family, table, target, flow, depth + 1) : 'unknown';
      m = inner === 'nomatch' ? 'nomatch' : m === 'match' && inner === 'match' ? 'match' : 'unknown';
    }
    if (m === 'match') return 'match';
    if (m === 'unknown') out = 'unknown';
  }
  return out;
}

function judgeFirewall(f: Finding, x: Facts): Evidence[] {
  const out: Evidence[] = [];
  const ipt = x.iptables;
  const nft = x.nft;
  const moved = ipt?.before ? movedDropRules(ipt.before, ipt.after) : [];
  const movedN = nft?.before ? movedNftDrops(nft.before, nft.after) : [];
  for (const r of moved.slice(0, 3)) {
    const where = `${r.tool === 'ip6tables' ? 'ip6tables, ' : ''}table ${r.table}`;
    const policy = /^policy (\S+) /.exec(r.rule);
    out.push({
      verdict: 'confirms',
      text: `${ruleLabel(r)} counted ${r.delta} packet(s) in ${x.where} during the window`,
      cause: policy ? `the ${policy[1]} chain's policy dropped them: no rule accepts this flow (${where})` : `a firewall rule dropped them: ${r.rule} (${where})`,
    });
  }
  for (const r of movedN.slice(0, 3)) {
    out.push({ verdict: 'confirms', text: `nftables ${nftRuleLabel(r)} counted ${r.delta} packet(s) in ${x.where} during the window`, cause: `an nftables rule dropped them: ${nftRuleLabel(r)}`, next: `${f.context.nsPrefix ?? ''}nft -a list chain ${r.family} ${r.table} ${r.chain}` });
  }
  if (moved.length || movedN.length) return out;
  if (ipt && !ipt.before) {
    for (const r of ipt.after.filter((r) => r.drops && r.packets > 0).slice(0, 3)) out.push({ verdict: 'info', text: `${ruleLabel(r)} has dropped ${r.packets} packet(s) since it was loaded (no snapshot before the window)` });
  }
  const candidates = nft ? nftCandidates(f, nft, x.local ?? null) : [];
  const sure = candidates.filter((c) => c.match === 'match');
  if (candidates.length === 1 && sure.length === 1) {
    // iptables rules and policies keep counters, and none moved: the one nftables rule or
    // policy the flow meets is what dropped it
    const c = sure[0];
    out.push({
      verdict: 'confirms',
      text: `nftables ${c.label} matches the dropped flow, and no other dropping rule or policy can (no iptables counter moved; ${c.rule && !c.rule.counter ? 'the rule keeps no counter' : 'policies keep no counter'})`,
      cause: `an nftables ${c.rule ? 'rule' : 'chain policy'} dropped them: ${c.label}`,
      next: `${f.context.nsPrefix ?? ''}nft -a list chain ${c.label.split(':')[0]}`,
    });
  } else {
    for (const c of candidates.slice(0, 3)) out.push({ verdict: 'info', text: `nftables ${c.label} ${c.match === 'match' ? 'matches' : 'may match'} the dropped flow (no counter to confirm it)` });
  }
  if (!candidates.length && ipt?.before) {
    out.push({
      verdict: 'refutes',
      text: `no iptables, ip6tables${nft ? ' or nftables' : ''} rule or policy in ${x.where} moved${nft ? ' or matches the dropped flow' : ''}: conntrack may have dropped it (INVALID, or the table full)${nft ? '' : '; nft is not installed, so native nftables tables were not read'}`,
    });
  }
  return out;
}

function judgeConntrack(f: Finding, x: Facts): Evidence[] {
  const c = x.conntrack;
  if (!c) return [];
  const full = c.max > 0 && c.count >= 0.9 * c.max;
  return [
    {
      verdict: full ? 'confirms' : 'info',
      text: `conntrack holds ${c.count} of ${c.max} entries${full ? ': nearly full, new flows are dropped' : ''}`,
      ...(full
        ? {
            cause: `the conntrack table is full (${c.count} of ${c.max} entries): new connections are dropped`,
            next: `${f.context.nsPrefix}sh -c "cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max"; dmesg | grep -i "table full"`,
          }
        : {}),
    },
  ];
}

function judgeListeners(f: Finding, x: Facts): Evidence[] {
  const port = f.context.dport;
  const daddr = f.context.daddr;
  const udp = f.context.l4 === 'UDP';
  const list = x.listeners ? (udp ? x.listeners.udp : x.listeners.tcp) : null;
  if (!list || !port) return [];
  const onPort = list.filter((a) => a.endsWith(`:${port}`));
  if (!onPort.length) return [{ verdict: 'confirms', text: `nothing listens on ${udp ? 'UDP' : 'TCP'} port ${port} in ${x.where}`, cause: `nothing listens on ${udp ? 'UDP' : 'TCP'} port ${port}` }];
  const wildcard = onPort.some((a) => /^(0\.0\.0\.0|\*|\[::\]|\[::ffff:0\.0\.0\.0\]):/.test(a));
  const matches = daddr && onPort.some((a) => a.startsWith(`${daddr}:`) || a.startsWith(`[${daddr}]:`));
  if (!wildcard && !matches) {
    return [
      {
        verdict: 'confirms',
        text: `port ${port} in ${x.where} is bound only to ${onPort.join(', ')}: packets to ${daddr ?? 'other addresses'} find no socket`,
        cause: `the service on port ${port} listens only on ${onPort.join(', ')}, not on ${daddr ?? 'the address the packets went to'}`,
      },
    ];
  }
  return [{ verdict: 'refutes', text: `${onPort.join(', ')} listens on port ${port} in ${x.where} now: the service may have restarted during the window` }];
}

function judgeRpFilter(f: Finding, x: Facts): Evidence[] {
  const out: Evidence[] = [];
  if (x.rpFilter) {
    const strict = x.rpFilter.all === '1' || x.rpFilter.iface === '1';
    out.push({ verdict: strict ? 'confirms' : 'info', text: `rp_filter in ${x.where}: all=${x.rpFilter.all ?? '?'}, ${f.interfaces[0] ?? 'iface'}=${x.rpFilter.iface ?? '?'}${strict ? ' (strict)' : ''}` });
  }
  if (x.routeToSource) {
    const dev = /\bdev (\S+)/.exec(x.routeToSource)?.[1];
    const asym = dev && f.interfaces[0] && dev !== f.interfaces[0];
    out.push({
      verdict: asym ? 'confirms' : 'info',
      text: `the route back to ${f.context.saddr} leaves via ${dev ?? '?'}${asym ? `, not ${f.interfaces[0]} where the packet came in: asymmetric` : ''}`,
      ...(asym ? { cause: `reverse-path filtering: the route back to ${f.context.saddr} leaves via ${dev}, not ${f.interfaces[0]}` } : {}),
    });
  }
  return out;
}

/** A policy rule whose selector the flow falls in. */
function ruleCovers(r: PolicyRule, flow: DroppedFlow): boolean {
  const fits = (addr: string | null, sel: string, len: number) => sel === 'all' || len === 0 || (addr !== null && inPrefix(addr, sel, len));
  return fits(flow.saddr, r.src, r.srcLen) && fits(flow.daddr, r.dst, r.dstLen) && (!r.iif || r.iif === flow.iface);
}

function judgeRouting(f: Finding, x: Facts): Evidence[] {
  const r = x.routing;
  const daddr = f.context.daddr;
  if (!r || !daddr) return [];
  const flow = droppedFlow(f);
  const ns = f.context.nsPrefix ?? '';
  const six = flow.ipver === 6 ? ' -6' : '';
  const asked = `ip${six} route get ${daddr}${flow.saddr ? ` from ${flow.saddr}` : ''}${flow.iface && flow.saddr ? ` iif ${flow.iface}` : ''}`;
  if (r.answer.route) {
    return [{ verdict: 'refutes', text: `${x.where} routes ${daddr} now: ${r.answer.route.type} via ${r.answer.route.gateway ?? 'direct'} dev ${r.answer.route.dev ?? '?'}${r.answer.route.table ? ` table ${r.answer.route.table}` : ''} ("${asked}")` }];
  }
  const action = r.rules.filter((p) => p.action && ruleCovers(p, flow)).sort((a, b) => a.priority - b.priority)[0];
  const covering = r.covering.filter((e) => e.type !== 'unicast' && e.type !== 'local').sort((a, b) => prefixLen(b.dst) - prefixLen(a.dst))[0];
  const refusal = r.answer.refusal;
  const said = `"${asked}" answers: ${r.answer.error ?? 'nothing'}`;
  if (refusal === 'unreachable' && r.forwarding === '0' && x.local === false) {
    const key = `net.ipv${flow.ipver === 6 ? 6 : 4}.conf.${flow.iface}.forwarding`;
    return [{ verdict: 'confirms', text: `${key} = 0 in ${x.where}: packets that arrive on ${flow.iface} are not forwarded; ${said}`, cause: `forwarding is off on ${flow.iface} (${key}=0): packets from ${flow.saddr ?? '?'} to ${daddr} are not routed`, next: `${ns}sysctl ${key} net.ipv${flow.ipver === 6 ? 6 : 4}.${flow.ipver === 6 ? 'conf.all.forwarding' : 'ip_forward'}` }];
  }
  if (action && (refusal === 'prohibit' || refusal === 'unreachable' || refusal === 'blackhole')) {
    return [{ verdict: 'confirms', text: `the policy routing rule "${action.text}" in ${x.where} covers ${flow.saddr ?? '?'} > ${daddr}; ${said}`, cause: `the policy routing rule "${action.text}" refuses packets from ${flow.saddr ?? '?'} to ${daddr}`, next: `${ns}ip${six} rule show` }];
  }
  if (covering && (refusal === 'blackhole' || refusal === 'prohibit' || refusal === 'unreachable' || covering.type === 'throw')) {
    const what = `${covering.type} ${covering.dst}${covering.table !== 'main' ? ` table ${covering.table}` : ''}`;
    return [{ verdict: 'confirms', text: `the route "${what}" in ${x.where} covers ${daddr}; ${said}`, cause: covering.type === 'throw' ? `the throw route "${what}" ends the lookup for ${daddr} and no later table routes it` : `${/^[aeiou]/.test(covering.type) ? 'an' : 'a'} ${covering.type} route (${what}) discards packets to ${daddr}`, next: `${ns}ip${six} route show table all match ${daddr}` }];
  }
  if (refusal === 'no-route') return [{ verdict: 'confirms', text: `${x.where} has no route to ${daddr} (${said})`, cause: `no route to ${daddr}`, next: `${ns}ip${six} route show table all match ${daddr}` }];
  return refusal || r.answer.error ? [{ verdict: 'info', text: said }] : [];
}

function judgeXfrm(f: Finding, x: Facts): Evidence[] {
  const c = x.counters;
  const moved = c ? movedCounters(c.before, c.after, /^xfrm_stat:Xfrm(In|Fwd|Out)/) : [];
  if (!moved.length) return f.reason === 'XFRM_POLICY' && c ? [{ verdict: 'refutes', text: `no xfrm_stat counter moved in ${x.where}` }] : [];
  const flow = droppedFlow(f);
  const covers = (p: XfrmPolicy) => {
    const [sa, sl] = p.src.split('/');
    const [da, dl] = p.dst.split('/');
    const fits = (addr: string | null, a: string, l: string | undefined) => addr !== null && (Number(l) === 0 || inPrefix(addr, a, Number(l ?? (a.includes(':') ? 128 : 32))));
    return fits(flow.saddr, sa, sl) && fits(flow.daddr, da, dl) && (!p.proto || p.proto === flow.l4?.toLowerCase()) && (p.dport === null || p.dport === flow.dport);
  };
  const dir = x.local === false ? 'fwd' : 'in';
  const policy = (x.xfrmPolicies ?? []).find((p) => covers(p) && (p.dir === dir || p.dir === 'in' || p.dir === 'fwd'));
  const keys = moved.map(([k]) => k);
  const counted = moved.map(([k, d]) => `${k.slice('xfrm_stat:'.length)} +${d}`).join(', ');
  const why = moved.some(([k]) => /PolBlock/.test(k))
    ? 'blocks them'
    : moved.some(([k]) => /TmplMismatch|NoStates/.test(k))
      ? `requires ${policy?.tmpls.join(' + ') || 'an IPsec transform'} and they arrived without it`
      : moved.some(([k]) => /NoPols/.test(k))
        ? 'is missing: no policy allows them'
        : `refused them (${counted})`;
  return [
    {
      verdict: 'confirms',
      text: `/proc/net/xfrm_stat in ${x.where}: ${counted} during the window${policy ? `; the policy "${policy.text}" covers the flow` : ''}`,
      cause: policy ? `the IPsec policy "${policy.text}" ${why}` : `an IPsec (xfrm) policy check refused them (${counted})`,
      next: `${f.context.nsPrefix ?? ''}ip -s xfrm policy; ${f.context.nsPrefix ?? ''}ip xfrm state`,
      counts: keys,
    },
  ];
}

function judgeXdp(f: Finding, x: Facts): Evidence[] {
  const dev = f.interfaces[0];
  if (!x.progs || !dev) return [];
  const here = x.progs.attached.filter((p) => p.hook === 'xdp' && p.dev === dev);
  if (!here.length) {
    const elsewhere = x.progs.attached.filter((p) => p.hook === 'xdp').map((p) => progLabel(p, x.progs!.info.get(p.id)));
    return [{ verdict: 'refutes', text: `no XDP program is attached to ${dev} in ${x.where} now${elsewhere.length ? `; XDP programs elsewhere: ${elsewhere.join('; ')}` : ''}` }];
  }
  const c = x.counters;
  const xdpDrops = c ? movedCounters(c.before, c.after, new RegExp(`^ethtool:${dev.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:.*xdp.*drop`)) : [];
  const labels = here.map((p) => progLabel(p, x.progs!.info.get(p.id)));
  return [
    {
      verdict: 'confirms',
      text: `the XDP program ${labels.join('; ')} is attached where the packets were dropped${xdpDrops.length ? `; ${xdpDrops.map(([k, d]) => `${k.split(':').slice(2).join(':')} +${d}`).join(', ')} during the window` : ''}`,
      cause: `the XDP program ${labels[0]} dropped them (XDP_DROP or XDP_ABORTED)`,
      next: `${f.context.nsPrefix ?? ''}bpftool net show dev ${dev}; bpftool prog show id ${here[0].id}`,
      counts: xdpDrops.map(([k]) => k),
    },
  ];
}

function judgeTc(f: Finding, x: Facts): Evidence[] {
  const dev = f.interfaces[0];
  if (!x.progs || !dev) return [];
  const dirs = f.reason === 'TC_INGRESS' ? ['ingress'] : f.reason === 'TC_EGRESS' ? ['egress'] : ['ingress', 'egress'];
  const here = x.progs.attached.filter((p) => p.dev === dev && dirs.some((d) => p.hook.endsWith(` ${d}`)));
  const ns = f.context.nsPrefix ?? '';
  if (!here.length) return [{ verdict: 'info', text: `no BPF program on ${dev}'s tc ${dirs.join('/')} hook in ${x.where}: a tc action (gact drop, police, mirred) dropped them`, next: `${ns}tc -s filter show dev ${dev} ${dirs[0]}` }];
  const labels = here.map((p) => progLabel(p, x.progs!.info.get(p.id)));
  const filters = dirs.reduce((n, d) => n + ((x.progs!.filters as Record<string, number | null>)[d] ?? 0), 0);
  // a BPF program alone on the hook that dropped is the one that did (TC_ACT_SHOT)
  const alone = here.length === 1 && filters <= 1;
  return [
    {
      verdict: alone ? 'confirms' : 'info',
      text: alone ? `the only classifier on ${dev}'s tc ${dirs.join('/')} hook is the BPF program ${labels[0]}` : `BPF programs on ${dev}'s tc ${dirs.join('/')} hook, one of which dropped them: ${labels.join('; ')}`,
      ...(alone ? { cause: `the tc BPF program ${labels[0]} dropped them (TC_ACT_SHOT)`, next: `${ns}bpftool net show dev ${dev}; bpftool prog show id ${here[0].id}` } : {}),
    },
  ];
}

function judgeCgroup(f: Finding, x: Facts): Evidence[] {
  const want = f.reason === 'BPF_CGROUP_EGRESS' ? /egress/ : /ingress|sock/;
  const progs = (x.cgroupProgs ?? []).filter((p) => want.test(p.attach));
  if (!progs.length) return x.cgroupProgs ? [{ verdict: 'info', text: `no cgroup BPF program attached for ${f.reason === 'BPF_CGROUP_EGRESS' ? 'egress' : 'ingress'} (bpftool cgroup tree)` }] : [];
  const label = (p: CgroupProg) => `${p.name ?? 'unnamed'} (id ${p.id}, ${p.attach} on ${p.cgroup})`;
  return progs.length === 1
    ? [{ verdict: 'confirms', text: `the only ${progs[0].attach} cgroup program is ${label(progs[0])}`, cause: `the cgroup BPF program ${label(progs[0])} dropped them`, next: `bpftool cgroup tree; bpftool prog show id ${progs[0].id}` }]
    : [{ verdict: 'info', text: `cgroup BPF programs that can drop these: ${progs.slice(0, 4).map(label).join('; ')}` }];
}

function judgeVni(f: Finding, x: Facts): Evidence[] {
  const t = f.flow?.tunnel;
  const port = f.flow?.dport;
  if (!x.vxlanDevices || t?.kind !== 'vxlan' || !port) return [];
  const onPort = x.vxlanDevices.filter((d) => d.port === port);
  const label = (d: VxlanDevice) => `${d.ifname} ${d.vni === null ? 'external (any VNI)' : `VNI ${d.vni}`}${d.up ? '' : ', down'}`;
  const listed = onPort.map(label).join('; ');
  const same = onPort.find((d) => d.vni === t.vni || d.vni === null);
  if (same?.up) return [{ verdict: 'refutes', text: `${same.ifname} in ${x.where} takes VNI ${t.vni} on port ${port} now (${listed})` }];
  const ns = f.context.nsPrefix ?? '';
  if (same) {
    return [{ verdict: 'confirms', text: `${same.ifname} in ${x.where} has VNI ${t.vni} on port ${port} but is down`, cause: `the VXLAN device ${same.ifname} for VNI ${t.vni} is down`, next: `${ns}ip -d link show ${same.ifname}` }];
  }
  const from = f.flow?.saddr ? `${f.flow.saddr} sends` : 'they came with';
  return [
    {
      verdict: 'confirms',
      text: `no VXLAN device in ${x.where} takes VNI ${t.vni} on port ${port}${onPort.length ? `: ${listed}` : ''}`,
      cause: `${from} VNI ${t.vni} to port ${port}, and ${onPort.length ? `the VXLAN device${onPort.length > 1 ? 's' : ''} there ${onPort.length > 1 ? 'have' : 'has'} ${onPort.map((d) => `VNI ${d.vni}`).join(', ')} (${onPort.map((d) => d.ifname).join(', ')})` : 'no VXLAN device listens there'}: the nodes disagree on the VNI`,
      next: `${ns}ip -d link show type vxlan`,
    },
  ];
}

function judgeNeighbour(f: Finding, x: Facts): Evidence[] {
  const dev = f.interfaces[0];
  const daddr = f.context.daddr;
  if (!x.neighbours || !dev || !daddr) return [];
  // the next hop is the route's gateway, or the destination itself when it is on the link
  const via = x.routeToDest ? /\bvia (\S+)/.exec(x.routeToDest)?.[1] : undefined;
  const hop = via ?? daddr;
  const what = via ? `the gateway ${hop} (the next hop to ${daddr})` : hop;
  const entry = x.neighbours.find((n) => n.dst === hop);
  const ns = f.context.nsPrefix ?? '';
  if (!entry) return [{ verdict: 'info', text: `${dev} in ${x.where} has no neighbour entry for ${hop} now (a failed one is forgotten after a while)` }];
  const state = entry.state.join(',');
  const proto = hop.includes(':') ? 'NDP' : 'ARP';
  if (entry.state.some((s) => s === 'FAILED' || s === 'INCOMPLETE')) {
    return [
      {
        verdict: 'confirms',
        text: `the neighbour entry for ${hop} on ${dev} in ${x.where} is ${state}: nothing answered ${proto} for it`,
        cause: `${what} does not answer ${proto} on ${dev}: it is down, or not on ${dev}'s link`,
        next: `${ns}ip neigh show ${hop} dev ${dev}`,
      },
    ];
  }
  const seen = `${state}${entry.lladdr ? `, ${entry.lladdr}` : ''}`;
  // STALE, DELAY and PROBE answered once and are not confirmed again yet
  if (entry.state.some((s) => s === 'REACHABLE' || s === 'PERMANENT' || s === 'NOARP')) {
    return [{ verdict: 'refutes', text: `${hop} answers ${proto} on ${dev} in ${x.where} now (${seen}): it was unreachable during the window only` }];
  }
  return [{ verdict: 'info', text: `the neighbour entry for ${hop} on ${dev} in ${x.where} is ${seen}: it answered once, and is not confirmed since` }];
}

/** What a qdisc of this kind drops for, in a few words. */
function qdiscWhy(kind: string): string {
  if (/^(tbf|htb|hfsc|cbq|cake)$/.test(kind)) return 'it shapes to a rate the traffic exceeds, and its queue was full';
  if (/fifo/.test(kind)) return 'its queue was full';
  if (kind === 'netem') return 'netem drops what its loss setting tells it to, and what overflows its limit';
  if (/^(fq_codel|codel|fq|fq_pie|pie|red|gred|choke|sfq|sfb|dualpi2)$/.test(kind)) return 'its queue management dropped them (a full queue, a flow limit, or its delay target)';
  return 'it could not queue them';
}

function judgeQdisc(f: Finding, x: Facts): Evidence[] {
  const dev = f.interfaces[0];
  if (!x.qdiscs || !dev) return [];
  const ns = f.context.nsPrefix ?? '';
  const key = `qdisc:${dev}`;
  const moved = x.counters ? (x.counters.after.get(key) ?? 0) - (x.counters.before.get(key) ?? 0) : null;
  const during = moved === null ? '' : `; ${dev}'s qdiscs counted ${moved} drop(s) during the window`;
  const dropping = x.qdiscs.filter((q) => q.drops > 0);
  if (!dropping.length) {
    return [{ verdict: 'info', text: `no qdisc on ${dev} in ${x.where} counts a drop (${x.qdiscs.map((q) => `${q.kind} ${q.handle}`).join(', ') || 'none'})` }];
  }
  // a classful qdisc counts its children's drops too: the one that dropped is a leaf. tc prints
  // major 0 as nothing (a NIC's default "mq 0: root" over "fq_codel 0: parent :1"), and a
  // qdisc with handle 0: below the root has no children of its own
  const major = (parent: string) => `${parent.split(':')[0] || '0'}:`;
  const parentOfAny = (q: Qdisc) => (q.parent === null || q.handle !== '0:') && dropping.some((c) => c !== q && c.parent !== null && major(c.parent) === q.handle);
  const leaves = dropping.filter((q) => !parentOfAny(q));
  if (leaves.length !== 1 || moved === null || moved <= 0) {
    return [{ verdict: 'info', text: `qdiscs on ${dev} in ${x.where} that have dropped packets since they were created: ${leaves.map((q) => `${q.text} (${q.drops})`).join('; ')}${during}` }];
  }
  const q = leaves[0];
  const above = dropping.filter((p) => p !== q).map((p) => `${p.kind} ${p.handle}`);
  return [
    {
      verdict: 'confirms',
      text: `tc qdisc ${q.text} on ${dev} in ${x.where}: ${q.drops} dropped since it was created, the only ${above.length ? 'leaf ' : ''}qdisc on ${dev} that drops${during}`,
      // handles 0: repeat (one per queue): the parent tells them apart
      cause: `the ${q.kind} qdisc ${q.handle}${q.handle === '0:' && q.parent ? ` (parent ${q.parent})` : ''} on ${dev} dropped them: ${qdiscWhy(q.kind)}${above.length ? ` (under ${above.join(', ')})` : ''}`,
      // under a classful qdisc the class's rate is what fills the queue
      next: `${ns}tc -s ${above.length ? 'class' : 'qdisc'} show dev ${dev}`,
      counts: [key],
    },
  ];
}

const INTERESTING = /NoPorts|InErrors|InAddrErrors|InNoRoutes|InHdrErrors|ReversePath|ListenOverflows|ListenDrops|RcvbufErrors|InCsumErrors|FragFails|ReasmFails|InDiscards|Backlog|OutRsts|PAWS|^xfrm_stat:/;

export const EVIDENCE_RULES: readonly EvidenceRule[] = [
  {
    id: 'netfilter/rules',
    checks: 'iptables, ip6tables and nftables rules and policies: the dropping ones whose counters moved; without counters, the ones that match the dropped flow',
    applies: (f) => !f.counter && (reasonIn(f, 'NETFILTER_DROP') || fnIs(f, NETFILTER)),
    needs: ['iptables', 'nft', 'local'],
    judge: judgeFirewall,
  },
  {
    id: 'netfilter/conntrack',
    checks: 'conntrack table fill against nf_conntrack_max',
    applies: (f) => !f.counter && (reasonIn(f, 'NETFILTER_DROP') || fnIs(f, NETFILTER)),
    needs: ['conntrack'],
    judge: judgeConntrack,
  },
  {
    id: 'socket/listeners',
    checks: 'listening sockets on the dropped port (none, or bound to another address)',
    applies: (f) => reasonIn(f, 'NO_SOCKET') && !!f.context.dport,
    needs: ['listeners'],
    judge: judgeListeners,
  },
  {
    id: 'socket/accept-queue',
    checks: 'the listener whose accept queue is full now (ss -ltn: Recv-Q above the backlog)',
    applies: (f) => f.hint?.id === 'counter/ListenOverflows',
    needs: ['fullListeners'],
    judge: (_f, x) => {
      const full = x.fullListeners ?? [];
      return full.map((l, i) => ({
        verdict: 'confirms' as const,
        text: `${l.local} in ${x.where} has ${l.queued} connection(s) waiting for accept() with a backlog of ${l.backlog}`,
        ...(i === 0 ? { cause: `the accept queue of ${full.map((q) => q.local).join(', ')} is full (${l.queued} waiting, backlog ${l.backlog}): the service is not accepting, new connections are dropped` } : {}),
      }));
    },
  },
  {
    id: 'ip/rp-filter',
    checks: 'rp_filter on the input interface and the route back to the source',
    applies: (f) => reasonIn(f, 'IP_RPFILTER') || fnIs(f, /^ip_rcv_finish/),
    needs: ['rpFilter', 'routeToSource'],
    judge: judgeRpFilter,
  },
  {
    id: 'ip/routing',
    checks: 'the input route the packet asked for (ip route get DST from SRC iif IFACE): blackhole, unreachable, prohibit and throw routes, policy rules, forwarding off on the interface',
    applies: (f) =>
      !f.counter &&
      (reasonIn(f, 'IP_INNOROUTES', 'IP_OUTNOROUTES', 'IP_INADDRERRORS', 'BLACKHOLE') || (unspecified(f) && fnIs(f, /^(ip_error|ip6_pkt_discard|ip6_pkt_prohibit|ip6_pkt_drop|dst_discard|ip_route_input|ip6_route_input|blackhole_netdev)/))),
    needs: ['routing', 'local'],
    judge: judgeRouting,
  },
  {
    id: 'socket/rcvbuf',
    checks: 'receive-buffer counters (RcvbufErrors, TCPRcvQDrop) during the window',
    applies: (f) => reasonIn(f, 'SOCKET_RCVBUFF', 'PROTO_MEM'),
    needs: ['counters'],
    judge: (f, x) => {
      if (!x.counters) return [];
      const port = f.context.dport;
      const grew = movedCounters(x.counters.before, x.counters.after, /^(Udp|Udp6|UdpLite|UdpLite6):RcvbufErrors$|^TcpExt:TCPRcvQDrop$/);
      if (!grew.length) return [{ verdict: 'refutes', text: `no receive-buffer counter (RcvbufErrors, TCPRcvQDrop) moved in ${x.where}` }];
      return [
        {
          verdict: 'confirms',
          text: `${grew.map(([k, d]) => `${k} +${d}`).join(', ')} in ${x.where} during the window`,
          cause: f.sockets.length
            ? `the socket ${f.sockets[0].socket} in ${x.where} does not read fast enough: its receive buffer was full`
            : `the socket${port ? ` on ${f.context.l4 ?? ''} port ${port}`.replace('  ', ' ') : ''} in ${x.where} does not read fast enough: its receive buffer was full`,
          next: `${f.context.nsPrefix}ss -${f.context.l4 === 'TCP' ? 't' : 'u'}anm${port ? ` sport = :${port}` : ''}   # skmem r (queued) at rb (buffer): full`,
        },
      ];
    },
  },
  {
    id: 'dev/backlog',
    checks: 'backlog drops of /proc/net/softnet_stat during the window',
    applies: (f) => reasonIn(f, 'CPU_BACKLOG') || fnIs(f, /^enqueue_to_backlog/),
    needs: ['softnetDrops'],
    judge: (_f, x) => (x.softnetDrops == null ? [] : [{ verdict: x.softnetDrops > 0 ? 'confirms' : 'refutes', text: `/proc/net/softnet_stat counted ${x.softnetDrops} backlog drop(s) during the window` }]),
  },
  {
    id: 'ip/mtu',
    checks: 'the MTU of the route to the destination against the dropped packets\' size',
    applies: (f) => reasonIn(f, 'PKT_TOO_BIG'),
    needs: ['routeToDest', 'mtu'],
    judge: (f, x) => {
      if (!x.routeToDest) return [];
      const dev = /\bdev (\S+)/.exec(x.routeToDest)?.[1];
      return [{ verdict: x.mtu != null && f.avgLen > x.mtu ? 'confirms' : 'info', text: `the route to ${f.context.daddr} leaves via ${dev ?? '?'} with MTU ${x.mtu ?? '?'}; the dropped packets averaged ${f.avgLen} bytes` }];
    },
  },
  {
    id: 'xfrm/policy',
    checks: 'IPsec: /proc/net/xfrm_stat counters during the window and the xfrm policy that covers the flow',
    applies: (f) => !f.counter && (reasonIn(f, 'XFRM_POLICY') || fnIs(f, /xfrm/) || (unspecified(f) && fnIs(f, /^(__udp[46]_lib_rcv|udpv?6?_queue_rcv_one_skb|tcp_v[46]_rcv|ip6?_forward|ip6?_protocol_deliver_rcu|raw[v6]*_rcv|icmpv?6?_rcv)/))),
    needs: ['counters', 'xfrmPolicies', 'local'],
    judge: judgeXfrm,
  },
  {
    id: 'bpf/xdp',
    checks: 'the XDP program attached to the drop\'s device (id, name, tag, mode, pinned path, owner) and its driver\'s xdp_drops',
    applies: (f) => !f.counter && (reasonIn(f, 'XDP') || fnIs(f, /xdp/)),
    needs: ['progs', 'counters'],
    judge: judgeXdp,
  },
  {
    id: 'bpf/tc',
    checks: 'BPF programs on the drop\'s device\'s tc/tcx hook (id, name, tag, pinned path, owner)',
    applies: (f) => !f.counter && (reasonIn(f, 'TC_INGRESS', 'TC_EGRESS') || fnIs(f, /^(sch_handle_(ingress|egress)|tcf_classify|tcx_|cls_bpf)/)),
    needs: ['progs'],
    judge: judgeTc,
  },
  {
    id: 'bpf/cgroup',
    checks: 'cgroup BPF programs (bpftool cgroup tree) for cgroup and socket-filter drops',
    applies: (f) => reasonIn(f, 'BPF_CGROUP_EGRESS', 'BPF_CGROUP_INGRESS', 'SOCKET_FILTER'),
    needs: ['cgroupProgs'],
    judge: judgeCgroup,
  },
  {
    id: 'tunnel/vni',
    checks: "the namespace's VXLAN devices on the packet's port and their VNIs (ip -d link show type vxlan)",
    applies: (f) => !f.counter && (reasonIn(f, 'VXLAN_VNI_NOT_FOUND') || (unspecified(f) && fnIs(f, /^vxlan_rcv$/))),
    needs: ['vxlanDevices'],
    judge: judgeVni,
  },
  {
    id: 'neigh/failed',
    checks: "the neighbour entry of the next hop (the route's gateway, else the destination) on the drop's device: FAILED or INCOMPLETE",
    applies: (f) => !f.counter && (reasonIn(f, 'NEIGH_FAILED', 'NEIGH_QUEUEFULL') || (unspecified(f) && fnIs(f, /^(neigh_invalidate|__neigh_event_send|neigh_resolve_output)$/))),
    needs: ['neighbours', 'routeToDest'],
    judge: judgeNeighbour,
  },
  {
    id: 'dev/qdisc',
    checks: "the drop's device's qdiscs (tc -s qdisc show): the one that counts drops, and the device's qdisc drops during the window",
    applies: (f) => !f.counter && (reasonIn(f, ...QDISC_REASON_NAMES) || (unspecified(f) && fnIs(f, /^(__dev_queue_xmit|__dev_xmit_skb|dev_qdisc_enqueue|qdisc_drop\w*|\w+_enqueue)$/))),
    needs: ['qdiscs', 'counters'],
    judge: judgeQdisc,
  },
  {
    id: 'counters/moved',
    checks: 'SNMP and xfrm counters that moved in the namespace during the window',
    applies: (f) => !f.counter && !f.benign,
    needs: ['counters'],
    judge: (_f, x) => {
      const moved = x.counters ? movedCounters(x.counters.before, x.counters.after, INTERESTING).slice(0, 4) : [];
      return moved.length ? [{ verdict: 'info', text: `counters that moved in ${x.where}: ${moved.map(([k, d]) => `${k} +${d}`).join(', ')}` }] : [];
    },
  },
];

/** The rules that apply to a finding, in table order. */
export function rulesFor(f: Finding): EvidenceRule[] {
  return EVIDENCE_RULES.filter((r) => r.applies(f));
}

/** The facts a finding's rules need read. */
export function factsNeeded(f: Finding): Set<FactKind> {
  return new Set(rulesFor(f).flatMap((r) => r.needs));
}

/** The evidence of a finding: every rule that applies, judged on the facts read for it. */
export function judge(f: Finding, x: Facts): Evidence[] {
  return rulesFor(f).flatMap((r) => r.judge(f, x));
}
