/**
 * From a window of drops to a verdict: findings ranked by impact, each with
 * its evidence from the kernel's own counters, what it means and what to run
 * next. buildFindings and the evidence rules are pure; the caller hands in
 * the snapshots taken before and after the window.
 */
import type { GroupRow, Snapshot } from './snapshot.js';
import { benignLine, benignRule } from '../model/benign.js';
import { movedCounters, movedDropRules, parseListeners, type NsSnapshot } from '../host/netns.js';
import { filledHint, type DropContext, type Hint } from '../model/hints.js';
import { rowContext } from './context.js';
import type { SiteStacks } from './stacks.js';

export interface Evidence {
  /** confirms the finding, refutes it, or is context */
  verdict: 'confirms' | 'refutes' | 'info';
  text: string;
  /** a confirmation that names the cause: becomes the finding's headline */
  cause?: string;
  /** the command that shows that cause, put first under "next" */
  next?: string;
}

export interface Finding {
  rank: number;
  location: string;
  function: string | null;
  reason: string | null;
  count: number;
  share: number;
  rate: number;
  avgLen: number;
  interfaces: string[];
  netns: { inode: number; label: string };
  flows: Array<{ flow: string; count: number }>;
  context: DropContext;
  hint: Hint | null;
  evidence: Evidence[];
  /** TCP connection attempts (SYN) among the drops seen as events */
  syn: number;
  /** drops seen as events with a unicast destination, and the largest such flow */
  unicast: number;
  topUnicast: { key: string; count: number } | null;
  /** the benign rule (src/model/benign.ts) all of its drops matched, or null */
  benign: { rule: string; title: string } | null;
  /** the same site at rest (--baseline), when one was given */
  baseline: { rate: number } | null;
  /** why it ranks where it does */
  impact: Impact;
  /**
   * the cause the evidence established (conntrack full, a rule that counted them, a listener
   * bound elsewhere, strict rp_filter): the finding's headline, in place of the reason's
   * generic meaning; null when nothing confirmed one
   */
  cause: string | null;
  /** a drop only a counter saw (never freed through kfree_skb with a reason), or null for traced drops */
  counter: { key: string; delta: number; impact: 'failing-connections' | 'unicast' | 'other' } | null;
  /** with --stack, for a generic free function: who it freed for, by drops */
  callers?: Array<{ function: string; count: number }>;
}

/**
 * How much a finding matters to someone whose connection fails, strongest
 * first. Counts rank only within a class: 40 MLD reports must not outrank 3
 * SYNs dropped by a rule.
 */
export const IMPACT_CLASSES = ['confirmed', 'failing-connections', 'unicast', 'other', 'at-baseline', 'benign'] as const;
export type ImpactClass = (typeof IMPACT_CLASSES)[number];
export interface Impact {
  class: ImpactClass;
  why: string;
}

function inodeOf(label: string | undefined): number {
  return label ? Number(label.split(' ')[0]) || 0 : 0;
}

/** A site's rate at rest, from a baseline recording: key is siteKey(). */
export type Baseline = Map<string, number>;

export function siteKey(location: string, reason: string | null, iface: string | null): string {
  return `${location}|${reason ?? '-'}|${iface ?? '-'}`;
}

/**
 * Findings from a snapshot grouped by location, biggest first; the caller
 * adds evidence, then rankFindings orders them by impact.
 */
