/** `droptrace trace`: one line (or JSON object) per drop, then an exact summary. */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { startCapture, type CaptureSummary, type EventBatch } from '../capture/run.js';
import { EV } from '../model/decode.js';
import { monotonicToWallOffset } from '../model/drop.js';
import { WallClock, writeJsonLine, writeTextLine } from '../formats/lines.js';
import { ByteSink } from '../formats/sink.js';
import { describeFilters } from '../capture/filters.js';
import { VethPeers } from '../host/netns.js';
import { netnsNames } from '../host/netns.js';
import { podOfDrop } from '../host/pods.js';
import { addSampleOption, addTraceOptions, parsePositive, prepareTracing, type TraceOptions } from './common.js';

interface Options extends TraceOptions {
  duration?: string;
  count?: string;
  json?: boolean;
  pods: boolean;
}

export function summaryLine(printed: number, s: CaptureSummary): string {
  const lossy = s.stats.lost + s.stats.droppedInProcess;
  const parts = [
    `${printed} printed`,
    `${s.stats.delivered} delivered`,
    `${lossy} lost`,
    ...(s.stats.sampledOut ? [`${s.stats.sampledOut} counted but not sent (--sample)`] : []),
    `the kernel counted ${s.exact} drop${s.exact === 1 ? '' : 's'} for these filters`,
  ];
  if (s.stats.missed) parts.push(`${s.stats.missed} not seen at all (the kernel skipped the program while it was already running on that CPU)`);
  if (s.stats.mapFull) parts.push(`${s.stats.mapFull} not counted (count map full: raise --count-entries)`);
  return `droptrace: ${parts.join(', ')}`;
}

export function traceCommand(): Command {
  const cmd = new Command('trace')
    .description('print every packet drop as it happens: where (function+offset), why (reason), interface, netns, flow')
    .option('-d, --duration <seconds>', 'stop after this many seconds')
    .option('-c, --count <n>', 'stop after printing this many drops')
    .option('--json', 'JSON Lines on stdout, one object per drop (schema in docs/FORMATS.md)')
    .option('--no-pods', 'do not look up the Kubernetes pod of each network namespace');
  addTraceOptions(cmd);
  addSampleOption(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  droptrace trace --port 2483                 # why are connections to 2483 dying?
  droptrace trace --netns pod1 --reason NETFILTER_DROP
  droptrace trace --host 10.244.0.0/16 --json | jq .symbol

At the end (duration, count, Ctrl-C or SIGTERM) a summary on stderr gives the drops
delivered, the events lost, and the exact in-kernel count for the same filters.`,
  );
  cmd.action(async (opts: Options) => run(opts));
  return cmd;
}

async function run(opts: Options): Promise<void> {
  const duration = parsePositive(opts.duration, '--duration');
  const limit = parsePositive(opts.count, '--count');
  const { config, reasons, syms, pods: resolver } = prepareTracing(opts);
  const wallOffset = monotonicToWallOffset();
  const pods = opts.pods ? resolver : null;
  const peers = new VethPeers(netnsNames);

  let printed = 0;
  let paused = false;
  /** stdout failed (EPIPE: the reader left): nothing more is written, and stop() does not wait for a drain */
  let outFailed = false;
  let stopping: Promise<void> | null = null;
  const out = process.stdout;

  // a slow stdout must not pile events up in memory: stop draining, let the kernel count losses
  const emit = (piece: Buffer, done: () => void) => {
    if (outFailed) return done(); // the reader went away: stop() is on its way
    if (!out.write(piece, () => done()) && !paused) {
      paused = true;
      capture.tracer.pause();
      out.once('drain', () => {
        paused = false;
        capture.tracer.resume();
      });
    }
  };
  // lines are written as bytes into 64 KiB pieces that go round a pool: no string or object
  // per drop, so a flood does not grow the heap (strings per line kept RSS at 100-135 MB)
  const sink = new ByteSink(65536, emit);
  const clock = new WallClock(wallOffset);
  const writeLine = opts.json ? writeJsonLine : writeTextLine;

  // Batches keep coming while stop() drains the ring buffer: print them all.
  const onBatch = (b: EventBatch) => {
    if (outFailed) return;
    const n = limit === undefined ? b.count : Math.min(b.count, limit - printed);
    for (let i = 0; i < n; i++) {
      const o = i * b.stride;
      const p = pods ? podOfDrop(pods, peers, b.buf.readUInt32LE(o + EV.netns), b.buf.readUInt32LE(o + EV.ifindex)) : null;
      writeLine(sink, clock, b.buf, i, b.stride, syms, reasons, p);
    }
    printed += Math.max(0, n);
    sink.flush();
    if (limit !== undefined && printed >= limit && !stopping) void stop();
  };

  const capture = startCapture(
    config,
    onBatch,
  );
  const t = capture.tracer;
  process.stderr.write(
    `droptrace: tracing drops via ${t.path} on ${t.target}; filters: ${describeFilters(opts)}; reasons from ${reasons.source}; Ctrl-C to stop\n`,
  );
  if (opts.attach === 'auto' && t.tried) process.stderr.write(`droptrace: better paths unavailable: ${t.tried}\n`);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);

  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const timer = duration ? setTimeout(() => void stop(), duration * 1000) : null;

  function stop(): Promise<void> {
    stopping ??= (async () => {
      if (timer) clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      const summary = await capture.stop();
      await new Promise<void>((r) => {
        if (!out.writableNeedDrain || outFailed) return r();
        out.once('drain', () => r());
        out.once('error', () => r());
      });
      process.stderr.write(summaryLine(printed, summary) + '\n');
      finished();
    })();
    return stopping;
  }
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // a closed pipe (| head) ends the trace quietly, with its summary; any other failure to write says why
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (outFailed) return;
    outFailed = true;
    if (err.code !== 'EPIPE') {
      process.stderr.write(`droptrace: writing the output failed: ${err.message}\n`);
      process.exitCode = 1;
    }
    void stop();
  });
  await done;
}
