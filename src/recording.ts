/**
 * A recording read back: its blocks decoded into events, exact-count
 * snapshots, and the names that make them readable anywhere (symbols,
 * reasons, interfaces, namespaces, stacks of the machine that recorded).
 * Pure: give it the scanned blocks.
 */
import { decodeCounts, decodeEvent, type CountRecord, type RawDrop } from './decode.js';
import type { Resolved, SymbolLookup } from './kallsyms.js';
import { BLOCK, RecordingError, type RecordingMeta, type ScanResult, type StatsBlock, type SymbolEntry } from './record.js';
import { ReasonTable } from './reasons.js';

export interface CountSnapshot {
  monoNs: bigint;
  /** wall-clock milliseconds */
  time: number;
  records: CountRecord[];
}

export interface Recording {
  meta: RecordingMeta;
  events: RawDrop[];
  counts: CountSnapshot[];
  symbols: Map<bigint, SymbolEntry>;
  interfaces: Array<[number, number, string]>;
  netns: Map<number, string>;
  /** netns inode → "namespace/name" of its Kubernetes pod */
  pods: Map<number, string>;
  stacks: Map<number, bigint[]>;
  stats: StatsBlock | null;
  damage: { truncated: boolean; unfinished: boolean; corrupted: number; skippedBytes: number; badBlocks: number };
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

export function loadRecording(scan: ScanResult): Recording {
  let meta: RecordingMeta | null = null;
  const rec: Omit<Recording, 'meta'> = {
    events: [],
    counts: [],
    symbols: new Map(),
    interfaces: [],
    netns: new Map(),
    pods: new Map(),
    stacks: new Map(),
    stats: null,
    damage: { truncated: scan.truncated, unfinished: scan.unfinished, corrupted: scan.corrupted, skippedBytes: scan.skippedBytes, badBlocks: 0 },
  };
  let wallOffsetNs = 0n;
  for (const b of scan.blocks) {
    try {
      switch (b.type) {
        case BLOCK.META:
          meta = JSON.parse(b.payload.toString('utf8')) as RecordingMeta;
          wallOffsetNs = BigInt(meta.wallOffsetNs);
          break;
        case BLOCK.EVENTS: {
          const n = b.payload.readUInt32LE(0);
          const size = b.payload.readUInt32LE(4);
          const body = b.payload.subarray(8);
          for (let i = 0; i < n && (i + 1) * size <= body.length; i++) rec.events.push(decodeEvent(body, i, size));
          break;
        }
        case BLOCK.COUNTS: {
          const monoNs = b.payload.readBigUInt64LE(0);
          rec.counts.push({ monoNs, time: Number((monoNs + wallOffsetNs) / 1_000_000n), records: decodeCounts(b.payload.subarray(8)) });
          break;
        }
        case BLOCK.SYMBOLS:
          for (const s of JSON.parse(b.payload.toString('utf8')) as SymbolEntry[]) rec.symbols.set(BigInt(s.address), s);
          break;
        case BLOCK.NAMES: {
          const n = JSON.parse(b.payload.toString('utf8')) as { interfaces: Array<[number, number, string]>; netns: Array<[number, string]>; pods?: Array<[number, string]> };
          rec.interfaces.push(...n.interfaces);
          for (const [ino, name] of n.netns) rec.netns.set(ino, name);
          for (const [ino, pod] of n.pods ?? []) rec.pods.set(ino, pod);
          break;
        }
        case BLOCK.STACKS:
          for (const [id, frames] of JSON.parse(b.payload.toString('utf8')) as Array<[number, string[]]>) rec.stacks.set(id, frames.map((f) => BigInt(f)));
          break;
        case BLOCK.STATS:
          rec.stats = JSON.parse(b.payload.toString('utf8')) as StatsBlock;
          break;
        default:
          // a block type from a newer droptrace: skip it
          break;
      }
    } catch {
      // a block whose CRC matched but whose content we cannot read
      rec.damage.badBlocks++;
    }
  }
  if (!meta) throw new RecordingError('the recording has no readable META block: it was cut short before recording started');
  return { meta, ...rec };
}

export function recordingReasons(meta: RecordingMeta): ReasonTable {
  return new ReasonTable(meta.reasons, 'recording');
}

/** Wall-clock ms of an event of this recording. */
export function eventTime(meta: RecordingMeta, d: RawDrop): number {
  return Number((d.tsNs + BigInt(meta.wallOffsetNs)) / 1_000_000n);
}

/** One sentence about damage, or null when the file is whole. */
export function damageNote(r: Recording): string | null {
  const parts: string[] = [];
  if (r.damage.truncated || r.damage.unfinished) parts.push('the recording was cut short (the recorder did not close it): everything up to the last complete block is shown');
  if (r.damage.corrupted) parts.push(`${r.damage.corrupted} corrupted block(s) skipped (${r.damage.skippedBytes} bytes)`);
  if (r.damage.badBlocks) parts.push(`${r.damage.badBlocks} unreadable block(s) skipped`);
  return parts.length ? parts.join('; ') : null;
}
