/** `droptrace live`: a top for packet drops (blessed), or dropwatch-style lines with --plain. */
import { writeFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { Command, Option } from 'commander';
import { GROUPS, SORTS, type GroupBy, type SortBy } from '../aggregate.js';
import { localReasons, loadLocalSymbols } from '../capture.js';
import { buildFilters, describeFilters, parseFilterArgs, UsageError } from '../filters.js';
import { ATTACH, requirePrivileges, type TracerConfig } from '../native.js';
import { makeNaming, netnsNames } from '../naming.js';
import { formatPlain, intervalDrops } from '../plain.js';
import { LiveSession } from '../session.js';
import { LiveScreen } from '../ui/screen.js';
import { addTraceOptions, parsePositive, parseSize, type TraceOptions } from './common.js';

interface Options extends TraceOptions {
  interval: string;
  plain?: boolean;
  json?: boolean;
  events: boolean;
  group: GroupBy;
  sort: SortBy;
  duration?: string;
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
    .option('-d, --duration <seconds>', 'stop after this many seconds');
  addTraceOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Keys: ↑↓/j k select, Enter details, Esc back, g grouping, s sort, p pause (counting goes on),
c clear, f edit filters, ? help, q or Ctrl-C quit. NO_COLOR is honoured.

Examples:
  droptrace live                               # everything, grouped by drop site
  droptrace live --group reason --iface cni0
  droptrace live --plain --interval 1 | tee drops.log     # dropwatch-style, readable by symbolize`,
  );
  cmd.action(async (opts: Options) => run(opts));
  return cmd;
}

function baseConfig(opts: Options, wakeupBytes: number): TracerConfig {
  const ringBytes = parseSize(opts.ringSize, '--ring-size');
  if (ringBytes & (ringBytes - 1) || ringBytes < 4096) throw new UsageError(`--ring-size ${opts.ringSize}: must be a power of two, at least 4k`);
  return { attach: ATTACH[opts.attach], ringBytes, wakeupBytes, verbose: opts.verbose };
}

async function run(opts: Options): Promise<void> {
  const interval = parsePositive(opts.interval, '--interval')!;
  const duration = parsePositive(opts.duration, '--duration');
  const mode = opts.json ? 'json' : opts.plain || !process.stdout.isTTY ? 'plain' : 'screen';
  requirePrivileges();
  const reasons = localReasons();
  let filterText = describeFilters(opts);
  const filters = buildFilters(opts, reasons);
  const { table: syms, warning } = loadLocalSymbols();
  if (warning) process.stderr.write(`droptrace: warning: ${warning}\n`);
  let nsNames = netnsNames();
  const naming = makeNaming(syms, reasons, nsNames);
  const session = new LiveSession({ ...baseConfig(opts, 64 * 1024), ...filters }, naming, syms, reasons, opts.events);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);

  let screen: LiveScreen | null = null;
  let timer: NodeJS.Timeout | null = null;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  let stopping = false;
  let prev = new Map<string, number>();

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (timer) clearInterval(timer);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    try {
      const final = await session.stop();
      if (mode === 'plain') emitPlain(final.counts);
      screen?.destroy();
      const st = session.stats();
      process.stderr.write(`droptrace: ${final.exact} drops counted in the kernel, ${st.delivered} events delivered, ${st.lost} lost\n`);
    } finally {
      screen?.destroy();
      finished();
    }
  };

  const emitPlain = (counts: import('../decode.js').CountRecord[]) => {
    const { lines, next } = intervalDrops(prev, counts);
    prev = next;
    if (!lines.length) return;
    const text = lines.map((l) => formatPlain(l, naming, session.agg.interfaceName(l.netns, l.ifindex), reasons.size > 0)).join('\n');
    process.stdout.write(text + '\n');
  };

  const tick = () => {
    const now = Date.now();
    const counts = session.sample(now);
    if (mode === 'plain') emitPlain(counts);
    else if (mode === 'json') {
      const snap = session.agg.snapshot(now, opts.group, opts.sort);
      const st = session.stats();
      const { recent: _recent, ...rest } = snap;
      process.stdout.write(JSON.stringify({ ...rest, delivered: st.delivered, lost: st.lost, filters: filterText }) + '\n');
    } else screen?.refresh();
  };

  if (mode === 'screen') {
    const header = () => {
      const st = session.stats();
      return { host: hostname(), kernel: release(), attach: `${session.tracer.path}`, filters: filterText, delivered: st.delivered, lost: st.lost, source: 'kernel' };
    };
    screen = new LiveScreen(
      {
        header,
        snapshot: (g, s) => session.agg.snapshot(Date.now(), g, s),
        clear: () => session.agg.clear(Date.now()),
        quit: () => void stop(),
        setFilters: async (text) => {
          try {
            const f = parseFilterArgs(text);
            const cfg = buildFilters(f, reasons);
            await session.restart(cfg);
            filterText = describeFilters(f);
            nsNames = netnsNames();
            return null;
          } catch (err) {
            return (err as Error).message;
          }
        },
      },
      { group: opts.group, sort: opts.sort, noColor: 'NO_COLOR' in process.env },
    );
    // whatever happens, give the terminal back
    process.once('exit', () => screen?.destroy());
  } else {
    process.stderr.write(`droptrace: counting drops via ${session.tracer.path} on ${session.tracer.target}; filters: ${filterText}; every ${interval}s\n`);
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
