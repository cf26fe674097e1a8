/**
 * A recording read back: its blocks decoded into events, exact-count
 * snapshots, and the names that make them readable anywhere (symbols,
 * reasons, interfaces, namespaces, stacks of the machine that recorded).
 * Pure: give it the scanned blocks.
 */
import { decodeCounts, decodeEvent, EVENT_SIZE, EVENT_SIZE_V1, EVENT_SIZE_V2, type CountRecord, type RawDrop } from '../model/decode.js';
import type { CgroupOwner } from '../model/drop.js';
import type { Resolved, SymbolLookup } from '../model/kallsyms.js';
import { BLOCK, type RecordingMeta, type StatsBlock, type SymbolEntry } from './record.js';
import { bufferSource, fileVersion, scanBlocks, type ByteSource, type RawBlock, type ScanDamage } from './scan.js';
import { ReasonTable } from '../model/reasons.js';

export interface CountSnapshot {
  monoNs: bigint;
  /** wall-clock milliseconds */
  time: number;
  records: CountRecord[];
}

/** What a reader skipped or could not read, said by every command that reads recordings. */
export interface RecordingDamage extends ScanDamage {
  /** blocks whose CRC matched but whose content could not be read */
  badBlocks: number;
  /** no META block could be read: host, kernel, filters and reason names are unknown, times count from boot */
  metaMissing?: boolean;
}

/** The names and facts a recording carries besides its events and counts. */
export interface RecordingTables {
  meta: RecordingMeta;
  symbols: Map<bigint, SymbolEntry>;
  interfaces: Array<[number, number, string]>;
  netns: Map<number, string>;
  /** netns inode → "namespace/name" of its Kubernetes pod */
  pods: Map<number, string>;
  /** cgroup v2 id of a receiving socket → its path and pod */
  cgroups: Map<number, CgroupOwner>;
  stacks: Map<number, bigint[]>;
  stats: StatsBlock | null;
  damage: RecordingDamage;
}

/** A namespace of a recording as people know it: its pod, else its name (null: neither was recorded). */
export function recordedNetnsName(t: RecordingTables): (inode: number) => string | null {
  return (inode) => t.pods.get(inode) ?? t.netns.get(inode) ?? null;
}

/** A recording read whole (small files, tests). */
export interface Recording extends RecordingTables {
  events: RawDrop[];
  counts: CountSnapshot[];
}

/**
 * What a stream of blocks yields besides the tables it fills. Events stay
 * raw records (decodeEvent(buf, i, stride) reads one): readers that only
 * count fold them without an object per event.
 */
export type RecordingItem = { kind: 'events'; buf: Buffer; stride: number; count: number } | { kind: 'counts'; snapshot: CountSnapshot };

/** Monotonic ns of record i of a raw batch (ts_ns is the record's first field). */
export function recordNs(buf: Buffer, i: number, stride: number): bigint {
  return buf.readBigUInt64LE(i * stride);
}

/** Stands in for an unreadable META so the counts and events can still be read. */
function unknownMeta(): RecordingMeta {
  return {
    format: 1,
    tool: { name: 'droptrace', version: '?' },
    host: '(unknown: META unreadable)',
    kernel: '?',
    bootId: null,
    startTime: new Date(0).toISOString(),
    wallOffsetNs: '0',
    attach: '?',
    target: '?',
    filters: '?',
    snaplen: 0,
    stack: false,
    recordSize: 0,
    reasons: [],
    reasonSource: 'none',
  };
}

/**
 * Reads a recording block by block, in bounded memory: events (valid until
 * the next item is asked for) and count
 * snapshots are yielded as they come (a block at a time), names and symbols
 * fill `tables`. META is read before anything is yielded; a recording
 * writes it twice, so one damaged copy loses nothing, and without either
 * the rest is still read (damage.metaMissing says what is unknown).
 */
