/**
 * The consumer behind `droptrace record`: the run's events, counts and
 * statistics into a recording (record.ts), made self-describing as it goes.
 * Each symbol, interface, namespace, pod, socket cgroup and stack is described once, in a
 * block written before the first events that need it, so a file cut short
 * names everything it holds. Under a flood most batches hold nothing new: the addon's reader
 * thread writes those itself (RunControl.writeRecords), and only the others come here.
 *
 * A write that fails (a full disk) stops the run; finish() throws its error.
 */
import { readFileSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { hostname, release } from 'node:os';
import type { CaptureSummary, Consumer, EventBatch, RunControl } from '../capture/run.js';
import type { TracerStats } from '../capture/native.js';
import { decodeCounts, EV, FLAG, ifnameAt, keptSteps, PATH_SIZE, PP, ST, stepAt, stackFrames, totalPackets, u32, type TrapCount } from '../model/decode.js';
import type { CgroupLookup, CgroupOwner } from '../model/drop.js';
import type { SymbolLookup } from '../model/kallsyms.js';
import type { ReasonTable } from '../model/reasons.js';
import { trapRecord } from '../model/traps.js';
import { FORMAT_VERSION, type RecordingWriter, type SymbolEntry } from './record.js';

export interface RecorderOptions {
  syms: SymbolLookup | null;
  reasons: ReasonTable;
  /** names of network namespaces (`ip netns`), by inode */
  netnsName: (inode: number) => string | null;
  /** "namespace/pod" of a network namespace, when it is a pod's */
  podName: (inode: number) => string | null;
  /** the owner of a receiving socket's cgroup (its path, its pod) */
  cgroupOwner?: CgroupLookup;
  /** the filters, as the user would read them */
  filters: string;
  version: string;
  /** stop the run after this many events */
  limit?: number;
  /** write every batch here, none from the reader thread (scripts/bench.mjs compares the two) */
  allInJs?: boolean;
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

/** The reader thread's failed write as Node's own write errors are (code, errno). */
function writeError(errno: number): Error {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`${code}: writing the recording failed`), { code, errno: -errno });
}

export class Recorder implements Consumer {
  readonly events = true;
  /** events written here (the reader thread's: tracer.written()) */
  private jsWritten = 0;
  /** the reader thread writes the batches with nothing new (RunControl.writeRecords) */
  private native = false;
  /** the first write that failed: the run stops, finish() throws it */
  private failure: unknown = null;
  private run: RunControl | null = null;
  private readonly seenLocations = new Set<bigint>();
  /** interfaces seen, by namespace (a namespace in it has been described) */
  private readonly seenIfaces = new Map<number, Set<number>>();
  private readonly seenStacks = new Set<number>();
  private readonly seenCgroups = new Set<number>();
  /** the previous record's location and interface: the common case is a repeat */
  private lastLo = -1;
  private lastHi = -1;
  private lastNs = -1;
  private lastIf = -1;

  constructor(
    readonly writer: RecordingWriter,
    private readonly o: RecorderOptions,
  ) {}

  attached(run: RunControl): void {
    this.run = run;
    const t = run.tracer;
    const c = run.config;
    this.writer.meta({
      format: FORMAT_VERSION,
      tool: { name: 'droptrace', version: this.o.version },
      host: hostname(),
      kernel: release(),
      bootId: bootId(),
      startTime: new Date().toISOString(),
      wallOffsetNs: run.wallOffset.toString(),
      attach: t.path,
      target: t.target,
      filters: this.o.filters,
      snaplen: c.snaplen ?? 0,
      stack: !!c.stack,
      sample: c.sample ?? 1,
      packetPath: c.packetPath,
      recordSize: t.recordSize,
      reasons: this.o.reasons.entries(),
      reasonSubsystems: this.o.reasons.subsystemEntries(),
      reasonSource: this.o.reasons.source,
    });
    this.writer.flush(true);
    this.native = !this.o.allInJs && run.writeRecords(this.writer.descriptor, this.o.limit ?? 0);
  }

  /** Events in the file: written here and by the reader thread. */
  get written(): number {
    return this.jsWritten + (this.native ? this.run!.tracer.written().records : 0);
  }

  /** Bytes in the file. */
  get bytes(): number {
    return this.writer.bytes + (this.native ? this.run!.tracer.written().bytes : 0);
  }

  /**
   * Writes the batch's records as they are; only a location, interface,
   * namespace or stack not seen before is looked at further (a flood repeats
   * them record after record), so a record costs a few reads, not a decode.
   */
  batch(b: EventBatch): void {
    if (this.failure) return;
    try {
      this.describeAndWrite(b);
    } catch (err) {
      this.fail(err);
    }
  }