export function buildFindings(snap: Snapshot, seconds: number, nsPrefix: (inode: number) => string): Finding[] {
  const total = snap.total;
  return [...snap.rows]
    .sort((a, b) => b.total - a.total)
    .map((row: GroupRow) => {
      const inode = inodeOf(row.netns[0]?.key);
      const ctx = { ...rowContext(row, 'location'), nsPrefix: nsPrefix(inode) };
      const rule = row.benign ? benignRule(row.benign) : undefined;
      return {
        rank: 0,
        location: row.key,
        function: ctx.function ?? null,
        reason: ctx.reason ?? null,
        count: row.total,
        share: total ? row.total / total : 0,
        rate: seconds > 0 ? row.total / seconds : 0,
        avgLen: row.total ? Math.round(row.bytes / row.total) : 0,
        interfaces: row.interfaces.map((x) => x.key),
        netns: { inode, label: row.netns[0]?.key ?? '?' },
        flows: row.flows.map((f) => ({ flow: f.key, count: f.count })),
        context: ctx,
        hint: filledHint(ctx),
        evidence: [],
        syn: row.syn,
        unicast: row.unicast,
        topUnicast: row.topUnicast,
        benign: rule ? { rule: rule.id, title: rule.title } : null,
        baseline: null,
        impact: { class: 'other', why: '' },
        cause: null,
        counter: null,
      };
    });
}

/** The class of a finding, from its evidence, its packets and the baseline. Pure. */
export function impactOf(f: Finding): Impact {
  if (f.benign) return { class: 'benign', why: `expected on a healthy node: ${f.benign.title}` };
  if (f.counter) return { class: f.counter.impact, why: `${f.counter.delta} counted by ${f.counter.key} and never traced: the kernel freed them without a drop reason` };
  const confirmed = f.evidence.find((e) => e.verdict === 'confirms');
  if (f.baseline && f.baseline.rate > 0 && f.rate <= 2 * f.baseline.rate && !confirmed) {
    return { class: 'at-baseline', why: `as at rest: ${f.baseline.rate.toFixed(2)}/s in the baseline` };
  }
  const grew = f.baseline ? (f.baseline.rate > 0 ? `; grew from ${f.baseline.rate.toFixed(2)}/s at rest` : '; new: not in the baseline') : '';
  const syn = f.syn > 0 ? `${f.syn} TCP connection attempt${f.syn === 1 ? '' : 's'} (SYN) dropped; ` : '';
  if (confirmed) return { class: 'confirmed', why: `${syn}the node's own counters confirm the cause${grew}` };
  if (f.syn > 0) return { class: 'failing-connections', why: `${f.syn} TCP connection attempt${f.syn === 1 ? '' : 's'} (SYN) dropped${grew}` };
  if (f.topUnicast && f.topUnicast.count >= 2) return { class: 'failing-connections', why: `the same flow dropped ${f.topUnicast.count} times (${f.topUnicast.key})${grew}` };
  if (f.unicast > 0) return { class: 'unicast', why: `${f.unicast} unicast packet${f.unicast === 1 ? '' : 's'}${grew}` };
  return { class: 'other', why: grew ? grew.slice(2) : '' };
}

/**
 * The headline a finding's evidence earns: the first confirmation that names a cause. A cause
 * refuted by its own evidence is never the headline (the reason's generic meaning stays).
 */
export function causeOf(f: Finding): string | null {
  return f.evidence.find((e) => e.verdict === 'confirms' && e.cause)?.cause ?? f.cause;
}

/** The finding's hint with the command that shows its established cause first. */
function withCauseFirst(f: Finding): Finding['hint'] {
  const next = f.evidence.find((e) => e.verdict === 'confirms' && e.cause)?.next;
  if (!next || !f.hint) return f.hint;
  return { ...f.hint, checks: [next, ...f.hint.checks.filter((c) => c !== next)] };
}

/** Names, for findings at a generic free function, the callers their stacks show. */
export function addCallers(findings: Finding[], sites: readonly SiteStacks[]): void {
  for (const f of findings) {
    const s = sites.find((x) => x.site === f.location);
    if (s?.callers.length) f.callers = s.callers;
  }
}

/** Orders findings by impact class, then count; numbers their ranks. */
export function rankFindings(findings: Finding[], baseline: Baseline | null): Finding[] {
  for (const f of findings) {
    f.cause = causeOf(f);
    f.hint = withCauseFirst(f);
    if (baseline) f.baseline = { rate: baseline.get(siteKey(f.location, f.reason, f.interfaces[0] ?? null)) ?? 0 };
    f.impact = impactOf(f);
  }
  const order = (c: ImpactClass) => IMPACT_CLASSES.indexOf(c);
  const out = [...findings].sort((a, b) => order(a.impact.class) - order(b.impact.class) || b.count - a.count || a.location.localeCompare(b.location));
  out.forEach((f, i) => (f.rank = i + 1));
  return out;
}

