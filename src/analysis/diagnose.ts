/**
 * From a window of drops to a verdict: findings built from the aggregate, ranked by impact
 * (the class their evidence earns, then count), and printed with what they mean and what to
 * run next. Pure: the evidence comes from the rules of evidence.ts, read by gather.ts.
 */
import type { GroupRow, Snapshot } from './snapshot.js';
import { benignLine, benignRule } from '../model/benign.js';
import { filledHint } from '../model/hints.js';
import { rowContext } from './context.js';
import { IMPACT_CLASSES, untracedFinding, type Finding, type Impact, type ImpactClass } from './finding.js';
import type { SiteStacks } from './stacks.js';
import type { PathRow } from './paths.js';
import { formatNs } from '../model/path.js';
import type { TrapRecord } from '../model/decode.js';
import { trapHint, trapsByName } from '../model/traps.js';

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
        layer: 'kernel stack' as const,
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
        sockets: row.sockets.map((s) => ({ socket: s.key, count: s.count })),
        flow: row.flow,
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

/**
 * Findings from the devlink traps a device reported during the window: one per trap of a device,
 * summed over its ports. The count is the kernel's exact count of trap reports; the device's
 * policer may have let fewer through than it dropped, which the evidence says.
 */
export function trapFindings(traps: readonly TrapRecord[], seconds: number): Finding[] {
  return trapsByName(traps).map((t) => {
    const ports = traps.filter((x) => x.device === t.device && x.trap === t.trap && x.ifname).map((x) => x.ifname);
    const hint = trapHint(t);
    return untracedFinding({
      layer: 'hardware trap',
      location: `${t.device} trap ${t.trap}`,
      count: t.packets,
      rate: seconds > 0 ? t.packets / seconds : 0,
      avgLen: t.packets ? Math.round(t.bytes / t.packets) : 0,
      interfaces: [...new Set(ports)],
      netns: { inode: t.netns, label: t.netns ? String(t.netns) : '?' },
      context: { reason: null, function: null, ifname: t.ifname || null, nsPrefix: '', l4: null, saddr: null, daddr: null, dport: null },
      hint,
      evidence: [
        {
          verdict: 'confirms',
          text: `${t.device} reported ${t.packets} packet${t.packets === 1 ? '' : 's'} through devlink trap ${t.trap} (group ${t.group}, type ${t.type}) during the window; the trap's policer may have dropped more without reporting them`,
        },
      ],
      impact: { class: 'other', why: '' },
      cause: hint.title,
      trap: { device: t.device, trap: t.trap, group: t.group, type: t.type },
    });
  });
}

/** The class of a finding, from its evidence, its packets and the baseline. Pure. */
export function impactOf(f: Finding): Impact {
  if (f.benign) return { class: 'benign', why: `expected on a healthy node: ${f.benign.title}` };
  if (f.counter) return { class: f.counter.impact, why: `${f.counter.delta} counted by ${f.counter.key} and never traced: the kernel freed them without a drop reason` };
  if (f.trap) {
    return f.trap.type === 'drop'
      ? { class: 'other', why: `dropped by ${f.trap.device}'s hardware, never seen by the kernel's stack` }
      : { class: 'other', why: `${f.trap.device}'s hardware could not forward them and passed them to the kernel's stack, which may have dropped them in turn` };
  }
  const confirmed = f.evidence.find((e) => e.verdict === 'confirms');
  if (f.baseline && f.baseline.rate > 0 && f.rate <= 2 * f.baseline.rate && !confirmed) {
    return { class: 'at-baseline', why: `as at rest: ${f.baseline.rate.toFixed(2)}/s in the baseline` };
  }
  const grew = f.baseline ? (f.baseline.rate > 0 ? `; grew from ${f.baseline.rate.toFixed(2)}/s at rest` : '; new: not in the baseline') : '';
  const syn = f.syn > 0 ? `${f.syn} TCP connection attempt${f.syn === 1 ? '' : 's'} (SYN) dropped; ` : '';
  if (confirmed) return { class: 'confirmed', why: `${syn}the node's own state confirms the cause${grew}` };
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
    // a site no table explains is explained by who called it
    else if (s?.stacks.length && (!f.hint || f.hint.id === 'reason/NOT_SPECIFIED')) f.calledFrom = s.stacks[0].frames.slice(1, 6);
  }
}

/** With --path: each finding's most frequent paths, the first of them as evidence. */
export function addPaths(findings: Finding[], rows: readonly PathRow[]): void {
  for (const f of findings) {
    const mine = rows.filter((r) => r.site === f.location && r.reason === f.reason);
    if (!mine.length) continue;
    f.paths = mine.slice(0, 3).map((r) => ({ hops: r.hops, count: r.count, medianNs: r.medianNs }));
    const r = mine[0];
    const of = r.count === f.count ? `all ${r.count}` : `${r.count} of its ${f.count}`;
    f.evidence.push({ verdict: 'info', text: `the path of ${of} drops (${formatNs(r.medianNs)} from the first step to the drop): ${[...r.hops, 'dropped here'].join(' → ')}` });
  }
}

/**
 * Counter findings whose counter a traced finding's confirmed evidence showed counting that
 * finding's own drops (xfrm_stat for an IPsec drop, xdp_drops for an XDP drop), in the same
 * namespace, are those drops: left out.
 */
export function withoutClaimed(findings: Finding[]): Finding[] {
  const claimed = new Set(findings.flatMap((f) => f.evidence.filter((e) => e.verdict === 'confirms').flatMap((e) => (e.counts ?? []).map((k) => `${f.netns.inode}|${k}`))));
  return findings.filter((f) => !f.counter || !claimed.has(`${f.netns.inode}|${f.counter.key}`));
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
    const what = f.counter ? `counter ${f.counter.key}` : f.trap ? `devlink trap ${f.trap.trap} (${f.trap.group}, ${f.trap.type}) of ${f.trap.device}` : `${f.reason ?? 'no reason'} at ${f.location}`;
    lines.push(`#${f.rank}  ${f.cause ?? f.hint?.title ?? what}`);
    // a trap counts packets the device reported: an exception is not (yet) a drop
    const unit = f.trap ? 'packet' : 'drop';
    lines.push(`    ${f.counter || f.trap ? 'counted:' : 'dropped:'}  ${what}: ${f.count} ${unit}${f.count === 1 ? '' : 's'}${f.counter || f.trap ? '' : ` (${(f.share * 100).toFixed(0)}%)`}, ${f.rate.toFixed(1)}/s${f.benign ? '  [expected noise]' : ''}`);
    if (f.impact.why) lines.push(`    impact:   ${f.impact.why}`);
    lines.push(`    layer:    ${f.layer}`);
    if (f.callers?.length) lines.push(`    freed for: ${f.callers.slice(0, 3).map((c) => `${c.function} ×${c.count}`).join(', ')} (from the kernel stacks)`);
    if (f.calledFrom?.length) lines.push(`    called from: ${f.calledFrom.join(' ← ')} (its most frequent kernel stack)`);
    lines.push(`    where:    ${f.interfaces.length ? `${f.interfaces.slice(0, 3).join(', ')} in ` : ''}netns ${f.netns.label}`);
    if (f.flows.length) lines.push(`    flows:    ${f.flows.slice(0, 3).map((x) => `${x.flow} ×${x.count}`).join('; ')}`);
    if (f.sockets.length) lines.push(`    socket:   ${f.sockets.slice(0, 3).map((x) => `${x.socket} ×${x.count}`).join('; ')}`);
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
