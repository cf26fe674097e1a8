/**
 * A capture session: the tracer plus what is needed to read its output on
 * this machine (symbols, reason names, clock offset). Used by every command
 * that traces live; knows nothing of the terminal or the command line.
 */
import { decodeCounts, decodeEvent, EVENT_SIZE, eventCount, totalPackets, type CountRecord, type RawDrop } from '../model/decode.js';
import { KallsymsError, SymbolTable } from '../model/kallsyms.js';
import { loadAddon, openTracer, type NativeTracer, type TracerConfig, type TracerStats } from './native.js';
import { loadReasons, type ReasonTable } from '../model/reasons.js';

/** Loads this machine's symbols; null plus a warning when they are hidden or unreadable. */
export function loadLocalSymbols(path = '/proc/kallsyms'): { table: SymbolTable | null; warning: string | null } {
  try {
    return { table: SymbolTable.readFile(path), warning: null };
  } catch (err) {
    const msg = err instanceof KallsymsError ? err.message : `cannot read ${path}: ${(err as Error).message}`;
    return { table: null, warning: `${msg}; locations are shown as raw addresses` };
  }
}

/** This kernel's drop-reason names (BTF first, then tracefs). */
export function localReasons(): ReasonTable {
  let pairs: Array<[number, string]> | null = null;
  try {
    pairs = loadAddon().reasons();
  } catch {
    // addon not built: tracefs may still name them
  }
  return loadReasons(pairs);
}

export interface CaptureSummary {
  stats: TracerStats;
  counts: CountRecord[];
  /** exact in-kernel count of drops that passed the filters */
  exact: number;
}

export interface Capture {
  readonly tracer: NativeTracer;
  /** Detaches, delivers what is left, returns the final exact counts. Idempotent. */
  stop(): Promise<CaptureSummary>;
}

/**
 * One batch the addon delivered: count records of stride bytes in buf. Only
 * what a consumer asks for is decoded: drops() once, on demand. buf lives for
 * the callback only (its memory is freed when the callback returns, and a
 * reference kept reads as empty): copy or decode what you keep.
 */
export class EventBatch {
  readonly count: number;
  private decoded: RawDrop[] | null = null;

  constructor(
    readonly buf: Buffer,
    readonly stride: number,
  ) {
    this.count = eventCount(buf, stride);
  }

  drops(): RawDrop[] {
    if (!this.decoded) {
      const d = new Array<RawDrop>(this.count);
      for (let i = 0; i < this.count; i++) d[i] = decodeEvent(this.buf, i, this.stride);
      this.decoded = d;
    }
    return this.decoded;
  }
}

/**
 * Opens a tracer. With onBatch, every batch is handed over as it arrives
 * (one call per batch, never per packet); without it the kernel only counts.
 */
export function startCapture(config: TracerConfig, onBatch?: (batch: EventBatch) => void): Capture {
  const stride = EVENT_SIZE + (config.snaplen ?? 0);
  const onRaw = onBatch ? (buf: Buffer) => onBatch(new EventBatch(buf, stride)) : undefined;
  const tracer = openTracer(config, onRaw);
  let done: Promise<CaptureSummary> | null = null;
  return {
    tracer,
    stop() {
      done ??= tracer.close().then(() => {
        const counts = decodeCounts(tracer.counts());
        return { stats: tracer.stats(), counts, exact: totalPackets(counts) };
      });
      return done;
    },
  };
}
