/**
 * The droptrace recording format (docs/FORMATS.md): a 16-byte file header,
 * then self-contained blocks, each with a sync word, a type, a length and a
 * CRC32 of its payload. Append-only: after SIGKILL or power loss every block
 * written before the last flush reads back; a torn or corrupted block is
 * skipped and counted, never fatal.
 */
import { closeSync, fdatasync, fdatasyncSync, openSync, writevSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { CgroupOwner } from '../model/drop.js';
import type { TrapRecord } from '../model/decode.js';

export const MAGIC = Buffer.from('DROPTRC\0', 'latin1');
/**
 * 3: events are 224-byte records (the receiving socket after the 184 bytes of format 2, which
 * added the inner flow of tunnelled packets to the 136 of format 1); readers widen older
 * records (recording.ts widenRecords).
 */
export const FORMAT_VERSION = 3;
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
  /** --path: each record ends with its packet's path, from the tracepoints or also the functions (absent without --path) */
  packetPath?: 'tracepoints' | 'functions';
  recordSize: number;
  reasons: Array<[number, string]>;
  /** index and name of the kernel's reason subsystems (absent in older recordings) */
  reasonSubsystems?: Array<[number, string]>;
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
  /** devlink trap counts since the start, where the tracer counted them (absent otherwise, and before it existed) */
  traps?: TrapRecord[];
}

/** The 16-byte header of a block whose payload is `parts` back to back (the CRC runs over them in turn). */
function blockHeader(type: BlockType, parts: readonly Buffer[]): Buffer {
  let len = 0;
  let crc = 0;
  for (const p of parts) {
    len += p.length;
    crc = crc32(p, crc);
  }
  const h = Buffer.alloc(BLOCK_HEADER_SIZE);
  h.writeUInt32LE(BLOCK_SYNC, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(typeCheck(type), 6);
  h.writeUInt32LE(len, 8);
  h.writeUInt32LE(crc, 12);
  return h;
}

export function encodeBlock(type: BlockType, payload: Buffer): Buffer {
  return Buffer.concat([blockHeader(type, [payload]), payload]);
}

/**
 * The CRC covers the payload only, so a flipped bit in the type would read
 * counts as events: the header's spare field carries the type's complement.
 * Files from before it have 0 there, which is taken as "not checked".
 */
function typeCheck(type: number): number {
  return ~type & 0xffff;
}

export function typeOk(type: number, check: number): boolean {
  return check === 0 || check === typeCheck(type);
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

/** Appends blocks to a recording: an fd the caller created (0600: it holds addresses and flows). */
export class RecordingWriter {
  bytes = 0;
  private lastSync = Date.now();
  /** a second descriptor of the file, for syncs off the event loop; -1 until the first */
  private syncFd = -1;
  private syncing = false;
  private closed = false;

  constructor(private fd: number) {
    this.write([fileHeader()]);
  }

  /** The recording's descriptor, for the addon's reader thread (NativeTracer.writeRecords). */
  get descriptor(): number {
    return this.fd;
  }

  /**
   * In one writev where the kernel takes it all (it does, but for a full disk or an error):
   * the addon's reader thread writes events blocks to the same file, and a regular file's
   * write holds the inode lock, so its blocks and these never interleave.
   */
  private write(parts: Buffer[]): void {
    let left = parts;
    for (;;) {
      let n = writevSync(this.fd, left);
      this.bytes += n;
      while (left.length && n >= left[0].length) {
        n -= left[0].length;
        left = left.slice(1);
      }
      if (!left.length) return;
      left = [left[0].subarray(n), ...left.slice(1)];
    }
  }

  /** A block of one or more payload parts, written as they are: a batch of events is not copied. */
  block(type: BlockType, ...parts: Buffer[]): void {
    this.write([blockHeader(type, parts), ...parts]);
  }

  /** Written twice: a reader that finds one copy damaged reads the other. */
  meta(m: RecordingMeta): void {
    const payload = json(m);
    this.block(BLOCK.META, payload);
    this.block(BLOCK.META, payload);
  }

  /** A batch of raw event records, exactly as the addon delivered them. */
  events(batch: Buffer, recordSize: number): void {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(Math.floor(batch.length / recordSize), 0);
    h.writeUInt32LE(recordSize, 4);
    this.block(BLOCK.EVENTS, h, batch);
  }

  /** Cumulative exact counts (raw dt_count_rec records) read at monotonic time monoNs. */
  counts(monoNs: bigint, raw: Buffer): void {
    const h = Buffer.alloc(8);
    h.writeBigUInt64LE(monoNs, 0);
    this.block(BLOCK.COUNTS, h, raw);
  }

  symbols(entries: SymbolEntry[]): void {
    if (entries.length) this.block(BLOCK.SYMBOLS, json(entries));
  }

  names(n: { interfaces: Array<[number, number, string]>; netns: Array<[number, string]>; pods?: Array<[number, string]>; cgroups?: Array<[number, CgroupOwner]> }): void {
    if (n.interfaces.length || n.netns.length || n.pods?.length || n.cgroups?.length) this.block(BLOCK.NAMES, json(n));
  }

  stacks(s: Array<[number, string[]]>): void {
    if (s.length) this.block(BLOCK.STACKS, json(s));
  }

  stats(s: StatsBlock): void {
    this.block(BLOCK.STATS, json(s));
  }

  /**
   * fdatasync at most once a second: what was written before it survives power loss. Forced,
   * it waits; otherwise it runs on libuv's thread pool while the reader goes on draining the
   * ring (a sync of a second's flood takes tens of milliseconds, which a blocked reader pays
   * in lost events). It goes through a second descriptor of the file, so that close() never
   * closes one a sync is still using.
   */
  flush(force = false): void {
    if (force) {
      fdatasyncSync(this.fd);
      this.lastSync = Date.now();
      return;
    }
    if (this.syncing || Date.now() - this.lastSync < 1000) return;
    if (this.syncFd < 0) this.syncFd = openSync(`/proc/self/fd/${this.fd}`, 'r');
    this.syncing = true;
    this.lastSync = Date.now();
    fdatasync(this.syncFd, () => {
      // a failed background sync is retried by the next one; close() syncs and reports
      this.syncing = false;
      if (this.closed) this.closeSyncFd();
    });
  }

  close(): void {
    if (this.fd < 0) return;
    this.block(BLOCK.END, json({}));
    fdatasyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    this.closed = true;
    if (!this.syncing) this.closeSyncFd();
  }

  /** After a failed write: closes the file without the end block, which would fail the same way. */
  abandon(): void {
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      // the write's error is the one to say
    }
    this.fd = -1;
    this.closed = true;
    if (!this.syncing) this.closeSyncFd();
  }

  private closeSyncFd(): void {
    if (this.syncFd >= 0) closeSync(this.syncFd);
    this.syncFd = -1;
  }
}
