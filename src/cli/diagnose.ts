/** `droptrace diagnose`: trace for a while, then a verdict with evidence and next steps. */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { Aggregator } from '../analysis/aggregate.js';
import { startCapture } from '../capture/run.js';
import { decodeEvent } from '../model/decode.js';
import { evidenceFor, formatVerdict, parseLsListeners, buildFindings, rankFindings, siteKey, type Baseline, type EvidenceInput, type Finding } from '../analysis/diagnose.js';
import { monotonicToWallOffset, toRecord } from '../model/drop.js';
import { NetnsShell, ownNetns, parseSoftnetDrops, snapshotNetns, type NsSnapshot } from '../host/netns.js';
import { describeFilters, UsageError } from '../capture/filters.js';
import { makeNaming } from '../model/naming.js';
import { netnsNames } from '../host/netns.js';
import { buildReport } from '../analysis/report.js';
import { openRecording } from './files.js';
import { addSampleOption, addTraceOptions, parsePositive, prepareTracing, type TraceOptions } from './common.js';

interface Options extends TraceOptions {
  duration: string;
  top: string;
  json?: boolean;
  all?: boolean;
  baseline?: string;
}

const MAX_PRESNAPSHOT = 32;

function softnetTotal(): number | null {
  try {
    return parseSoftnetDrops(readFileSync('/proc/net/softnet_stat', 'utf8')).reduce((a, b) => a + b, 0);
  } catch {
    return null;
  }
}

export function diagnoseCommand(): Command {
  const cmd = new Command('diagnose')
    .description('trace for a while (or until Ctrl-C), then say what is dropping packets, with evidence from the kernel\'s counters and what to check next')
    .option('-d, --duration <seconds>', 'how long to watch', '10')
    .option('--top <n>', 'findings to report', '5')
    .option('--json', 'print the verdict as JSON')
    .option('--all', 'rank the drops every healthy node makes (IPv6 multicast nobody joined, frames for other hosts, …) as findings too, instead of one folded line')
    .option('--baseline <file>', 'a recording of this node at rest (droptrace record): sites that drop no faster than they did then rank below what is new or grew');
  addTraceOptions(cmd);
  addSampleOption(cmd);
  cmd.addHelpText(
    'after',
    `
Run it while the problem happens, e.g. while the pod retries. No filter is needed: findings
are ranked by impact (a cause the counters confirm, then failing connections such as dropped
TCP SYNs or a flow retried, then other unicast), not by count, and the drops every healthy node
makes are folded into one line.
  droptrace diagnose --duration 10
  droptrace diagnose --port 2483 --duration 10
  droptrace record -o rest.dtr -d 120; droptrace diagnose --baseline rest.dtr

Each finding says where (function+offset, interface, namespace, flows) and why (drop reason),
then checks it against the namespace's own counters: iptables rule counters that moved during
the window, listening sockets on the dropped port, rp_filter and the reverse route, softnet_stat
backlog drops, conntrack fill, routes and MTU, SNMP counters.`,
  );
  cmd.action(async (opts: Options) => run(opts));
  return cmd;
}

