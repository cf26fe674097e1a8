/** Options shared by every command that traces: filters, attach path, sizes. */
import { Command, Option } from 'commander';
import { ATTACH, DEFAULT_GENEVE_PORTS, DEFAULT_VXLAN_PORTS, SLOTS, type AttachMode, type PacketPath, type TracerConfig } from '../capture/config.js';
import { buildFilters, describeFilters, FILTER_FLAGS, UsageError, type FilterOptions } from '../capture/filters.js';
import { loadLocalSymbols, localReasons } from '../capture/local.js';
import { requirePrivileges, type NativeTracer } from '../capture/native.js';
import { CgroupNames } from '../host/cgroups.js';
import { PodResolver } from '../host/pods.js';
import type { SymbolTable } from '../model/kallsyms.js';
import { STEP_KINDS } from '../model/path.js';
import type { ReasonTable } from '../model/reasons.js';

const collect = (value: string, prev: string[] = []) => [...prev, value];

export interface TraceOptions extends FilterOptions {
  sample?: string;
  /** --path (true) or --path KIND */
  path?: boolean | string;
  hotSlots?: string;
  attach: AttachMode;
  verbose?: boolean;
  ringSize: string;
  countEntries: string;
  readyFile?: string;
  nodeRoot: string;
  podLogs: string;
  vxlanPorts: string;
  genevePorts: string;
}

/** ringSize: the default of --ring-size (record takes a larger one: it exists to keep every event). */
export function addTraceOptions(cmd: Command, defaults: { ringSize?: string } = {}): Command {
  for (const f of FILTER_FLAGS) {
    if (f.list) cmd.option(`${f.flag} ${f.arg}`, f.help, collect);
    else cmd.option(`${f.flag} ${f.arg}`, f.help);
  }
  return cmd
    .addOption(
      new Option('--attach <path>', 'how to hook the kernel: auto picks the best that loads and says which; tracepoint is tp_btf, else raw_tp')
        .choices(Object.keys(ATTACH))
        .default('auto'),
    )
    .option('--ring-size <bytes>', 'ring-buffer size for the event stream (power of two, e.g. 8M); it only absorbs the reader being late, JavaScript falling behind is absorbed by the batches queued after it', defaults.ringSize ?? '2M')
    .option('--count-entries <n>', 'distinct (site, reason, interface, netns) keys the exact-count map holds; drops of keys past it are counted as "map full"', '16384')
    .option('-v, --verbose', 'libbpf debug output, including the verifier log on failure')
    .option('--vxlan-ports <list>', `UDP destination ports whose packets are decoded as VXLAN, to show and filter their inner flow (up to ${SLOTS.tunnelPorts})`, DEFAULT_VXLAN_PORTS.join(','))
    .option('--geneve-ports <list>', `UDP destination ports decoded as Geneve (up to ${SLOTS.tunnelPorts})`, DEFAULT_GENEVE_PORTS.join(','))
    .option('--node-root <dir>', "the node's root filesystem, for /proc and pod logs (e.g. /host in a DaemonSet)", '/')
    .option('--pod-logs <dir>', 'the kubelet pod log directory, relative to --node-root or absolute', 'var/log/pods')
    .addOption(new Option('--ready-file <path>', 'write this file once attached (for scripts and tests)').hideHelp())
    .addOption(new Option('--hot-slots <n>', 'per-CPU count slots in front of the hash: 0 to 256 (for tests and benchmarks)').hideHelp());
}

/** --sample, for the commands that stream events (not serve, which only counts). */
export function addSampleOption(cmd: Command): Command {
  return cmd.option(
    '--sample <n>',
    'send one drop in N (per CPU) as an event, decided in the kernel; counts stay exact, flows are scaled by N (for floods the consumer cannot follow)',
  );
}

/** The tracepoints a path's steps come from, as the step kinds name them. */
const PATH_TRACEPOINTS = Object.values(STEP_KINDS)
  .map((k) => k.tracepoint)
  .filter((t) => t.includes(':'))
  .join(', ');

/** --path [functions], for the commands that stream events. */
export function addPathOption(cmd: Command): Command {
  return cmd.option(
    '--path [functions]',
    `show the path of each dropped packet: the devices, qdiscs and route lookups it passed, from tracepoints (${PATH_TRACEPOINTS}), on every kernel; \`--path functions\` adds every kernel function that took the skb (kprobes). While on, every packet on the node runs the path programs: narrow it with --port, --host or --proto (they pick which packets are followed; --netns and --iface only which drops are shown)`,
  );
}

/** --path's value as the tracer's setting. */
function packetPath(v: boolean | string | undefined): PacketPath | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true || v === 'tracepoints') return 'tracepoints';
  if (v === 'functions') return 'functions';
  throw new UsageError(`--path ${v}: expected nothing (tracepoints) or "functions"`);
}

/** "8M", "512k", "4194304" → bytes. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+)([kKmMgG]?)[iI]?[bB]?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag} ${text}: expected a size such as 8M or 4194304`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

export function parsePositive(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} ${text}: expected a positive number`);
  return n;
}

/**
 * The non-filter part of the tracer configuration every tracing command shares:
 * attach path, ring size (validated), wakeup threshold, verbosity.
 */