export class RecordingReader {
  readonly tables: RecordingTables;
  private readonly blocks: Generator<RawBlock>;
  private readonly ahead: RawBlock[] = [];
  private wallOffsetNs = 0n;
  /** the file's format version: older formats' records are widened to this droptrace's */
  private readonly version: number;

  constructor(private readonly src: ByteSource) {
    const damage: RecordingDamage = { truncated: false, unfinished: true, corrupted: 0, skippedBytes: 0, badBlocks: 0 };
    this.blocks = scanBlocks(src, damage);
    this.version = fileVersion(src);
    this.tables = { meta: unknownMeta(), symbols: new Map(), interfaces: [], netns: new Map(), pods: new Map(), cgroups: new Map(), stacks: new Map(), stats: null, damage };
    // META comes first; read up to it (names before it are kept, as copies, to be applied in order)
    // (next(), not for-of: leaving a for-of would close the generator)
    for (let r = this.blocks.next(); !r.done; r = this.blocks.next()) {
      const b = r.value;
      if (b.type === BLOCK.META && this.readMeta(b)) return;
      this.ahead.push({ ...b, payload: Buffer.from(b.payload) });
      if (this.ahead.length > 64) break;
    }
    damage.metaMissing = true;
  }

  get meta(): RecordingMeta {
    return this.tables.meta;
  }

  private readMeta(b: RawBlock): boolean {
    try {
      const m = JSON.parse(b.payload.toString('utf8')) as RecordingMeta;
      this.wallOffsetNs = BigInt(m.wallOffsetNs);
      this.tables.meta = m;
      return true;
    } catch {
      this.tables.damage.badBlocks++;
      return false;
    }
  }

  /** Events and count snapshots in file order; names fill `tables` on the way. */
  *items(): Generator<RecordingItem> {
    const all = (function* (ahead: RawBlock[], rest: Generator<RawBlock>) {
      yield* ahead.splice(0);
      yield* rest;
    })(this.ahead, this.blocks);
    for (const b of all) {
      let item: RecordingItem | null = null;
      try {
        item = this.apply(b);
      } catch {
        // a block whose CRC matched but whose content we cannot read
        this.tables.damage.badBlocks++;
      }
      if (item) yield item;
    }
    this.src.close?.();
  }

  private apply(b: RawBlock): RecordingItem | null {
    const t = this.tables;
    const json = <T>() => JSON.parse(b.payload.toString('utf8')) as T;
    switch (b.type) {
      case BLOCK.META:
        // the second copy; a reader that had neither takes what comes
        if (t.damage.metaMissing && this.readMeta(b)) t.damage.metaMissing = false;
        return null;
      case BLOCK.EVENTS: {
        const n = b.payload.readUInt32LE(0);
        const size = b.payload.readUInt32LE(4);
        const fixed = eventSizeOf(this.version);
        if (size < fixed) throw new Error('bad record size');
        // valid until the next item: the source reuses its window (a reader that holds a block copies it)
        const body = b.payload.subarray(8);
        const count = Math.min(n, Math.floor(body.length / size));
        if (fixed < EVENT_SIZE) return { kind: 'events', ...widenRecords(body, count, size, fixed), count };
        return { kind: 'events', buf: body, stride: size, count };
      }
      case BLOCK.COUNTS: {
        const monoNs = b.payload.readBigUInt64LE(0);
        return { kind: 'counts', snapshot: { monoNs, time: Number((monoNs + this.wallOffsetNs) / 1_000_000n), records: decodeCounts(b.payload.subarray(8)) } };
      }
      case BLOCK.SYMBOLS:
        for (const e of json<SymbolEntry[]>()) t.symbols.set(BigInt(e.address), e);
        return null;
      case BLOCK.NAMES: {
        const n = json<{ interfaces: Array<[number, number, string]>; netns: Array<[number, string]>; pods?: Array<[number, string]>; cgroups?: Array<[number, CgroupOwner]> }>();
        for (const x of n.interfaces) t.interfaces.push(x);
        for (const [ino, name] of n.netns) t.netns.set(ino, name);
        for (const [ino, pod] of n.pods ?? []) t.pods.set(ino, pod);
        for (const [id, owner] of n.cgroups ?? []) t.cgroups.set(id, owner);
        return null;
      }
      case BLOCK.STACKS:
        for (const [id, frames] of json<Array<[number, string[]]>>()) t.stacks.set(id, frames.map((f) => BigInt(f)));
        return null;
      case BLOCK.STATS:
        t.stats = json<StatsBlock>();
        return null;
      default:
        // END, or a block type from a newer droptrace
        return null;
    }
  }
}