async function run(opts: Options): Promise<void> {
  const duration = parsePositive(opts.duration, '--duration')!;
  const top = Number(opts.top);
  if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top ${opts.top}: expected a positive whole number`);
  const baseline = opts.baseline ? loadBaseline(opts.baseline) : null;
  const { config, reasons, syms } = prepareTracing(opts);
  const names = netnsNames();
  const naming = makeNaming(syms, reasons, names);
  const shell = (inode: number) => new NetnsShell(inode, names);

  // counters before the window: this namespace and the named ones (bounded)
  const before = new Map<number, NsSnapshot>();
  const own = ownNetns();
  const targets = config.netns ? [config.netns] : [own, ...[...names.keys()].slice(0, MAX_PRESNAPSHOT)];
  for (const ino of targets) {
    const sh = shell(ino);
    if (sh.reachable) before.set(ino, snapshotNetns(sh));
  }
  const softnetBefore = softnetTotal();

  const agg = new Aggregator(naming, undefined, config.sample ?? 1);
  const wallOffset = monotonicToWallOffset();
  const wallOffsetMs = Number(wallOffset / 1_000_000n);
  const capture = startCapture(config, (b) => agg.addBatch(b.buf, b.stride, b.count, wallOffsetMs, (buf, i, stride) => toRecord(decodeEvent(buf, i, stride), syms, reasons, wallOffset)));
  const started = Date.now();
  agg.addCounts(started, []);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);
  process.stderr.write(`droptrace: watching drops via ${capture.tracer.path} for ${duration}s (filters: ${describeFilters(opts)}); Ctrl-C to stop early\n`);

  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, duration * 1000);
    const early = () => {
      clearTimeout(t);
      resolve();
    };
    process.once('SIGINT', early);
    process.once('SIGTERM', early);
  });
  const summary = await capture.stop();
  const now = Date.now();
  agg.addCounts(now, summary.counts);
  const seconds = (now - started) / 1000;
  const snap = agg.snapshot(now, 'location', 'count', opts.all ? 'show' : 'fold');
  const softnetAfter = softnetTotal();

  // evidence for more candidates than are shown: a small site whose rule counter moved outranks a big one
  const candidates: Finding[] = buildFindings(snap, seconds, (ino) => shell(ino).commandPrefix).slice(0, Math.max(3 * top, 12));
  for (const f of candidates) {
    if (f.benign) continue;
    const sh = shell(f.netns.inode);
    const after = sh.reachable ? snapshotNetns(sh) : null;
    const iface = f.interfaces[0];
    const ctx = f.context;
    const input: EvidenceInput = {
      where: sh.label,
      before: before.get(f.netns.inode) ?? null,
      after,
      softnetDrops: softnetBefore !== null && softnetAfter !== null ? softnetAfter - softnetBefore : null,
      listeners: ctx.dport ? parseLsListeners(sh.run(['ss', '-ltnH', `sport = :${ctx.dport}`]), sh.run(['ss', '-lunH', `sport = :${ctx.dport}`])) : null,
      rpFilter: iface
        ? { all: sh.read('/proc/sys/net/ipv4/conf/all/rp_filter')?.trim() ?? null, iface: sh.read(`/proc/sys/net/ipv4/conf/${iface}/rp_filter`)?.trim() ?? null }
        : null,
      routeToSource: ctx.saddr ? sh.run(['ip', 'route', 'get', ctx.saddr]) : null,
      routeToDest: ctx.daddr ? sh.run(['ip', 'route', 'get', ctx.daddr]) : null,
      conntrack: (() => {
        const c = sh.read('/proc/sys/net/netfilter/nf_conntrack_count');
        const m = sh.read('/proc/sys/net/netfilter/nf_conntrack_max');
        return c && m ? { count: Number(c), max: Number(m) } : null;
      })(),
      mtu: null,
    };
    const dev = input.routeToDest ? /\bdev (\S+)/.exec(input.routeToDest)?.[1] : undefined;
    if (dev) input.mtu = Number(sh.read(`/sys/class/net/${dev}/mtu`) ?? NaN) || mtuFromIp(sh.run(['ip', 'link', 'show', dev]));
    f.evidence = evidenceFor(f, input);
  }
  const findings = rankFindings(candidates, baseline).slice(0, top);

  const lost = summary.stats.lost + summary.stats.droppedInProcess;
  const head = `droptrace diagnose: ${summary.exact} drop${summary.exact === 1 ? '' : 's'} in ${seconds.toFixed(1)} s (filters: ${describeFilters(opts)}), ${findings.length} finding${findings.length === 1 ? '' : 's'}${lost ? `; ${lost} events lost (counts are exact, flows may miss some)` : ''}`;
  const checked = [
    `every skb drop via ${capture.tracer.path} on ${capture.tracer.target}`,
    `counters before and after in ${before.size} network namespace(s)`,
    softnetBefore === null ? 'softnet_stat unreadable' : `softnet_stat (${(softnetAfter ?? 0) - softnetBefore} backlog drops)`,
  ];
  if (baseline) checked.push(`baseline ${opts.baseline} (${baseline.size} site(s) at rest)`);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ drops: summary.exact, seconds, lost, filters: describeFilters(opts), findings, benign: snap.benign, checked }, null, 2) + '\n');
  } else {
    process.stdout.write(formatVerdict(findings, head, checked, snap.benign) + '\n');
  }
}

/** Each site's rate at rest, from a recording (benign ones included: the window shows them too with --all). */
function loadBaseline(file: string): Baseline {
  const rep = buildReport(openRecording(file), { by: 'location', all: true });
  const out: Baseline = new Map();
  for (const r of rep.rows) out.set(siteKey(r.key, r.reasons[0] ?? null, r.interfaces[0] ?? null), r.rate);
  return out;
}

function mtuFromIp(text: string | null): number | null {
  const m = text ? /\bmtu (\d+)/.exec(text) : null;
  return m ? Number(m[1]) : null;
}
