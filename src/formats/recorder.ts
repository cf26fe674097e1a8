/**
 * The consumer behind `droptrace record`: the run's events, counts and
 * statistics into a recording (record.ts), made self-describing as it goes.
 * Each symbol, interface, namespace, pod and stack is described once, in a
 * block written before the first events that need it, so a file cut short
 * names everything it holds.
 */
import { readFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import type { CaptureSummary, Consumer, EventBatch, RunControl } from '../capture/run.js';
import type { TracerStats } from '../capture/native.js';
import { decodeCounts, totalPackets } from '../model/decode.js';
import type { SymbolLookup } from '../model/kallsyms.js';
import type { ReasonTable } from '../model/reasons.js';
import { type RecordingWriter, type SymbolEntry } from './record.js';

export interface RecorderOptions {
  syms: SymbolLookup | null;
  reasons: ReasonTable;
  /** names of network namespaces (`ip netns`), by inode */
  netnsName: (inode: number) => string | null;
  /** "namespace/pod" of a network namespace, when it is a pod's */
  podName: (inode: number) => string | null;
  /** the filters, as the user would read them */
  filters: string;
  version: string;
  /** stop the run after this many events */
  limit?: number;
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

export class Recorder implements Consumer {
  readonly events = true;
  /** events written */
  written = 0;
  private run: RunControl | null = null;
  private readonly seenLocations = new Set<bigint>();
  private readonly seenIfaces = new Set<string>();
  private readonly seenStacks = new Set<number>();
  private readonly seenNetns = new Set<number>();

  constructor(
    readonly writer: RecordingWriter,
    private readonly o: RecorderOptions,
  ) {}

  attached(run: RunControl): void {
    this.run = run;
    const t = run.tracer;
    const c = run.config;
    this.writer.meta({
      format: 1,
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
      recordSize: t.recordSize,
      reasons: this.o.reasons.entries(),
      reasonSource: this.o.reasons.source,
    });
    this.writer.flush(true);
  }

  batch(b: EventBatch): void {
    const { limit } = this.o;
    const n = limit === undefined ? b.count : Math.min(b.count, limit - this.written);
    if (n <= 0) return;
    const drops = b.drops();
    const symbols: SymbolEntry[] = [];
    const interfaces: Array<[number, number, string]> = [];
    const netns: Array<[number, string]> = [];
    const pods: Array<[number, string]> = [];
    const stacks: Array<[number, string[]]> = [];
    const location = (a: bigint) => {
      if (this.seenLocations.has(a)) return;
      this.seenLocations.add(a);
      symbols.push(symbolEntry(this.o.syms, a));
    };
    for (let i = 0; i < n; i++) {
      const d = drops[i];
      location(d.location);
      const ik = `${d.netns}|${d.ifindex}`;
      if (d.ifname && !this.seenIfaces.has(ik)) {
        this.seenIfaces.add(ik);
        interfaces.push([d.netns, d.ifindex, d.ifname]);
      }
      if (!this.seenNetns.has(d.netns)) {
        this.seenNetns.add(d.netns);
        const name = this.o.netnsName(d.netns);
        if (name) netns.push([d.netns, name]);
        const pod = this.o.podName(d.netns);
        if (pod) pods.push([d.netns, pod]);
      }
      if (d.stackId !== null && !this.seenStacks.has(d.stackId)) {
        this.seenStacks.add(d.stackId);
        const frames = this.run!.tracer.stack(d.stackId);
        const addrs: string[] = [];
        for (let o = 0; o + 8 <= frames.length; o += 8) {
          const a = frames.readBigUInt64LE(o);
          addrs.push(`0x${a.toString(16)}`);
          location(a);
        }
        stacks.push([d.stackId, addrs]);
      }
    }
    // names first, so that a reader of a cut-short file has them for every event it has
    this.writer.symbols(symbols);
    this.writer.names({ interfaces, netns, pods });
    this.writer.stacks(stacks);
    this.writer.events(b.buf.subarray(0, n * b.stride), b.stride);
    this.written += n;
    if (limit !== undefined && this.written >= limit) this.run!.stop();
  }

  /** The exact counts and the loss statistics now, synced at most once a second by the writer. */
  tick(): void {
    const t = this.run!.tracer;
    const raw = t.counts();
    this.writer.counts(process.hrtime.bigint(), raw);
    this.writeStats(t.stats(), totalPackets(decodeCounts(raw)), false);
    this.writer.flush();
  }

  finish(s: CaptureSummary): void {
    this.writer.counts(process.hrtime.bigint(), this.run!.tracer.counts());
    this.writeStats(s.stats, s.exact, true);
    this.writer.close();
  }

  private writeStats(s: TracerStats, exact: number, final: boolean): void {
    this.writer.stats({ delivered: s.delivered, lost: s.lost + s.droppedInProcess, mapFull: s.mapFull, seen: s.seen, stackFailures: s.stackFailures, sampledOut: s.sampledOut, missed: s.missed, exact, final });
  }
}