export function baseTracerConfig(opts: TraceOptions): TracerConfig {
  const ringBytes = parseSize(opts.ringSize, '--ring-size');
  if (ringBytes & (ringBytes - 1) || ringBytes < 4096) throw new UsageError(`--ring-size ${opts.ringSize}: must be a power of two, at least 4k`);
  let sample: number | undefined;
  if (opts.sample !== undefined) {
    sample = Number(opts.sample);
    if (!Number.isInteger(sample) || sample < 1 || sample > 0xffffffff) throw new UsageError(`--sample ${opts.sample}: expected a whole number of drops per event, 1 or more`);
  }
  let hotSlots: number | undefined;
  if (opts.hotSlots !== undefined) {
    hotSlots = Number(opts.hotSlots);
    if (!Number.isInteger(hotSlots) || hotSlots < 0 || hotSlots > SLOTS.hot || (hotSlots & (hotSlots - 1))) throw new UsageError(`--hot-slots ${opts.hotSlots}: 0 or a power of two up to ${SLOTS.hot}`);
  }
  const countEntries = Number(opts.countEntries);
  if (!Number.isInteger(countEntries) || countEntries < 64 || countEntries > 1 << 22) throw new UsageError(`--count-entries ${opts.countEntries}: expected a whole number from 64 to 4194304`);
  const vxlanPorts = parsePorts(opts.vxlanPorts ?? DEFAULT_VXLAN_PORTS.join(','), '--vxlan-ports');
  const genevePorts = parsePorts(opts.genevePorts ?? DEFAULT_GENEVE_PORTS.join(','), '--geneve-ports');
  // wake the reader once 64 KiB are queued (never more than a quarter of the ring)
  return {
    attach: ATTACH[opts.attach], ringBytes, wakeupBytes: Math.min(64 * 1024, ringBytes / 4), verbose: opts.verbose, sample, hotSlots, countEntries, vxlanPorts, genevePorts,
    ...(opts.path !== undefined && opts.path !== false ? { packetPath: packetPath(opts.path) } : {}),
  };
}

/** "4789,8472" → ports; "" or "none" → none (no decoding). At most the program's slots. */
function parsePorts(text: string, flag: string): number[] {
  if (text === '' || text === 'none') return [];
  const ports = text.split(',').map((p) => p.trim());
  for (const p of ports) if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new UsageError(`${flag} ${text}: expected ports 1..65535, comma-separated, or none`);
  if (ports.length > SLOTS.tunnelPorts) throw new UsageError(`${flag} ${text}: at most ${SLOTS.tunnelPorts} ports`);
  return ports.map(Number);
}

/**
 * What every tracing command does first, in this order: validate every
 * option (reason names come from the kernel's BTF, which anyone may read),
 * so a normal user hears about a wrong port before being told to use sudo;
 * then check privileges; then load this machine's symbols (a warning, not
 * an error, when they are hidden).
 */
export function prepareTracing(opts: TraceOptions): { config: TracerConfig; reasons: ReasonTable; syms: SymbolTable | null; pods: PodResolver; cgroups: CgroupNames } {
  const base = baseTracerConfig(opts);
  const reasons = localReasons();
  const filters = buildFilters(opts, reasons);
  requirePrivileges();
  const { table: syms, warning } = loadLocalSymbols();
  if (warning) process.stderr.write(`droptrace: warning: ${warning}\n`);
  const pods = new PodResolver({ root: opts.nodeRoot, podLogs: opts.podLogs });
  return { config: { ...base, ...filters }, reasons, syms, pods, cgroups: new CgroupNames({ root: opts.nodeRoot }) };
}

/** The line that says a capture is attached: how, with which filters, and what it could not use. */
export function attachedLine(doing: string, t: NativeTracer, opts: TraceOptions & FilterOptions, reasons?: ReasonTable): string {
  let line = `droptrace: ${doing} via ${t.path} on ${t.target}; filters: ${describeFilters(opts)}${reasons ? `; reasons from ${reasons.source}` : ''}; Ctrl-C to stop\n`;
  if (opts.attach === 'auto' && t.tried) line += `droptrace: better paths unavailable: ${t.tried}\n`;
  if (t.qdiscReasons) line += 'droptrace: qdisc drops carry the limit the qdisc hit (qdisc:qdisc_drop)\n';
  if (t.hardwareTraps) line += 'droptrace: counting the drops devices report through devlink (devlink:devlink_trap_report)\n';
  else if (t.hardwareTrapsNote) line += `droptrace: devlink traps not counted: ${t.hardwareTrapsNote}\n`;
  if (t.pathTracepoints) line += `droptrace: following packets through ${t.pathTracepoints.split(',').length} tracepoints: ${t.pathTracepoints}\n`;
  const fns = t.pathFunctions;
  if (fns.count) line += `droptrace: and through ${fns.count} kernel functions taking an skb (${fns.via}, attached in ${Math.round(fns.attachMs)} ms${fns.skipped ? `; ${fns.skipped} refused by kprobes` : ''})\n`;
  return line;
}
