/** `droptrace live`: a top for packet drops (blessed), or dropwatch-style lines with --plain. */
import { writeFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { Command, Option } from 'commander';
import { GROUPS, SORTS, type GroupBy, type SortBy } from '../analysis/aggregate.js';
import { buildFilters, describeFilters, parseFilterArgs } from '../capture/filters.js';
import { makeNaming } from '../model/naming.js';
import { netnsNames } from '../host/netns.js';
import { formatPlain, intervalDrops } from '../views/plain.js';
import { LiveSession } from '../capture/session.js';
import { ReplayFeed } from '../analysis/replay.js';
import { UsageError } from '../capture/filters.js';
import { damageNote, recordingReasons } from '../formats/recording.js';
import type { Naming } from '../model/naming.js';
import type { CountRecord } from '../model/decode.js';
import { openRecording } from './files.js';
import { podName, podOfDrop } from '../host/pods.js';
import { InterfaceNames, VethPeers } from '../host/netns.js';
import { filledHint, formatHint } from '../model/hints.js';
import { rowContext } from '../analysis/context.js';
import type { LiveScreen } from '../views/screen.js';
import { addSampleOption, addTraceOptions, parsePositive, prepareTracing, type TraceOptions } from './common.js';

interface Options extends TraceOptions {
  interval: string;
  plain?: boolean;
  json?: boolean;
  events: boolean;
  group: GroupBy;
  sort: SortBy;
  duration?: string;
  replay?: string;
  speed: string;
  all?: boolean;
}

/** What the screen and printers are fed from: the kernel now, or a recording. */
interface Feed {
  agg: import('../analysis/aggregate.js').Aggregator;
  now(): number;
  sample(now: number): CountRecord[];
  stats(): { delivered: number; lost: number; missed?: number };
  /** detaches; the final exact count and the cumulative counts it came from */
  stop(): Promise<{ exact: number; counts: CountRecord[] }>;
  attach: string;
  describe: string;
  naming: Naming;
  hasReasons: boolean;
  setFilters?(text: string): Promise<string | null>;
  filters(): string;
  /** a replay that has played everything */
  finished?(): boolean;
}

export function liveCommand(): Command {
  const cmd = new Command('live')
    .description('a live, top-like view of where and why packets are dropped (exact in-kernel counts, rates, trends)')
    .option('-i, --interval <seconds>', 'how often to sample the counters and redraw', '0.5')
    .option('--plain', 'every interval, one dropwatch-style line per drop site that dropped (default when stdout is not a terminal)')
    .option('--json', 'every interval, one JSON snapshot per line')
    .option('--no-events', 'count only: no event stream (no flows, no recent drops, no interface names outside the host netns)')
    .addOption(new Option('--group <by>', 'group rows by').choices([...GROUPS]).default('location'))
    .addOption(new Option('--sort <by>', 'sort rows by').choices([...SORTS]).default('rate'))
    .option('-d, --duration <seconds>', 'stop after this many seconds')
    .option('--replay <file>', 'show a recording (droptrace record) instead of the kernel: no root needed')
    .option('--speed <x>', 'with --replay: play this many times faster', '1')
    .option('--all', 'show the drops every healthy node makes (IPv6 multicast nobody joined, frames for other hosts, …) as rows instead of one folded line (key b toggles)');
  addTraceOptions(cmd);
  addSampleOption(cmd);
  cmd.addHelpText(
    'after',
    `
Keys: ↑↓/j k select, Enter details, Esc back, g grouping, s sort, b show/fold expected noise,
p pause (counting goes on), c clear, f edit filters, ? help, q or Ctrl-C quit. NO_COLOR is honoured.

Examples:
  droptrace live                               # everything, grouped by drop site
  droptrace live --group reason --iface cni0
  droptrace live --plain --interval 1 | tee drops.log     # dropwatch-style, readable by symbolize`,
  );
  cmd.action(async (opts: Options) => run(opts));
  return cmd;
}


function kernelFeed(opts: Options): Feed {
  const { config, reasons, syms, pods } = prepareTracing(opts);
  let filterText = describeFilters(opts);
  const peers = new VethPeers(netnsNames);
  const naming = makeNaming(syms, reasons, netnsNames(), (ns, ifi) => podName(podOfDrop(pods, peers, ns, ifi)) ?? (pods.isHost(ns) ? '(host)' : null));
  // counting only (or a drop site no event has named yet): ask the namespace
  const ifnames = new InterfaceNames(netnsNames);
  naming.interface = (ns, ifi) => ifnames.name(ns, ifi);
  // namespaces made after the start (a pod, a lab) get their names too: look again on a miss, at most every 2 s
  let names = netnsNames();
  let namesAt = Date.now();
  naming.netns = (ino) => {
    if (!names.has(ino) && Date.now() - namesAt > 2000) {
      names = netnsNames();
      namesAt = Date.now();
    }
    return names.get(ino) ?? null;
  };
  const session = new LiveSession(config, naming, syms, reasons, opts.events);
  return {
    get agg() {
      return session.agg;
    },
    now: () => Date.now(),
    sample: (now) => session.sample(now),
    stats: () => session.stats(),
    stop: async () => {
      const s = await session.stop();
      return { exact: s.exact, counts: s.counts };
    },
    attach: session.tracer.path,
    describe: `counting drops via ${session.tracer.path} on ${session.tracer.target}`,
    naming,
    hasReasons: reasons.size > 0,
    filters: () => filterText,
    setFilters: async (text) => {
      try {
        const f = parseFilterArgs(text);
        await session.restart(buildFilters(f, reasons));
        filterText = describeFilters(f);
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    },
  };
}

/** Options that shape what the kernel sends: a recording was shaped when it was made. */
const CAPTURE_ONLY: Array<[keyof Options, string]> = [
  ['netns', '--netns'],
  ['iface', '--iface'],
  ['proto', '--proto'],
  ['host', '--host'],
  ['port', '--port'],
  ['reason', '--reason'],
  ['excludeReason', '--exclude-reason'],
  ['sample', '--sample'],
];

function replayFeed(opts: Options): Feed {
  const given = CAPTURE_ONLY.filter(([k]) => opts[k] !== undefined).map(([, flag]) => flag);
  // its counts are per drop site, not per packet: a port or host filter could apply to events only
  if (given.length) throw new UsageError(`${given.join(', ')} cannot apply to --replay: a recording keeps the filters it was made with; \`droptrace report FILE --by flow\` breaks it down by flow`);
  const speed = parsePositive(opts.speed, '--speed')!;
  const rec = openRecording(opts.replay!);
  const feed = new ReplayFeed(rec, speed);
  const reasons = recordingReasons(rec.meta);
  return {
    agg: feed.agg,
    now: () => feed.now(),
    sample: () => feed.sample(),
    stats: () => feed.stats(),
    stop: async () => {
      const counts = feed.sample();
      const damage = damageNote(rec.tables);
      if (damage) process.stderr.write(`droptrace: warning: ${opts.replay}: ${damage}\n`);
      return { exact: feed.agg.snapshot(feed.now()).total, counts };
    },
    finished: () => feed.finished,
    attach: `replay of ${rec.meta.host} (${rec.meta.attach})`,
    describe: `replaying ${opts.replay} (${rec.meta.host}, Linux ${rec.meta.kernel}) at ${speed}x`,
    naming: feed.naming,
    hasReasons: reasons.size > 0,
    filters: () => rec.meta.filters,
  };
}

async function run(opts: Options): Promise<void> {
  const interval = parsePositive(opts.interval, '--interval')!;
  const duration = parsePositive(opts.duration, '--duration');
  const mode = opts.json ? 'json' : opts.plain || !process.stdout.isTTY ? 'plain' : 'screen';
  const feed = opts.replay ? replayFeed(opts) : kernelFeed(opts);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);

  let screen: LiveScreen | null = null;
  let timer: NodeJS.Timeout | null = null;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  let stopping = false;
  let prev = new Map<string, number>();

  const emitPlain = (counts: CountRecord[]) => {
    const { lines, next } = intervalDrops(prev, counts);
    prev = next;
    if (!lines.length) return;
    const text = lines.map((l) => formatPlain(l, feed.naming, feed.agg.interfaceName(l.netns, l.ifindex), feed.hasReasons)).join('\n');
    process.stdout.write(text + '\n');
  };

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (timer) clearInterval(timer);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    try {
      const { exact, counts } = await feed.stop();
      // the drops of the last, partial interval
      if (mode === 'plain') emitPlain(counts);
      screen?.destroy();
      const st = feed.stats();
      process.stderr.write(`droptrace: ${exact} drops counted${opts.replay ? ' in the recording' : ' in the kernel'}, ${st.delivered} events delivered, ${st.lost} lost${st.missed ? `, ${st.missed} not seen at all (the kernel skipped the program while it was already running on that CPU)` : ''}\n`);
    } finally {
      screen?.destroy();
      finished();
    }
  };

  const tick = () => {
    const now = feed.now();
    const counts = feed.sample(now);
    const ended = feed.finished?.() ?? false;
    if (mode === 'plain') emitPlain(counts);
    else if (mode === 'json') {
      const snap = feed.agg.snapshot(now, opts.group, opts.sort, opts.all ? 'show' : 'fold');
      const st = feed.stats();
      const { recent: _recent, ...rest } = snap;
      process.stdout.write(JSON.stringify({ ...rest, delivered: st.delivered, lost: st.lost, filters: feed.filters() }) + '\n');
    } else screen?.refresh();
    // a replay ends by itself where a script reads it; the screen waits for q
    if (ended && mode !== 'screen') void stop();
    else if (ended) screen?.say('end of recording: q quits');
  };

  if (mode === 'screen') {
    // blessed is loaded only for the screen: --plain and --json stay lean
    const { LiveScreen } = await import('../views/screen.js');
    const header = () => {
      const st = feed.stats();
      return { host: hostname(), kernel: release(), attach: feed.attach, filters: feed.filters(), delivered: st.delivered, lost: st.lost, source: opts.replay ? 'replay' : 'kernel' };
    };
    screen = new LiveScreen(
      {
        header,
        snapshot: (g, s, b) => feed.agg.snapshot(feed.now(), g, s, b),
        clear: () => feed.agg.clear(feed.now()),
        quit: () => void stop(),
        setFilters: feed.setFilters ?? (async () => 'a replay cannot change its filters: they were applied when it was recorded'),
        hint: (row, group) => {
          const h = filledHint(rowContext(row, group));
          return h ? formatHint(h) : null;
        },
        verdict: (row, group) => {
          const ctx = rowContext(row, group);
          const h = filledHint(ctx);
          if (!h) return null;
          const where = [ctx.function && row.locations[0]?.key, ctx.ifname && `on ${ctx.ifname}`].filter(Boolean).join(' ');
          return `${ctx.reason ?? 'drop'}${where ? ` at ${where}` : ''}: ${h.title}${h.checks[0] ? `. Next: ${h.checks[0]}` : ''}`;
        },
        netnsName: (label) => {
          const inode = Number(label.split(' ')[0]);
          return feed.naming.netns?.(inode) ?? feed.naming.pod?.(inode, 0) ?? label;
        },
      },
      { group: opts.group, sort: opts.sort, noColor: 'NO_COLOR' in process.env, benign: opts.all ? 'show' : 'fold' },
    );
    // whatever happens, give the terminal back
    process.once('exit', () => screen?.destroy());
  } else {
    process.stderr.write(`droptrace: ${feed.describe}; filters: ${feed.filters()}; every ${interval}s\n`);
  }

  timer = setInterval(() => {
    try {
      tick();
    } catch (err) {
      screen?.destroy();
      throw err;
    }
  }, interval * 1000);
  if (duration) setTimeout(() => void stop(), duration * 1000);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await done;
}
