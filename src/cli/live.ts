/** `droptrace live`: a top for packet drops (blessed), or dropwatch-style lines with --plain. */
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { kernelFeed, replayFeed, type Feed } from '../analysis/feed.js';
import { GROUPS, SORTS, type GroupBy, type SortBy } from '../analysis/snapshot.js';
import { UsageError } from '../capture/filters.js';
import { nodeNaming } from '../host/names.js';
import { runLiveView } from '../views/live.js';
import { addPathOption, addSampleOption, addTraceOptions, parsePositive, prepareTracing, type TraceOptions } from './common.js';
import { openRecording } from './files.js';

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
  stack?: boolean;
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
    .option('--stack', 'also take the kernel stack of each drop: the detail view (Enter) lists them per drop site')
    .option('--all', 'show the drops every healthy node makes (IPv6 multicast nobody joined, frames for other hosts, …) as rows instead of one folded line (key b toggles)');
  addTraceOptions(cmd);
  addSampleOption(cmd);
  addPathOption(cmd);
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
  ['stack', '--stack'],
  ['path', '--path'],
];

function openFeed(opts: Options, duration: number | undefined): Feed {
  if (opts.replay) {
    const given = CAPTURE_ONLY.filter(([k]) => opts[k] !== undefined).map(([, flag]) => flag);
    // its counts are per drop site, not per packet: a port or host filter could apply to events only
    if (given.length) throw new UsageError(`${given.join(', ')} cannot apply to --replay: a recording keeps the filters it was made with; \`droptrace report FILE --by flow\` breaks it down by flow`);
    const feed = replayFeed(openRecording(opts.replay), opts.replay, parsePositive(opts.speed, '--speed')!, { duration });
    if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);
    return feed;
  }
  // the path and the stack travel in events: counting alone has neither
  if (!opts.events && (opts.path || opts.stack)) throw new UsageError(`${opts.path ? '--path' : '--stack'} needs events: it cannot go with --no-events`);
  const { config, reasons, syms, pods, cgroups } = prepareTracing(opts);
  const naming = nodeNaming(syms, reasons, pods, cgroups);
  return kernelFeed({ config: { ...config, stack: !!opts.stack }, filters: opts, events: opts.events, naming, syms, reasons, duration, readyFile: opts.readyFile });
}

async function run(opts: Options): Promise<void> {
  const interval = parsePositive(opts.interval, '--interval')!;
  const duration = parsePositive(opts.duration, '--duration');
  const mode = opts.json ? 'json' : opts.plain || !process.stdout.isTTY ? 'plain' : 'screen';
  await runLiveView(openFeed(opts, duration), { mode, interval, group: opts.group, sort: opts.sort, all: !!opts.all });
}