/** Reads a whole recording into memory: for small files and tests; commands stream. */
export function loadRecording(src: ByteSource | Buffer): Recording {
  const reader = new RecordingReader(Buffer.isBuffer(src) ? bufferSource(src) : src);
  const events: RawDrop[] = [];
  const counts: CountSnapshot[] = [];
  for (const it of reader.items()) {
    if (it.kind === 'events') {
      // kept: a copy of the block, since packet bytes point into it
      const buf = Buffer.from(it.buf);
      for (let i = 0; i < it.count; i++) events.push(decodeEvent(buf, i, it.stride));
    }
    else counts.push(it.snapshot);
  }
  return { ...reader.tables, events, counts };
}

/** Resolves the locations a recording stored; nothing else. */
export class RecordedSymbols implements SymbolLookup {
  constructor(private readonly symbols: Map<bigint, SymbolEntry>) {}
  lookup(addr: bigint): Resolved | null {
    const s = this.symbols.get(addr);
    if (!s || s.name === null || s.offset === null) return null;
    return { name: s.name, offset: s.offset, module: s.module, start: BigInt(s.start ?? addr), size: s.size, implausible: false };
  }
}

export function recordingReasons(meta: RecordingMeta): ReasonTable {
  return new ReasonTable(meta.reasons, 'recording', meta.reasonSubsystems ?? []);
}

/** Wall-clock ms of an event of this recording. */
export function eventTime(meta: RecordingMeta, d: RawDrop): number {
  return Number((d.tsNs + BigInt(meta.wallOffsetNs)) / 1_000_000n);
}

/** One sentence about damage, or null when the file is whole. */
export function damageNote(r: { damage: RecordingDamage }): string | null {
  const d = r.damage;
  const parts: string[] = [];
  if (d.metaMissing) parts.push('its META block is unreadable: host, kernel, filters and reason names are unknown and times count from boot');
  if (d.truncated || d.unfinished) parts.push('the recording was cut short (the recorder did not close it): everything up to the last complete block is shown');
  if (d.corrupted) parts.push(`${d.corrupted} damaged place(s) skipped (${d.skippedBytes} bytes)`);
  if (d.badBlocks) parts.push(`${d.badBlocks} unreadable block(s) skipped`);
  return parts.length ? parts.join('; ') : null;
}

/** sizeof(struct dt_event) in a recording of this format version. */
export function eventSizeOf(version: number): number {
  return version < 2 ? EVENT_SIZE_V1 : version < 3 ? EVENT_SIZE_V2 : EVENT_SIZE;
}

/**
 * Records of an older format (fixed part `size` bytes) as this format's: the fields it lacked
 * zeroed (no tunnel, no receiving socket), what followed its fixed part (packet bytes, path)
 * moved behind them.
 */
export function widenRecords(buf: Buffer, count: number, stride: number, size: number): { buf: Buffer; stride: number } {
  const tail = stride - size;
  const wide = EVENT_SIZE + tail;
  const out = Buffer.alloc(count * wide);
  for (let i = 0; i < count; i++) {
    buf.copy(out, i * wide, i * stride, i * stride + size);
    if (tail > 0) buf.copy(out, i * wide + EVENT_SIZE, i * stride + size, (i + 1) * stride);
  }
  return { buf: out, stride: wide };
}
