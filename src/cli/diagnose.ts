/** `droptrace diagnose`: trace for a while, then a verdict with evidence and next steps. */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { addCallers, addPaths, buildFindings, formatVerdict, rankFindings, siteKey, trapFindings, withoutClaimed, type Baseline } from '../analysis/diagnose.js';
import { stackFrames } from '../model/decode.js';
import { AggregateConsumer } from '../analysis/feed.js';
import { EVIDENCE_RULES } from '../analysis/evidence.js';
import { CounterWindow, tracedDrops } from '../analysis/gather.js';
import { buildReport } from '../analysis/report.js';
import { describeFilters, UsageError } from '../capture/filters.js';
import { CaptureRun } from '../capture/run.js';
import { netnsNames } from '../host/netns.js';
import { cgroupOwners } from '../host/cgroups.js';
import { makeNaming } from '../model/naming.js';
import { trapPackets } from '../model/traps.js';
import { addPathOption, addSampleOption, addTraceOptions, parsePositive, prepareTracing, type TraceOptions } from './common.js';
import { openRecording } from './files.js';

interface Options extends TraceOptions {
  duration: string;
  top: string;
  json?: boolean;
  all?: boolean;
  baseline?: string;
  stack?: boolean;
}

export function diagnoseCommand(): Command {
  const cmd = new Command('diagnose')
    .description('trace for a while (or until Ctrl-C), then say what is dropping packets, with evidence from the kernel\'s counters and what to check next')
    .option('-d, --duration <seconds>', 'how long to watch', '10')
    .option('--top <n>', 'findings to report', '5')
    .option('--json', 'print the verdict as JSON')
    .option('--all', 'rank the drops every healthy node makes (IPv6 multicast nobody joined, frames for other hosts, …) as findings too, instead of one folded line')
    .option('--no-stack', 'take no kernel stacks (by default they name the caller of a drop in a generic free function such as skb_release_data, and the code path of a site no table explains)')
    .option('--baseline <file>', 'a recording of this node at rest (droptrace record): sites that drop no faster than they did then rank below what is new or grew');
  addTraceOptions(cmd);
  addSampleOption(cmd);
  addPathOption(cmd);
  cmd.addHelpText(
    'after',
    `
Run it while the problem happens, e.g. while the pod retries. No filter is needed: findings
are ranked by impact (a cause the host confirms, then failing connections such as dropped
TCP SYNs or a flow retried, then other unicast), not by count, and the drops every healthy node
makes are folded into one line.
  droptrace diagnose --duration 10
  droptrace diagnose --port 2483 --duration 10
  droptrace diagnose --port 2483 --path       # and the path the dropped packets took
  droptrace record -o rest.dtr -d 120; droptrace diagnose --baseline rest.dtr

Each finding says where (function+offset, interface, namespace, flows) and why (drop reason),
then checks it on the host: every rule below that applies to the finding reads only what it
needs in the drop's namespace, and a confirmation that names a cause (the rule, route, policy or
program) becomes the finding's headline.
${EVIDENCE_RULES.map((r) => `  ${r.id.padEnd(20)} ${r.checks}`).join('\n')}
Drops the tracepoint never sees (a full accept queue, NIC and driver drops, qdisc drops, softnet
squeezes, IPsec errors) become findings of their own when a counter that counts them moved:
TcpExt and Udp SNMP counters, every interface's rx/tx dropped and missed, tc qdisc drops,
ethtool -S where the driver offers it, /proc/net/xfrm_stat. Packets a device's hardware dropped
and reported through devlink traps (where the kernel has devlink) are findings too. Each
finding names its layer: kernel stack, driver (a device's own counters) or hardware trap.`,
  );
  cmd.action(async (opts: Options) => run(opts));
  return cmd;
}

async function run(opts: Options): Promise<void> {
  const duration = parsePositive(opts.duration, '--duration')!;
  const top = Number(opts.top);
  if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top ${opts.top}: expected a positive whole number`);
  const baseline = opts.baseline ? loadBaseline(opts.baseline) : null;
  const prepared = prepareTracing(opts);
  const { reasons, syms } = prepared;
  const config = { ...prepared.config, stack: opts.stack !== false };
  const names = netnsNames();
  // receiving sockets are named by their cgroup's owner: the pod or unit that did not read
  const owner = cgroupOwners(prepared.cgroups, prepared.pods);
  const tally = new AggregateConsumer(true, makeNaming(syms, reasons, names, undefined, owner), syms, reasons);
  const capture = CaptureRun.start(config, [tally], { duration });
  // the counters' window opens once the trace is attached, so what they count is what it could
  // see; ready (for scripts) only after both
  const window = await CounterWindow.open(names, config.netns);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);
  const started = Date.now();
  process.stderr.write(`droptrace: watching drops via ${capture.tracer.path} for ${duration}s (filters: ${describeFilters(opts)}); Ctrl-C to stop early\n`);
  const summary = await capture.done;
  window.close();
  const seconds = (Date.now() - started) / 1000;
  const snap = tally.agg.snapshot(Date.now(), 'location', 'count', opts.all ? 'show' : 'fold');

  // evidence for more candidates than are shown: a small site whose rule counter moved outranks a big one
  const candidates = buildFindings(snap, seconds, (ino) => window.shell(ino).commandPrefix).slice(0, Math.max(3 * top, 12));
  // drops only the counters saw (accept queues, NIC rings, qdiscs) rank with the traced ones
  candidates.push(...(await window.counterFindings(tracedDrops(tally.agg.keyTotals()), seconds)));
  await window.gather(candidates);
  // hardware drops a device reported (devlink traps): exact counts, no evidence rules to run
  candidates.push(...trapFindings(summary.traps, seconds));
  if (tally.stacks) addCallers(candidates, tally.stacks.sites(syms, (id) => stackFrames(capture.tracer.stack(id))));
  if (tally.paths) addPaths(candidates, tally.paths.summary(1000).rows);
  const findings = rankFindings(withoutClaimed(candidates), baseline).slice(0, top);

  const lost = summary.stats.lost + summary.stats.droppedInProcess;
  const trapped = trapPackets(summary.traps);
  const hw = trapped ? ` and ${trapped} packet${trapped === 1 ? '' : 's'} trapped by devices` : '';
  const head = `droptrace diagnose: ${summary.exact} drop${summary.exact === 1 ? '' : 's'}${hw} in ${seconds.toFixed(1)} s (filters: ${describeFilters(opts)}), ${findings.length} finding${findings.length === 1 ? '' : 's'}${lost ? `; ${lost} events lost (counts are exact, flows may miss some)` : ''}`;
  const checked = [`every skb drop via ${capture.tracer.path} on ${capture.tracer.target}`, ...window.describe()];
  if (capture.tracer.hardwareTraps) checked.push('hardware drops devices report (devlink:devlink_trap_report)');
  else if (capture.tracer.hardwareTrapsNote) checked.push(`not devlink traps: ${capture.tracer.hardwareTrapsNote}`);
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

