/**
 * One capture run: the tracer from attach to the final exact counts, and the
 * consumers it feeds. The run owns everything every tracing command needs
 * the same way: attaching, the ready file, SIGINT/SIGTERM, --duration, a
 * periodic tick, stopping exactly once, draining what the ring still holds,
 * and a restart with new filters (live's `f` key). A consumer implements
 * the few calls it cares for; a command picks consumers and prints.
 */
import { writeFileSync } from 'node:fs';
import { decodeCounts, decodeTraps, EVENT_SIZE, eventCount, totalPackets, type CountRecord, type TrapCount } from '../model/decode.js';
import { openTracer, type NativeTracer, type TracerStats } from './native.js';
import { FILTER_KEYS, type TracerConfig } from './config.js';

/**
 * One batch the addon delivered: `count` event records of `stride` bytes in buf, read
 * in place by every consumer (model/decode.ts says where each field is).
 * buf lives for the call only (its memory is freed when the call returns,
 * and a reference kept reads as empty): copy what you keep.
 */
export class EventBatch {
  readonly count: number;

  constructor(
    readonly buf: Buffer,
    readonly stride: number,
  ) {
    this.count = eventCount(buf, stride);
  }
}

export interface CaptureSummary {
  /** this tracer's counters, plus those of the tracers a restart replaced */
  stats: TracerStats;
  counts: CountRecord[];
  /** exact in-kernel count of drops that passed the filters (since the last restart) */
  exact: number;
  /** hardware and driver drops devices reported through devlink (empty where not attached) */
  traps: TrapCount[];
}

/** What a consumer may use of the run. */
export interface RunControl {
  readonly tracer: NativeTracer;
  readonly config: Readonly<TracerConfig>;
  /** ns to add to an event's BPF timestamp (CLOCK_MONOTONIC) for wall time */
  readonly wallOffset: bigint;
  /** The exact devlink trap counts since the tracer attached (empty where not attached). */
  traps(): TrapCount[];
  /**
   * Lets the addon's reader thread write the batches with nothing new in them to this recording
   * (NativeTracer.writeRecords); only where one consumer takes the events, since no other would see
   * those batches. True when it does.
   */
  writeRecords(fd: number, limit: number): boolean;
  /** Ends the run as Ctrl-C would; safe to call any number of times. */
  stop(): void;
}

export interface Consumer {
  /** Wants the event stream. When no consumer does, the kernel only counts. */
  readonly events: boolean;
  /** The tracer is attached: at the start, and again after a restart. */
  attached?(run: RunControl): void;
  /** A batch of raw event records, valid during the call only. */
  batch?(b: EventBatch): void;
  /** Every tickMs while the run lasts (counts, progress, metrics). */
  tick?(now: number): void;
  /** The tracer is detached and drained; called in the order consumers were given. */
  finish?(summary: CaptureSummary): void | Promise<void>;
}

export interface RunOptions {
  /** seconds, then stop */
  duration?: number;
  /** written with the pid once attached (for scripts and tests) */
  readyFile?: string;
  /** period of Consumer.tick, ms (default 1000) */
  tickMs?: number;
  /** stop on SIGINT/SIGTERM (default true) */
  signals?: boolean;
}

/** Offset from the BPF clock (CLOCK_MONOTONIC) to wall time, in ns; measured once per run. */
export function monotonicToWallOffset(): bigint {
  return BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
}

/**
 * When something that runs until told ends: after --duration, on SIGINT or
 * SIGTERM, or when stop() is called; onStop runs once. A capture run has
 * one; so has a replay, which is not a capture but ends the same ways.
 */
export class Lifetime {
  private ended = false;
  private readonly timer: NodeJS.Timeout | null;
  private readonly onSignal = () => this.stop();

  constructor(
    opts: { duration?: number; signals?: boolean },
    private readonly onStop: () => void,
  ) {
    this.timer = opts.duration ? setTimeout(this.onSignal, opts.duration * 1000) : null;
    if (opts.signals !== false) {
      process.on('SIGINT', this.onSignal);
      process.on('SIGTERM', this.onSignal);
    }
  }

  stop(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    this.onStop();
  }
}

const ZERO: TracerStats = { delivered: 0, lost: 0, mapFull: 0, seen: 0, droppedInProcess: 0, stackFailures: 0, sampledOut: 0, missed: 0, readError: 0, closed: false };

