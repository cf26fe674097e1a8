/** `droptrace record`: capture drops into a self-describing, crash-safe file. */
import { readFileSync, writeFileSync, writeSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { droptraceVersion } from './version.js';
import { Command } from 'commander';
import { startCapture } from '../capture/run.js';
import { decodeCounts, totalPackets, type RawDrop } from '../model/decode.js';
import { monotonicToWallOffset } from '../model/drop.js';
import { exportPcapng } from '../formats/export.js';
import { describeFilters, UsageError } from '../capture/filters.js';
import type { SymbolLookup } from '../model/kallsyms.js';
import { netnsNames } from '../host/netns.js';
import { RecordingWriter, type SymbolEntry } from '../formats/record.js';
import { podName } from '../host/pods.js';
import { closeOutput, createOutput, fileError, openRecording } from './files.js';
import { addSampleOption, addTraceOptions, parsePositive, prepareTracing, type TraceOptions } from './common.js';

interface Options extends TraceOptions {
  output: string;
  duration?: string;
  count?: string;
  snaplen?: string;
  stack?: boolean;
  pcapng?: string;
  force?: boolean;
}


function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

function symbolEntry(syms: SymbolLookup | null, addr: bigint): SymbolEntry {
  const r = syms?.lookup(addr) ?? null;
  const ok = r && !r.implausible;
  return {
    address: `0x${addr.toString(16)}`,
    name: ok ? r.name : null,
    offset: ok ? r.offset : null,
    start: ok ? `0x${r.start.toString(16)}` : null,
    size: ok ? r.size : null,
    module: ok ? r.module : null,
  };
}

export function recordCommand(): Command {
  const cmd = new Command('record')
    .description('record drops (events and exact counts) to a file that can be read anywhere, later: report, diff, export, live --replay')
    .requiredOption('-o, --output <file>', 'the recording to write (created with mode 0600)')
    .option('-d, --duration <seconds>', 'stop after this many seconds')
    .option('-c, --count <n>', 'stop after this many events')
    .option('--snaplen <bytes>', 'also capture the first BYTES of each dropped packet (up to 1024), for --pcapng / export')
    .option('--stack', 'also record the kernel stack of each drop')
    .option('--pcapng <file>', 'also write the captured packets as pcapng when recording ends (implies --snaplen 128 unless given)')
    .option('--force', 'replace the output files if they exist (never through a symbolic link)');
  addTraceOptions(cmd);
  addSampleOption(cmd);
  cmd.addHelpText(
    'after',
    `
The file carries everything needed to read it on another machine: the kernel's reason names,
the symbol of every location and stack frame, interface and namespace names, host, kernel and
boot id. It is written in checksummed blocks and synced every second: after a crash or kill
everything up to the last complete block reads back. Format: docs/FORMATS.md.

Examples:
  droptrace record -o before.dtr -d 60 --port 2483
  droptrace record -o drops.dtr --snaplen 256 --pcapng drops.pcapng --iface cni0`,
  );
  cmd.action(async (opts: Options) => run(opts));
  return cmd;
}

async function run(opts: Options): Promise<void> {
  const duration = parsePositive(opts.duration, '--duration');
  const limit = parsePositive(opts.count, '--count');
  let snaplen = opts.snaplen === undefined ? (opts.pcapng ? 128 : 0) : Number(opts.snaplen);
  if (!Number.isInteger(snaplen) || snaplen < 0 || snaplen > 1024) throw new UsageError(`--snaplen ${opts.snaplen}: expected 0..1024 bytes`);
  snaplen = Math.ceil(snaplen / 8) * 8;
  if (opts.output === '-') throw new UsageError('-o -: a recording is written in blocks it syncs to disk; name a file');
  if (opts.pcapng && opts.pcapng === opts.output) throw new UsageError(`--pcapng ${opts.pcapng}: the same file as --output`);
  const { config, reasons, syms, pods } = prepareTracing(opts);
  const wallOffset = monotonicToWallOffset();

  const fd = createOutput(opts.output, { force: opts.force });
  // the pcapng is written at the end: refuse a name that is taken now, not after the capture
  const pcapFd = opts.pcapng ? createOutput(opts.pcapng, { force: opts.force, stdoutOk: true }) : -1;
  const writer = new RecordingWriter(fd);
  const seenLocations = new Set<bigint>();
  const seenIfaces = new Set<string>();
  const seenStacks = new Set<number>();
  const nsNames = netnsNames();
  const seenNetns = new Set<number>();
  let written = 0;
  let stopping: Promise<void> | null = null;

  const onDrops = (drops: RawDrop[], raw: Buffer) => {
    if (stopping && limit !== undefined && written >= limit) return;
    let n = drops.length;
    if (limit !== undefined) n = Math.min(n, limit - written);
    if (n <= 0) return;
    const syEntries: SymbolEntry[] = [];
    const ifaces: Array<[number, number, string]> = [];
    const netns: Array<[number, string]> = [];
    const stacks: Array<[number, string[]]> = [];
    const podsSeen: Array<[number, string]> = [];
    for (let i = 0; i < n; i++) {
      const d = drops[i];
      if (!seenLocations.has(d.location)) {
        seenLocations.add(d.location);
        syEntries.push(symbolEntry(syms, d.location));
      }
      const ik = `${d.netns}|${d.ifindex}`;
      if (d.ifname && !seenIfaces.has(ik)) {
        seenIfaces.add(ik);
        ifaces.push([d.netns, d.ifindex, d.ifname]);
      }
      if (!seenNetns.has(d.netns)) {
        seenNetns.add(d.netns);
        const name = nsNames.get(d.netns);
        if (name) netns.push([d.netns, name]);
        const pod = podName(pods.lookup(d.netns));
        if (pod) podsSeen.push([d.netns, pod]);
      }
      if (d.stackId !== null && !seenStacks.has(d.stackId)) {
        seenStacks.add(d.stackId);
        const frames = capture.tracer.stack(d.stackId);
        const addrs: string[] = [];
        for (let o = 0; o + 8 <= frames.length; o += 8) {
          const a = frames.readBigUInt64LE(o);
          addrs.push(`0x${a.toString(16)}`);
          if (!seenLocations.has(a)) {
            seenLocations.add(a);
            syEntries.push(symbolEntry(syms, a));
          }
        }
        stacks.push([d.stackId, addrs]);
      }
    }
    // names first, so that a reader of a cut-short file has them for every event it has
    writer.symbols(syEntries);
    writer.names({ interfaces: ifaces, netns, pods: podsSeen });
    writer.stacks(stacks);
    writer.events(raw.subarray(0, n * capture.tracer.recordSize), capture.tracer.recordSize);
    written += n;
    if (limit !== undefined && written >= limit) void stop();
  };

  const capture = startCapture(
    { ...config, snaplen, stack: !!opts.stack },
    (b) => onDrops(b.drops(), b.buf),
  );
  const t = capture.tracer;
  writer.meta({
    format: 1,
    tool: { name: 'droptrace', version: droptraceVersion() },
    host: hostname(),
    kernel: release(),
    bootId: bootId(),
    startTime: new Date().toISOString(),
    wallOffsetNs: wallOffset.toString(),
    attach: t.path,
    target: t.target,
    filters: describeFilters(opts),
    snaplen,
    stack: !!opts.stack,
    sample: config.sample ?? 1,
    recordSize: t.recordSize,
    reasons: reasons.entries(),
    reasonSource: reasons.source,
  });
  writer.flush(true);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);
  const started = Date.now();
  const tty = process.stderr.isTTY;
  if (!tty) process.stderr.write(`droptrace: recording drops via ${t.path} to ${opts.output}; filters: ${describeFilters(opts)}\n`);

  const periodic = () => {
    const raw = t.counts();
    writer.counts(process.hrtime.bigint(), raw);
    const s = t.stats();
    const exact = totalPackets(decodeCounts(raw));
    writer.stats({ delivered: s.delivered, lost: s.lost + s.droppedInProcess, mapFull: s.mapFull, seen: s.seen, stackFailures: s.stackFailures, sampledOut: s.sampledOut, missed: s.missed, exact, final: false });
    writer.flush();
    if (tty) {
      const secs = (Date.now() - started) / 1000;
      process.stderr.write(
        `\r\x1b[Kdroptrace: ${secs.toFixed(0)}s  drops ${exact}  ${(exact / Math.max(secs, 0.001)).toFixed(1)}/s  events ${written}  lost ${s.lost + s.droppedInProcess}  ${(writer.bytes / 1024).toFixed(0)} KiB`,
      );
    }
  };
  const timer = setInterval(periodic, 1000);

  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  const durTimer = duration ? setTimeout(() => void stop(), duration * 1000) : null;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      clearInterval(timer);
      if (durTimer) clearTimeout(durTimer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      const summary = await capture.stop();
      writer.counts(process.hrtime.bigint(), t.counts());
      const s = summary.stats;
      writer.stats({ delivered: s.delivered, lost: s.lost + s.droppedInProcess, mapFull: s.mapFull, seen: s.seen, stackFailures: s.stackFailures, sampledOut: s.sampledOut, missed: s.missed, exact: summary.exact, final: true });
      writer.close();
      if (tty) process.stderr.write('\n');
      process.stderr.write(
        `droptrace: recorded ${written} events (${s.delivered} delivered, ${s.lost + s.droppedInProcess} lost; the kernel counted ${summary.exact}) in ${(writer.bytes / 1024).toFixed(1)} KiB to ${opts.output}\n`,
      );
      if (opts.pcapng) {
        try {
          const pc = exportPcapng(openRecording(opts.output), (chunk) => {
            try {
              for (let off = 0; off < chunk.length; ) off += writeSync(pcapFd, chunk, off);
            } catch (err) {
              throw fileError(opts.pcapng!, err, 'write');
            }
          });
          process.stderr.write(`droptrace: wrote ${pc.packets} packets to ${opts.pcapng}\n`);
        } finally {
          closeOutput(pcapFd);
        }
      }
      finished();
    })();
    return stopping;
  }
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await done;
}