  private describeAndWrite(b: EventBatch): void {
    const { limit } = this.o;
    // the reader thread writes nothing while a batch is here: written holds still
    const n = limit === undefined ? b.count : Math.min(b.count, limit - this.written);
    if (n <= 0) return;
    const buf = b.buf;
    const symbols: SymbolEntry[] = [];
    const interfaces: Array<[number, number, string]> = [];
    const netns: Array<[number, string]> = [];
    const pods: Array<[number, string]> = [];
    const stacks: Array<[number, string[]]> = [];
    const cgroups: Array<[number, CgroupOwner]> = [];
    const location = (a: bigint) => {
      if (this.seenLocations.has(a)) return;
      this.seenLocations.add(a);
      symbols.push(symbolEntry(this.o.syms, a));
    };
    /** A namespace's interfaces seen so far; its name and pod described the first time. */
    const describeNs = (ns: number): Set<number> => {
      let ifs = this.seenIfaces.get(ns);
      if (!ifs) {
        this.seenIfaces.set(ns, (ifs = new Set()));
        const name = this.o.netnsName(ns);
        if (name) netns.push([ns, name]);
        const pod = this.o.podName(ns);
        if (pod) pods.push([ns, pod]);
      }
      return ifs;
    };
    const named = (a: bigint) => a && location(a);
    for (let i = 0, o = 0; i < n; i++, o += b.stride) {
      const lo = u32(buf, o + EV.location);
      const hi = u32(buf, o + EV.location + 4);
      if (lo !== this.lastLo || hi !== this.lastHi) {
        this.lastLo = lo;
        this.lastHi = hi;
        location((BigInt(hi) << 32n) | BigInt(lo));
      }
      if (buf[o + EV.flags] & FLAG.PATH) {
        // --path: the route's functions, the functions the skb passed and the namespaces it crossed are named too
        const p = o + b.stride - PATH_SIZE;
        named(buf.readBigUInt64LE(p + PP.dst_input));
        named(buf.readBigUInt64LE(p + PP.dst_output));
        for (let j = 0, kept = keptSteps(buf, p); j < kept; j++) {
          const s = stepAt(p, j);
          named(buf.readBigUInt64LE(s + ST.fn));
          describeNs(u32(buf, s + ST.netns));
        }
      }
      const ns = u32(buf, o + EV.netns);
      const ifindex = u32(buf, o + EV.ifindex);
      if (ns !== this.lastNs || ifindex !== this.lastIf) {
        this.lastNs = ns;
        this.lastIf = ifindex;
        const ifs = describeNs(ns);
        if (!ifs.has(ifindex)) {
          ifs.add(ifindex);
          const name = ifnameAt(buf, o);
          if (name) interfaces.push([ns, ifindex, name]);
        }
      }
      if (buf[o + EV.flags] & FLAG.RX_SK) {
        // the receiving socket's cgroup, named once: its path and pod outlive neither on the node
        const cg = Number(buf.readBigUInt64LE(o + EV.sk_cgroup));
        if (cg && !this.seenCgroups.has(cg)) {
          this.seenCgroups.add(cg);
          const owner = this.o.cgroupOwner?.(cg);
          if (owner) cgroups.push([cg, owner]);
        }
      }
      const stackId = buf.readInt32LE(o + EV.stack_id);
      if (stackId >= 0 && !this.seenStacks.has(stackId)) {
        this.seenStacks.add(stackId);
        const addrs: string[] = [];
        for (const a of stackFrames(this.run!.tracer.stack(stackId))) {
          addrs.push(`0x${a.toString(16)}`);
          location(a);
        }
        stacks.push([stackId, addrs]);
      }
    }
    // names first, so that a reader of a cut-short file has them for every event it has
    this.writer.symbols(symbols);
    this.writer.names({ interfaces, netns, pods, cgroups });
    this.writer.stacks(stacks);
    this.writer.events(buf.subarray(0, n * b.stride), b.stride);
    this.jsWritten += n;
    if (limit !== undefined && this.written >= limit) this.run!.stop();
  }

  /** The exact counts and the loss statistics now, synced at most once a second by the writer. */
  tick(): void {
    if (this.failure) return;
    const t = this.run!.tracer;
    try {
      this.checkNative();
      const raw = t.counts();
      this.writer.counts(process.hrtime.bigint(), raw);
      this.writeStats(t.stats(), totalPackets(decodeCounts(raw)), false, t.hardwareTraps ? this.run!.traps() : null);
      this.writer.flush();
    } catch (err) {
      this.fail(err);
    }
  }

  finish(s: CaptureSummary): void {
    if (!this.failure) {
      try {
        this.checkNative();
        this.writer.counts(process.hrtime.bigint(), this.run!.tracer.counts());
        this.writeStats(s.stats, s.exact, true, this.run!.tracer.hardwareTraps ? s.traps : null);
        this.writer.close();
        return;
      } catch (err) {
        this.failure = err;
      }
    }
    this.writer.abandon();
    throw this.failure;
  }

  private checkNative(): void {
    const errno = this.native ? this.run!.tracer.written().errno : 0;
    if (errno) throw writeError(errno);
  }

  private fail(err: unknown): void {
    this.failure ??= err;
    this.run!.stop();
  }

  private writeStats(s: TracerStats, exact: number, final: boolean, traps: TrapCount[] | null): void {
    const t = traps ? { traps: traps.map(trapRecord) } : {};
    this.writer.stats({ delivered: s.delivered, lost: s.lost + s.droppedInProcess, mapFull: s.mapFull, seen: s.seen, stackFailures: s.stackFailures, sampledOut: s.sampledOut, missed: s.missed, exact, final, ...t });
  }
}