function addStats(a: TracerStats, b: TracerStats): TracerStats {
  const out = { ...b };
  for (const k of Object.keys(ZERO) as Array<keyof TracerStats>) if (k !== 'closed') (out[k] as number) = (a[k] as number) + (b[k] as number);
  return out;
}

export class CaptureRun implements RunControl {
  readonly wallOffset = monotonicToWallOffset();
  /** resolves once stopped and every consumer has finished */
  readonly done: Promise<CaptureSummary>;
  private current!: NativeTracer;
  private cfg: TracerConfig;
  /** counters of tracers a restart replaced */
  private carried: TracerStats = ZERO;
  /** settles once the consumers have finished; its outcome is in done, so it never rejects */
  private stopping: Promise<void> | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private lifetime: Lifetime | null = null;
  private resolveDone!: (s: CaptureSummary) => void;
  private rejectDone!: (e: unknown) => void;

  private constructor(
    config: TracerConfig,
    private readonly consumers: readonly Consumer[],
  ) {
    this.cfg = config;
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
  }

  /** Attaches and starts feeding the consumers. */
  static start(config: TracerConfig, consumers: readonly Consumer[], opts: RunOptions = {}): CaptureRun {
    const run = new CaptureRun(config, consumers);
    run.open();
    if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);
    if (consumers.some((c) => c.tick)) {
      run.ticker = setInterval(() => {
        const now = Date.now();
        for (const c of consumers) c.tick?.(now);
      }, opts.tickMs ?? 1000);
    }
    run.lifetime = new Lifetime(opts, () => run.finish());
    return run;
  }

  get tracer(): NativeTracer {
    return this.current;
  }

  get config(): Readonly<TracerConfig> {
    return this.cfg;
  }

  private open(): void {
    const withEvents = this.consumers.filter((c) => c.events && c.batch);
    // the addon's own record size: sizeof(struct dt_event) + snaplen (+ the path with packetPath)
    let stride = EVENT_SIZE + (this.cfg.snaplen ?? 0);
    const onBatch = withEvents.length
      ? (buf: Buffer) => {
          const b = new EventBatch(buf, stride);
          for (const c of withEvents) c.batch!(b);
        }
      : undefined;
    this.current = openTracer(this.cfg, onBatch);
    stride = this.current.recordSize;
    for (const c of this.consumers) c.attached?.(this);
  }

  /** The exact cumulative counts the kernel holds now. */
  counts(): CountRecord[] {
    return decodeCounts(this.current.counts());
  }

  traps(): TrapCount[] {
    return decodeTraps(this.current.traps());
  }

  /** Counters over the whole run, restarts included. */
  stats(): TracerStats {
    return addStats(this.carried, this.current.stats());
  }

  /**
   * Reloads the program with other filters (everything else as it was);
   * counting restarts from zero. When the kernel refuses the new program the
   * run goes on as before and the error is thrown.
   */
  async restart(filters: Partial<TracerConfig>): Promise<void> {
    if (this.stopping) return;
    const base: TracerConfig = { ...this.cfg };
    for (const k of FILTER_KEYS) delete base[k];
    const previous = this.cfg;
    await this.current.close();
    this.carried = addStats(this.carried, this.current.stats());
    this.cfg = { ...base, ...filters };
    try {
      this.open();
    } catch (err) {
      this.cfg = previous;
      this.open();
      throw err;
    }
  }

  writeRecords(fd: number, limit: number): boolean {
    return this.consumers.filter((c) => c.events && c.batch).length === 1 && this.current.writeRecords(fd, limit);
  }

  stop(): void {
    if (this.lifetime) this.lifetime.stop();
    else this.finish();
  }

  private finish(): void {
    this.stopping ??= (async () => {
      if (this.ticker) clearInterval(this.ticker);
      // batches keep arriving while close() drains the ring: consumers still get them
      await this.current.close();
      const counts = decodeCounts(this.current.counts());
      const summary: CaptureSummary = { stats: this.stats(), counts, exact: totalPackets(counts), traps: this.traps() };
      for (const c of this.consumers) await c.finish?.(summary);
      return summary;
    })().then(this.resolveDone, this.rejectDone);
  }
}
