/**
 * The typed face of the native addon (native/addon/). Loads the .node file,
 * explains every path it tried when that fails, and turns native failures
 * into DroptraceError. The config is checked (config.ts) before it crosses into C.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConfig, type TracerConfig } from './config.js';
import { encodeSettings, type SettingsLayout } from './settings.js';

export type Phase = 'open' | 'load' | 'attach' | 'read' | 'privilege' | 'addon';

/** A failure of the kernel side, with what the user can do about it. */
export class DroptraceError extends Error {
  readonly errno: number;
  readonly phase: Phase;
  /** libbpf's own words (the verifier log only with --verbose). */
  readonly log: string;
  /** Attach paths tried before this one failed, "path: why; …". */
  readonly tried: string;
  constructor(message: string, details: { errno?: number; phase?: string; log?: string; tried?: string } = {}) {
    super(message);
    this.name = 'DroptraceError';
    this.errno = details.errno ?? 0;
    this.phase = (details.phase as Phase) ?? 'open';
    this.log = details.log ?? '';
    this.tried = details.tried ?? '';
  }
}

/** Counters of what was seen and what was lost; never hidden. */
export interface TracerStats {
  /** events handed on: to JavaScript, or written to the recording by the reader thread (writeRecords) */
  delivered: number;
  /** ring-buffer reserve failures in the kernel: events that never left it */
  lost: number;
  /** drops not counted because the count map was full */
  mapFull: number;
  /** drops that passed the filters, counted in the kernel */
  seen: number;
  /** batches discarded at process exit before reaching JavaScript */
  droppedInProcess: number;
  /** --stack: stacks the kernel could not store */
  stackFailures: number;
  /** --sample: drops counted but, by choice, not sent as events (delivered + lost + sampledOut == seen) */
  sampledOut: number;
  /**
   * drops the kernel did not run the program for, because it was already running on that CPU
   * (an interrupt's drop while it ran): neither counted nor sent. 0 where the kernel (< 5.12)
   * does not count them.
   */
  missed: number;
  readError: number;
  closed: boolean;
}

export interface NativeTracer {
  readonly path: 'tp_btf' | 'raw_tp' | 'fentry' | 'kprobe';
  readonly target: string;
  readonly tried: string;
  /** packetPath: the path tracepoints attached, comma-separated ("" without) */
  readonly pathTracepoints: string;
  /** packetPath 'functions': the kernel functions hooked, those kprobes refused, how long finding and attaching them took, and with what */
  readonly pathFunctions: { count: number; skipped: number; attachMs: number; via: 'kprobe-multi' | 'kprobe' };
  /** qdisc:qdisc_drop is attached: qdisc drops carry the qdisc's own reason (7.x+) */
  readonly qdiscReasons: boolean;
  /** devlink:devlink_trap_report is attached: hardware and driver drops are counted (traps()) */
  readonly hardwareTraps: boolean;
  /** why hardwareTraps is false on a kernel that has the tracepoint ("" otherwise) */
  readonly hardwareTrapsNote: string;
  /** bytes per record in a batch: sizeof(struct dt_event) + snaplen (+ sizeof(struct dt_pkt_path) with packetPath) */
  readonly recordSize: number;
  /** frames (u64 little-endian) of a kernel stack recorded with `stack`; empty after close() */
  stack(id: number): Buffer;
  counts(): Buffer;
  /** struct dt_trap_rec records: the devlink trap counts (empty without hardwareTraps) */
  traps(): Buffer;
  /** Removes these count keys (24-byte dt_count_key records) from the map; returns their final counts (dt_count_rec). */
  forget(keys: Buffer): Buffer;
  stats(): TracerStats;
  /** Stop draining the ring buffer (a slow consumer): the kernel counts what it then cannot store. */
  pause(): void;
  resume(): void;
  /**
   * From now on the reader thread writes each batch that holds no location, interface, stack,
   * socket cgroup or --path step's function or namespace an earlier batch did not to this recording
   * itself (native/addon/record_writer.c), and JavaScript never sees it; while the events delivered
   * stay within limit (0: none). False when this tracer sends no events.
   */
  writeRecords(fd: number, limit: number): boolean;
  /** What the reader thread wrote to the recording: records, bytes, and the errno of a failed write (0). */
  written(): { records: number; bytes: number; errno: number };
  /** Detach, deliver what is left, snapshot counts; idempotent. */
  close(): Promise<void>;
}