/** Everything read in the finding's namespace, before and after the window. */
export interface EvidenceInput {
  where: string;
  before: NsSnapshot | null;
  after: NsSnapshot | null;
  softnetDrops: number | null;
  listeners: { tcp: string[]; udp: string[] } | null;
  rpFilter: { all: string | null; iface: string | null } | null;
  routeToSource: string | null;
  routeToDest: string | null;
  conntrack: { count: number; max: number } | null;
  mtu: number | null;
}

const INTERESTING = /NoPorts|InErrors|InAddrErrors|InNoRoutes|InHdrErrors|ReversePath|ListenOverflows|ListenDrops|RcvbufErrors|InCsumErrors|FragFails|ReasmFails|InDiscards|Backlog|OutRsts|PAWS/;

/** The evidence rules: which counters confirm or refute which kind of drop. */
export function evidenceFor(f: Finding, e: EvidenceInput): Evidence[] {
  const out: Evidence[] = [];
  const reason = f.reason ?? '';
  const fn = f.function ?? '';
  const netfilter = reason === 'NETFILTER_DROP' || /^(nf_hook_slow|nft_do_chain|ipt_do_table)/.test(fn);
  const port = f.context.dport;
  const daddr = f.context.daddr;

  if (netfilter) {
    if (e.before?.rules && e.after?.rules) {
      const moved = movedDropRules(e.before.rules, e.after.rules);
      if (moved.length) {
        for (const r of moved.slice(0, 3)) out.push({ verdict: 'confirms', text: `${r.table} ${r.rule} counted ${r.delta} packet(s) in ${e.where} during the window`, cause: `a firewall rule dropped them: ${r.rule} (table ${r.table})` });
      } else {
        out.push({ verdict: 'refutes', text: `no DROP/REJECT iptables rule or policy in ${e.where} moved: the drop may come from an nftables table iptables does not show, or from conntrack` });
      }
    } else if (e.after?.rules) {
      const drops = e.after.rules.filter((r) => r.drops && r.packets > 0).slice(0, 3);
      for (const r of drops) out.push({ verdict: 'info', text: `${r.table} ${r.rule} has dropped ${r.packets} packet(s) since it was loaded (no snapshot before the window)` });
    }
    if (e.conntrack) {
      const full = e.conntrack.max > 0 && e.conntrack.count >= 0.9 * e.conntrack.max;
      out.push({
        verdict: full ? 'confirms' : 'info',
        text: `conntrack holds ${e.conntrack.count} of ${e.conntrack.max} entries${full ? ': nearly full, new flows are dropped' : ''}`,
        ...(full
          ? {
              cause: `the conntrack table is full (${e.conntrack.count} of ${e.conntrack.max} entries): new connections are dropped`,
              next: `${f.context.nsPrefix}sh -c "cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max"; dmesg | grep -i "table full"`,
            }
          : {}),
      });
    }
  }

  if (reason === 'NO_SOCKET' && port) {
    const udp = f.context.l4 === 'UDP';
    const list = e.listeners ? (udp ? e.listeners.udp : e.listeners.tcp) : null;
    if (list) {
      const onPort = list.filter((a) => a.endsWith(`:${port}`));
      if (!onPort.length) out.push({ verdict: 'confirms', text: `nothing listens on ${udp ? 'UDP' : 'TCP'} port ${port} in ${e.where}`, cause: `nothing listens on ${udp ? 'UDP' : 'TCP'} port ${port}` });
      else {
        const wildcard = onPort.some((a) => /^(0\.0\.0\.0|\*|\[::\]|\[::ffff:0\.0\.0\.0\]):/.test(a));
        const matches = daddr && onPort.some((a) => a.startsWith(`${daddr}:`) || a.startsWith(`[${daddr}]:`));
        if (!wildcard && !matches) {
          out.push({
            verdict: 'confirms',
            text: `port ${port} in ${e.where} is bound only to ${onPort.join(', ')}: packets to ${daddr ?? 'other addresses'} find no socket`,
            cause: `the service on port ${port} listens only on ${onPort.join(', ')}, not on ${daddr ?? 'the address the packets went to'}`,
          });
        } else {
          out.push({ verdict: 'refutes', text: `${onPort.join(', ')} listens on port ${port} in ${e.where} now: the service may have restarted during the window` });
        }
      }
    }
  }

  if (reason === 'IP_RPFILTER' || /^ip_rcv_finish/.test(fn)) {
    if (e.rpFilter) {
      const strict = e.rpFilter.all === '1' || e.rpFilter.iface === '1';
      out.push({ verdict: strict ? 'confirms' : 'info', text: `rp_filter in ${e.where}: all=${e.rpFilter.all ?? '?'}, ${f.interfaces[0] ?? 'iface'}=${e.rpFilter.iface ?? '?'}${strict ? ' (strict)' : ''}` });
    }
    if (e.routeToSource) {
      const dev = /\bdev (\S+)/.exec(e.routeToSource)?.[1];
      const asym = dev && f.interfaces[0] && dev !== f.interfaces[0];
      out.push({
        verdict: asym ? 'confirms' : 'info',
        text: `the route back to ${f.context.saddr} leaves via ${dev ?? '?'}${asym ? `, not ${f.interfaces[0]} where the packet came in: asymmetric` : ''}`,
        ...(asym ? { cause: `reverse-path filtering: the route back to ${f.context.saddr} leaves via ${dev}, not ${f.interfaces[0]}` } : {}),
      });
    }
  }

  if ((reason === 'SOCKET_RCVBUFF' || reason === 'PROTO_MEM') && e.before && e.after) {
    const grew = movedCounters(e.before.snmp, e.after.snmp, /^(Udp|Udp6|UdpLite|UdpLite6):RcvbufErrors$|^TcpExt:TCPRcvQDrop$/);
    const sum = grew.reduce((n, [, d]) => n + d, 0);
    if (sum > 0) {
      out.push({
        verdict: 'confirms',
        text: `${grew.map(([k, d]) => `${k} +${d}`).join(', ')} in ${e.where} during the window`,
        cause: `the socket${port ? ` on ${f.context.l4 ?? ''} port ${port}`.replace('  ', ' ') : ''} in ${e.where} does not read fast enough: its receive buffer was full`,
        next: `${f.context.nsPrefix}ss -${f.context.l4 === 'TCP' ? 't' : 'u'}anm${port ? ` sport = :${port}` : ''}   # skmem r (queued) at rb (buffer): full`,
      });
    } else out.push({ verdict: 'refutes', text: `no receive-buffer counter (RcvbufErrors, TCPRcvQDrop) moved in ${e.where}` });
  }

  if (reason === 'CPU_BACKLOG' || /^enqueue_to_backlog/.test(fn)) {
    if (e.softnetDrops !== null) out.push({ verdict: e.softnetDrops > 0 ? 'confirms' : 'refutes', text: `/proc/net/softnet_stat counted ${e.softnetDrops} backlog drop(s) during the window` });
  }

  if (reason === 'PKT_TOO_BIG' && e.routeToDest) {
    const dev = /\bdev (\S+)/.exec(e.routeToDest)?.[1];
    out.push({ verdict: e.mtu !== null && f.avgLen > e.mtu ? 'confirms' : 'info', text: `the route to ${daddr} leaves via ${dev ?? '?'} with MTU ${e.mtu ?? '?'}; the dropped packets averaged ${f.avgLen} bytes` });
  }

  if ((reason === 'IP_INNOROUTES' || reason === 'IP_OUTNOROUTES') && daddr) {
    out.push(
      e.routeToDest === null
        ? { verdict: 'confirms', text: `${e.where} has no route to ${daddr} ("ip route get" fails)`, cause: `no route to ${daddr}` }
        : { verdict: 'refutes', text: `${e.where} routes ${daddr} now: ${e.routeToDest.trim().split('\n')[0]}` },
    );
  }

  if (e.before && e.after) {
    const moved = movedCounters(e.before.snmp, e.after.snmp, INTERESTING).slice(0, 4);
    if (moved.length) out.push({ verdict: 'info', text: `counters that moved in ${e.where}: ${moved.map(([k, d]) => `${k} +${d}`).join(', ')}` });
  }
  return out;
}

