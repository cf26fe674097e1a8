/** `droptrace record`: capture drops into a self-describing, crash-safe file. */
import { writeSync } from 'node:fs';
import { Command } from 'commander';
import { describeFilters, UsageError } from '../capture/filters.js';
import { CaptureRun } from '../capture/run.js';
import { exportPcapng } from '../formats/export.js';
import { RecordingWriter } from '../formats/record.js';
import { Recorder } from '../formats/recorder.js';
import { netnsNames } from '../host/netns.js';
import { cgroupOwners } from '../host/cgroups.js';
import { podName } from '../host/pods.js';
import { lossReporter } from '../views/losses.js';
import { recordingProgress } from '../views/progress.js';
import { addPathOption, addSampleOption, addTraceOptions, attachedLine, parsePositive, prepareTracing, type TraceOptions } from './common.js';
import { closeOutput, createOutput, fileError, openRecording } from './files.js';
import { droptraceVersion } from './version.js';

interface Options extends TraceOptions {
  output: string;
  duration?: string;
  count?: string;
  snaplen?: string;
  stack?: boolean;
  pcapng?: string;
  force?: boolean;
}

/** record's ring: a flood at ~500k drops/s fills 2 MiB of 224-byte events in ~18 ms of reader latency */
export const RECORD_RING_SIZE = '8M';

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
  addTraceOptions(cmd, { ringSize: RECORD_RING_SIZE });
  addSampleOption(cmd);
  addPathOption(cmd);
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
  const { config, reasons, syms, pods, cgroups } = prepareTracing(opts);

  const fd = createOutput(opts.output, { force: opts.force });
  // the pcapng is written at the end: refuse a name that is taken now, not after the capture
  const pcapFd = opts.pcapng ? createOutput(opts.pcapng, { force: opts.force, stdoutOk: true }) : -1;
  const names = netnsNames();
  const recorder = new Recorder(new RecordingWriter(fd), {
    syms,
    reasons,
    netnsName: (ino) => names.get(ino) ?? null,
    podName: (ino) => podName(pods.lookup(ino)),
    cgroupOwner: cgroupOwners(cgroups, pods),
    filters: describeFilters(opts),
    version: droptraceVersion(),
    limit,
    // for scripts/bench.mjs's comparison only: JavaScript writes every batch, the reader thread none
    allInJs: process.env.DROPTRACE_RECORD_IN_JS === '1',
  });
  const tty = process.stderr.isTTY;
  const progress = recordingProgress(() => capture, recorder, opts.output, tty);
  const capture = CaptureRun.start({ ...config, snaplen, stack: !!opts.stack }, [recorder, progress, lossReporter(() => capture, (line) => process.stderr.write((tty ? '\r\x1b[K' : '') + line + '\n'))], { duration, readyFile: opts.readyFile });
  if (!tty) process.stderr.write(attachedLine(`recording drops to ${opts.output}`, capture.tracer, opts));
  try {
    await capture.done;
  } catch (err) {
    // the recording's write failed (a full disk): said with the file's name
    throw (err as NodeJS.ErrnoException).code ? fileError(opts.output, err, 'write') : err;
  }

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
}
