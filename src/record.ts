/**
 * The droptrace recording format (docs/FORMATS.md): a 16-byte file header,
 * then self-contained blocks, each with a sync word, a type, a length and a
 * CRC32 of its payload. Append-only: after SIGKILL or power loss every block
 * written before the last flush reads back; a torn or corrupted block is
 * skipped and counted, never fatal.
 */
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

export const MAGIC = Buffer.from('DROPTRC\0', 'latin1');
export const FORMAT_VERSION = 1;
export const FILE_HEADER_SIZE = 16;
export const BLOCK_SYNC = 0x4b4c4244; // "DBLK" little-endian
export const BLOCK_HEADER_SIZE = 16;
/** A block larger than this is taken as a corrupted length field. */
export const MAX_BLOCK = 64 << 20;

export const BLOCK = {
  META: 1,
  EVENTS: 2,
  COUNTS: 3,
  SYMBOLS: 4,
  NAMES: 5,
  STACKS: 6,
  STATS: 7,
  END: 8,
} as const;
export type BlockType = (typeof BLOCK)[keyof typeof BLOCK];

/** What a recording says about where it was made. */
export interface RecordingMeta {
  format: number;
  tool: { name: string; version: string };
  host: string;
  kernel: string;
  bootId: string | null;
  /** wall clock at start (ISO) and the offset that turns event timestamps (monotonic ns) into wall ns */
  startTime: string;
  wallOffsetNs: string;
  attach: string;
  target: string;
  filters: string;
  snaplen: number;
  stack: boolean;
  /** --sample N: one event per N drops of each CPU (absent in files from before it existed: 1) */
  sample?: number;
  recordSize: number;
  reasons: Array<[number, string]>;
  reasonSource: string;
}

export interface SymbolEntry {
  address: string;
  name: string | null;
  offset: number | null;
  start: string | null;
  size: number | null;
  module: string | null;
}

export interface StatsBlock {
  delivered: number;
  lost: number;
  mapFull: number;
  seen: number;
  stackFailures: number;
  /** --sample: drops counted but not sent as events (absent before it existed) */
  sampledOut?: number;
  /** drops the kernel skipped the program for (recursion_misses; absent before it existed) */
  missed?: number;
  /** exact in-kernel count at this point */
  exact: number;
  final: boolean;
}

