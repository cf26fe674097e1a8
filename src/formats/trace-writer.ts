/**
 * The consumer behind `droptrace trace`: one text or JSON line per drop on a
 * stream, written as bytes into 64 KiB pieces that go round a pool (no
 * string or object per drop: a flood does not grow the heap), with
 * backpressure to the kernel and the exact summary at the end.
 */
import type { CaptureSummary, Consumer, EventBatch, RunControl } from '../capture/run.js';
import { EV } from '../model/decode.js';
import type { SymbolLookup } from '../model/kallsyms.js';
import type { CgroupLookup } from '../model/drop.js';
import type { ReasonTable } from '../model/reasons.js';
import { TrapDeltas, trapPackets, type TrapChange } from '../model/traps.js';
import { WallClock, writeJsonLine, writeTextLine, type PodFields } from './lines.js';
import { ByteSink } from './sink.js';
import { trapJsonLine, trapTextLine } from './trap-lines.js';

export interface TraceWriterOptions {
  json: boolean;
  /** stop the run after this many lines */
  limit?: number;
  syms: SymbolLookup | null;
  reasons: ReasonTable;
  /** a namespace's name or pod, for the steps of a --path */
  netnsName?: (inode: number) => string | null;
  /** the pod of a drop's (netns, ifindex), when pods are looked up */
  podOf: ((netns: number, ifindex: number) => PodFields | null) | null;
  /** who owns a receiving socket's cgroup (its path, its pod) */
  cgroupOwner?: CgroupLookup | null;
  out: NodeJS.WritableStream & { writableNeedDrain?: boolean };
  /** where the closing summary goes */
  err: (line: string) => void;
}

/** The counters every summary gives: what was delivered, lost, skipped, and the kernel's exact count. */
export function lossParts(s: CaptureSummary): string[] {
  const parts = [`${s.stats.delivered} delivered`, `${s.stats.lost + s.stats.droppedInProcess} lost`];
  if (s.stats.sampledOut) parts.push(`${s.stats.sampledOut} counted but not sent (--sample)`);
  parts.push(`the kernel counted ${s.exact} drop${s.exact === 1 ? '' : 's'} for these filters`);
  if (s.stats.missed) parts.push(`${s.stats.missed} not seen at all (the kernel skipped the program while it was already running on that CPU)`);
  if (s.stats.mapFull) parts.push(`${s.stats.mapFull} not counted (count map full: raise --count-entries)`);
  const trapped = trapPackets(s.traps);
  if (trapped) {
    const dropped = trapPackets(s.traps.filter((t) => t.type === 'drop'));
    parts.push(`devices reported ${trapped} packet${trapped === 1 ? '' : 's'} through devlink traps (${dropped} dropped in hardware, ${trapped - dropped} exceptions passed to the stack)`);
  }
  return parts;
}

export function summaryLine(printed: number, s: CaptureSummary): string {
  return `droptrace: ${[`${printed} printed`, ...lossParts(s)].join(', ')}`;
}

export class TraceWriter implements Consumer {
  readonly events = true;
  printed = 0;
  /** a write that failed for another reason than the reader leaving (EPIPE) */
  failure: Error | null = null;
  private run: RunControl | null = null;
  private clock = new WallClock(0n);
  private paused = false;
  /** the output failed (EPIPE: the reader left): nothing more is written, and finish does not wait for a drain */
  private outFailed = false;
  private readonly sink: ByteSink;
  private readonly traps = new TrapDeltas();

  constructor(private readonly o: TraceWriterOptions) {
    // a slow reader must not pile lines up in memory: stop draining the ring, let the kernel count the loss
    this.sink = new ByteSink(65536, (piece, done) => {
      if (this.outFailed) return done();
      if (!o.out.write(piece, () => done()) && !this.paused) {
        this.paused = true;
        this.run?.tracer.pause();
        o.out.once('drain', () => {
          this.paused = false;
          this.run?.tracer.resume();
        });
      }
    });
    // a closed pipe (| head) ends the trace quietly, with its summary; any other failure says why
    o.out.on('error', (err: NodeJS.ErrnoException) => {
      if (this.outFailed) return;
      this.outFailed = true;
      if (err.code !== 'EPIPE') this.failure = new Error(`writing the output failed: ${err.message}`);
      this.run?.stop();
    });
  }

  attached(run: RunControl): void {
    this.run = run;
    this.clock = new WallClock(run.wallOffset);
    this.traps.reset();
  }

  /** The devlink traps whose counts grew this second. */
  tick(now: number): void {
    if (this.run?.tracer.hardwareTraps) this.writeTraps(this.traps.next(this.run.traps()), now);
  }

  private writeTraps(changes: readonly TrapChange[], now: number): void {
    if (this.outFailed || !changes.length) return;
    for (const c of changes) this.sink.text(this.o.json ? trapJsonLine(c, now) : trapTextLine(c, now));
    this.sink.flush();
  }

  // batches keep coming while the run drains the ring at its end: print them all
  batch(b: EventBatch): void {
    if (this.outFailed) return;
    const { limit, podOf, syms, reasons } = this.o;
    const owner = this.o.cgroupOwner ?? null;
    const n = limit === undefined ? b.count : Math.min(b.count, limit - this.printed);
    for (let i = 0; i < n; i++) {
      const at = i * b.stride;
      const pod = podOf ? podOf(b.buf.readUInt32LE(at + EV.netns), b.buf.readUInt32LE(at + EV.ifindex)) : null;
      if (this.o.json) writeJsonLine(this.sink, this.clock, b.buf, i, b.stride, syms, reasons, pod, owner);
      else writeTextLine(this.sink, this.clock, b.buf, i, b.stride, syms, reasons, pod, this.o.netnsName, owner);
    }
    this.printed += Math.max(0, n);
    this.sink.flush();
    if (limit !== undefined && this.printed >= limit) this.run?.stop();
  }

  async finish(s: CaptureSummary): Promise<void> {
    this.writeTraps(this.traps.next(s.traps), Date.now());
    const out = this.o.out;
    await new Promise<void>((resolve) => {
      if (!out.writableNeedDrain || this.outFailed) return resolve();
      out.once('drain', () => resolve());
      out.once('error', () => resolve());
    });
    this.o.err(summaryLine(this.printed, s));
  }
}