export interface KernelProbe {
  btfError: number;
  btf: boolean;
  tpBtf: boolean;
  tpHasReason: boolean;
  /** the tracepoint also passes the receiving socket (rx_sk, 6.11+) */
  tpHasRxSk: boolean;
  /** qdisc:qdisc_drop (7.x+): a qdisc drop is counted under the qdisc's own reason */
  qdiscDrop: boolean;
  /** devlink:devlink_trap_report (CONFIG_NET_DEVLINK): hardware and driver drops can be counted */
  devlinkTraps: boolean;
  dropFunction: string | null;
  kprobes: boolean;
  consumedReason: number;
  reasonCount: number;
  /** the tracepoints --path follows that this kernel has */
  pathTracepoints: string[];
  /** kprobe-multi links (5.18+, CONFIG_FPROBE); bpf_get_func_ip in kprobes (5.15+) */
  kprobeMulti: boolean;
  kprobeFuncIp: boolean;
}

export interface Layout {
  /** the C constants TypeScript mirrors, by group */
  constants: Record<string, Record<string, number>>;
  eventSize: number;
  event: Record<string, [offset: number, size: number]>;
  countSize: number;
  count: Record<string, [offset: number, size: number]>;
  pathSize: number;
  path: Record<string, [offset: number, size: number]>;
  stepSize: number;
  step: Record<string, [offset: number, size: number]>;
  trapSize: number;
  trap: Record<string, [offset: number, size: number]>;
  flags: Record<string, number>;
}

/** How the addon opens a tracer: the path and map sizes, and the program's settings as struct dt_settings. */
export interface OpenOptions {
  attach: number;
  ringBytes?: number;
  countEntries?: number;
  verbose?: boolean;
  settings: Buffer;
}

interface Addon {
  Tracer: new (options: OpenOptions, onBatch?: (batch: Buffer) => void) => NativeTracer;
  probe(): KernelProbe;
  reasons(): Array<[number, string]> | null;
  /** index and name of enum skb_drop_reason_subsys above CORE (6.5+), or null */
  reasonSubsystems(): Array<[number, string]> | null;
  layout(): Layout;
  /** struct dt_settings as the program's BTF describes it */
  settingsLayout(): SettingsLayout;
  setErrorClass(cls: unknown): void;
}

let addon: Addon | undefined;
let loadedFrom: string | null = null;

/** The .node file loadAddon() loaded, once it has. */
export const addonPath = (): string | null => loadedFrom;

/**
 * Where the .node may be: $DROPTRACE_ADDON, else what node-gyp-build picks in the package root:
 * build/Release (a source build) before prebuilds/<platform>-<arch>/ (the packaged one).
 */
function candidates(tried: string[]): string[] {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  if (process.env.DROPTRACE_ADDON) return [process.env.DROPTRACE_ADDON];
  try {
    const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string };
    return [nodeGypBuild.path(root)];
  } catch (err) {
    tried.push((err as Error).message.trim().replace(/\s*\n\s*/g, '; '));
    return [];
  }
}

/** Loads the addon once; the error lists every path tried and why. */
export function loadAddon(): Addon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const p of candidates(tried)) {
    if (!existsSync(p)) {
      tried.push(`${p}: not found`);
      continue;
    }
    try {
      addon = require(p) as Addon;
      addon.setErrorClass(DroptraceError);
      loadedFrom = p;
      return addon;
    } catch (err) {
      tried.push(`${p}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new DroptraceError(
    'no native addon for this machine: build it from source with `npm run build:native` in the droptrace ' +
      `package directory (needs clang, bpftool, cmake, libelf-dev and a kernel BTF). Tried:\n  ${tried.join('\n  ')}`,
    { phase: 'addon' },
  );
}

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

/** Effective capabilities of this process, from /proc/self/status. */
export function effectiveCaps(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt('0x' + m[1]) : 0n;
}

/** True when these capabilities let us load and attach tracing programs. */
export function canTrace(caps: bigint): boolean {
  const has = (c: bigint) => (caps >> c) & 1n;
  return !!has(CAP_SYS_ADMIN) || (!!has(CAP_BPF) && !!has(CAP_PERFMON));
}

/** Throws the one-sentence privilege error unless this process may trace. */
export function requirePrivileges(): void {
  if (!canTrace(effectiveCaps())) {
    throw new DroptraceError(
      'tracing needs root, or the CAP_BPF and CAP_PERFMON capabilities: run droptrace with sudo',
      { errno: 1, phase: 'privilege' },
    );
  }
}

/**
 * Opens a tracer; onBatch receives batches of fixed-size event records. A
 * batch's Buffer is valid during the call only (the addon detaches it after).
 */
export function openTracer(config: TracerConfig, onBatch?: (batch: Buffer) => void): NativeTracer {
  requirePrivileges();
  const a = loadAddon();
  const c = checkConfig(config);
  const settings = encodeSettings({ ...c, emitEvents: !!onBatch }, settingsLayout());
  return new a.Tracer({ attach: c.attach, ringBytes: c.ringBytes, countEntries: c.countEntries, verbose: c.verbose, settings }, onBatch);
}

let layout: SettingsLayout | undefined;

/** struct dt_settings's layout, read from the program once. */
export function settingsLayout(): SettingsLayout {
  return (layout ??= loadAddon().settingsLayout());
}