export function encodeBlock(type: BlockType, payload: Buffer): Buffer {
  const h = Buffer.alloc(BLOCK_HEADER_SIZE);
  h.writeUInt32LE(BLOCK_SYNC, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(0, 6);
  h.writeUInt32LE(payload.length, 8);
  h.writeUInt32LE(crc32(payload), 12);
  return Buffer.concat([h, payload]);
}

export function fileHeader(): Buffer {
  const h = Buffer.alloc(FILE_HEADER_SIZE);
  MAGIC.copy(h, 0);
  h.writeUInt16LE(FORMAT_VERSION, 8);
  h.writeUInt16LE(0, 10);
  h.writeUInt32LE(FILE_HEADER_SIZE, 12);
  return h;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8');

/** Appends blocks to a recording; created 0600 (it holds addresses and flows). */
export class RecordingWriter {
  private fd: number;
  bytes = 0;
  private lastSync = Date.now();

  constructor(path: string) {
    this.fd = openSync(path, 'w', 0o600);
    this.write(fileHeader());
  }

  private write(buf: Buffer): void {
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
    this.bytes += buf.length;
  }

  block(type: BlockType, payload: Buffer): void {
    this.write(encodeBlock(type, payload));
  }

  meta(m: RecordingMeta): void {
    this.block(BLOCK.META, json(m));
  }

  /** A batch of raw event records, exactly as the addon delivered them. */
  events(batch: Buffer, recordSize: number): void {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(Math.floor(batch.length / recordSize), 0);
    h.writeUInt32LE(recordSize, 4);
    this.block(BLOCK.EVENTS, Buffer.concat([h, batch]));
  }

  /** Cumulative exact counts (raw dt_count_rec records) read at monotonic time monoNs. */
  counts(monoNs: bigint, raw: Buffer): void {
    const h = Buffer.alloc(8);
    h.writeBigUInt64LE(monoNs, 0);
    this.block(BLOCK.COUNTS, Buffer.concat([h, raw]));
  }

  symbols(entries: SymbolEntry[]): void {
    if (entries.length) this.block(BLOCK.SYMBOLS, json(entries));
  }

  names(n: { interfaces: Array<[number, number, string]>; netns: Array<[number, string]>; pods?: Array<[number, string]> }): void {
    if (n.interfaces.length || n.netns.length || n.pods?.length) this.block(BLOCK.NAMES, json(n));
  }

  stacks(s: Array<[number, string[]]>): void {
    if (s.length) this.block(BLOCK.STACKS, json(s));
  }

  stats(s: StatsBlock): void {
    this.block(BLOCK.STATS, json(s));
  }

  /** fdatasync at most once a second: what was written before it survives power loss. */
  flush(force = false): void {
    if (force || Date.now() - this.lastSync >= 1000) {
      fdatasyncSync(this.fd);
      this.lastSync = Date.now();
    }
  }

  close(): void {
    if (this.fd < 0) return;
    this.block(BLOCK.END, json({}));
    fdatasyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** Thrown for a file that is not a recording we can read at all. */
export class RecordingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordingError';
  }
}

export interface RawBlock {
  type: number;
  offset: number;
  payload: Buffer;
}

export interface ScanResult {
  blocks: RawBlock[];
  /** the file ends inside a block (the recorder was killed, or the copy is partial) */
  truncated: boolean;
  /** the recorder did not write its END block */
  unfinished: boolean;
  /** blocks whose CRC did not match, or bytes skipped to find the next block */
  corrupted: number;
  skippedBytes: number;
}

/** Splits a recording into verified blocks. Never throws on damage past the header. */
export function scanRecording(buf: Buffer): ScanResult {
  if (buf.length < FILE_HEADER_SIZE || !buf.subarray(0, 8).equals(MAGIC)) {
    throw new RecordingError('not a droptrace recording (no DROPTRC header)');
  }
  const version = buf.readUInt16LE(8);
  if (version > FORMAT_VERSION) {
    throw new RecordingError(
      `this recording uses format version ${version}; this droptrace reads version ${FORMAT_VERSION}: upgrade droptrace to read it`,
    );
  }
  const res: ScanResult = { blocks: [], truncated: false, unfinished: true, corrupted: 0, skippedBytes: 0 };
  let pos = buf.readUInt32LE(12) || FILE_HEADER_SIZE;
  let resyncing = false;
  while (pos < buf.length) {
    if (buf.length - pos < BLOCK_HEADER_SIZE) {
      res.truncated = true;
      break;
    }
    if (buf.readUInt32LE(pos) !== BLOCK_SYNC) {
      // damage: look for the next sync word
      if (!resyncing) res.corrupted++;
      resyncing = true;
      const next = buf.indexOf(syncBytes, pos + 1);
      res.skippedBytes += (next < 0 ? buf.length : next) - pos;
      if (next < 0) break;
      pos = next;
      continue;
    }
    const type = buf.readUInt16LE(pos + 4);
    const len = buf.readUInt32LE(pos + 8);
    const crc = buf.readUInt32LE(pos + 12);
    if (len > MAX_BLOCK) {
      res.corrupted++;
      resyncing = true;
      pos += 4;
      continue;
    }
    const end = pos + BLOCK_HEADER_SIZE + len;
    if (end > buf.length) {
      res.truncated = true;
      break;
    }
    const payload = buf.subarray(pos + BLOCK_HEADER_SIZE, end);
    if (crc32(payload) !== crc) {
      if (!resyncing) res.corrupted++;
      resyncing = true;
      pos += 4;
      continue;
    }
    resyncing = false;
    if (type === BLOCK.END) res.unfinished = false;
    res.blocks.push({ type, offset: pos, payload });
    pos = end;
  }
  return res;
}

const syncBytes = (() => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(BLOCK_SYNC, 0);
  return b;
})();

export function readRecordingFile(path: string): ScanResult {
  return scanRecording(readFileSync(path));
}