export function parseLsListeners(tcp: string | null, udp: string | null): { tcp: string[]; udp: string[] } | null {
  if (tcp === null && udp === null) return null;
  return { tcp: parseListeners(tcp ?? ''), udp: parseListeners(udp ?? '') };
}

const mark = { confirms: '✓', refutes: '✗', info: '·' } as const;

export function formatVerdict(findings: Finding[], head: string, checked: string[], benign: Parameters<typeof benignLine>[0] = []): string {
  const lines = [head];
  const folded = benignLine(benign);
  if (!findings.length) {
    lines.push('', folded ? 'No drops besides the expected noise below. What was checked:' : 'No drops matched. What was checked:', ...checked.map((c) => `  · ${c}`));
    if (folded) lines.push('', folded);
    return lines.join('\n');
  }
  for (const f of findings) {
    lines.push('');
    const what = f.counter ? `counter ${f.counter.key}` : `${f.reason ?? 'no reason'} at ${f.location}`;
    lines.push(`#${f.rank}  ${f.cause ?? f.hint?.title ?? what}`);
    lines.push(`    ${f.counter ? 'counted:' : 'dropped:'}  ${what}: ${f.count} drop${f.count === 1 ? '' : 's'}${f.counter ? '' : ` (${(f.share * 100).toFixed(0)}%)`}, ${f.rate.toFixed(1)}/s${f.benign ? '  [expected noise]' : ''}`);
    if (f.impact.why) lines.push(`    impact:   ${f.impact.why}`);
    if (f.callers?.length) lines.push(`    freed for: ${f.callers.slice(0, 3).map((c) => `${c.function} ×${c.count}`).join(', ')} (from the kernel stacks)`);
    lines.push(`    where:    ${f.interfaces.length ? `${f.interfaces.slice(0, 3).join(', ')} in ` : ''}netns ${f.netns.label}`);
    if (f.flows.length) lines.push(`    flows:    ${f.flows.slice(0, 3).map((x) => `${x.flow} ×${x.count}`).join('; ')}`);
    if (f.hint) {
      // the reason's general meaning under a cause the evidence established
      const explain = f.hint.title !== f.hint.explain ? f.hint.explain : null;
      if (!f.cause) lines.push(`    meaning:  ${f.hint.title}`, ...(explain ? [`              ${explain}`] : []));
      else if (f.cause !== f.hint.title) lines.push(`    meaning:  ${f.reason ?? f.counter?.key ?? 'the drop'} in general: ${f.hint.title}`, ...(explain ? [`              ${explain}`] : []));
      else if (explain) lines.push(`    meaning:  ${explain}`);
    }
    if (f.evidence.length) {
      lines.push('    evidence:');
      for (const e of f.evidence) lines.push(`      ${mark[e.verdict]} ${e.text}`);
    }
    if (f.hint) {
      lines.push('    likely causes:');
      for (const c of f.hint.causes) lines.push(`      - ${c}`);
      lines.push('    next:');
      for (const c of f.hint.checks) lines.push(`      $ ${c}`);
    }
  }
  if (folded) lines.push('', folded);
  lines.push('', `Checked: ${checked.join('; ')}`);
  return lines.join('\n');
}
