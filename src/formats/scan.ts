/**
 * Reading a recording's blocks back, whatever happened to the file: a
 * crash mid-block, a cut, a damaged stretch. Blocks are found by their sync
 * word, checked by length, type check and CRC, and what was skipped is
 * counted (ScanDamage), never fatal past the file header. Reads through a
 * ByteSource, so a file of any size is scanned in a window of 4 MiB.
 */
import { fstatSync, openSync, readSync, closeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { BLOCK, BLOCK_HEADER_SIZE, BLOCK_SYNC, FILE_HEADER_SIZE, FORMAT_VERSION, MAGIC, MAX_BLOCK, typeOk } from './record.js';

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

/** What a scan skipped: said by every reader, never fatal past the file header. */
export interface ScanDamage {
  /** the file ends inside a block (the recorder was killed, or the copy is partial) */
  truncated: boolean;
  /** the recorder did not write its END block */
  unfinished: boolean;
  /** damaged places: a block whose CRC did not match, a bad length, bytes between blocks */
  corrupted: number;
  skippedBytes: number;
}

export interface ScanResult extends ScanDamage {
  blocks: RawBlock[];
}

/**
 * Where a recording's bytes come from: a file read a window at a time (a
 * recording of millions of events is never in memory whole), or a buffer.
 */
export interface ByteSource {
  readonly size: number;
  /** len bytes at pos (fewer at the end of the source); valid until the next read */
  read(pos: number, len: number): Buffer;
  close?(): void;
}

export function bufferSource(buf: Buffer): ByteSource {
  return { size: buf.length, read: (pos, len) => buf.subarray(pos, Math.min(buf.length, pos + len)) };
}

const WINDOW = 4 << 20;

/** A file read through one window; a block larger than the window gets a window of its own. */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number;
  private buf = Buffer.alloc(0);
  private start = 0;
  private len = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  read(pos: number, len: number): Buffer {
    const want = Math.min(len, Math.max(0, this.size - pos));
    if (pos >= this.start && pos + want <= this.start + this.len) return this.buf.subarray(pos - this.start, pos - this.start + want);
    const size = Math.max(WINDOW, want);
    if (this.buf.length < size || this.buf.length > 2 * Math.max(WINDOW, size)) this.buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(this.fd, this.buf, got, size - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    this.start = pos;
    this.len = got;
    return this.buf.subarray(0, Math.min(want, got));
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Checks the file header; returns where the first block starts. */
export function checkHeader(src: ByteSource): number {
  const h = src.read(0, FILE_HEADER_SIZE);
  if (h.length < FILE_HEADER_SIZE || !h.subarray(0, 8).equals(MAGIC)) {
    throw new RecordingError('not a droptrace recording (no DROPTRC header)');
  }
  const version = h.readUInt16LE(8);
  if (version > FORMAT_VERSION) {
    throw new RecordingError(
      `this recording uses format version ${version}; this droptrace reads version ${FORMAT_VERSION}: upgrade droptrace to read it`,
    );
  }
  // a damaged header-size field must not hide the blocks: version 1 headers are 16 bytes
  const first = h.readUInt32LE(12);
  return first >= FILE_HEADER_SIZE && first < 4096 ? first : FILE_HEADER_SIZE;
}

/** The format version in the file header (checkHeader has accepted it). */
export function fileVersion(src: ByteSource): number {
  return src.read(0, FILE_HEADER_SIZE).readUInt16LE(8);
}

/** Position of the next sync word at or after pos, or -1. */
function findSync(src: ByteSource, pos: number): number {
  const step = 1 << 20;
  for (let at = pos; at < src.size; at += step - 3) {
    const w = src.read(at, step);
    const i = w.indexOf(syncBytes);
    if (i >= 0) return at + i;
    if (w.length < step) break;
  }
  return -1;
}

/** A whole, verified block at pos, or null. */
function blockAt(src: ByteSource, pos: number): { type: number; len: number } | null {
  const h = src.read(pos, BLOCK_HEADER_SIZE);
  if (h.length < BLOCK_HEADER_SIZE || h.readUInt32LE(0) !== BLOCK_SYNC) return null;
  const type = h.readUInt16LE(4);
  const len = h.readUInt32LE(8);
  const crc = h.readUInt32LE(12);
  if (!typeOk(type, h.readUInt16LE(6)) || len > MAX_BLOCK || pos + BLOCK_HEADER_SIZE + len > src.size) return null;
  return crc32(src.read(pos + BLOCK_HEADER_SIZE, len)) === crc ? { type, len } : null;
}

/**
 * The verified blocks of a recording, in file order. Damage is counted in
 * `damage` and skipped by finding the next sync word whose block checks
 * out; it is never fatal past the file header. A block's payload is valid
 * until the next block is read.
 */
export function* scanBlocks(src: ByteSource, damage: ScanDamage): Generator<RawBlock> {
  let pos = checkHeader(src);
  let resyncing = false;
  const skipTo = (next: number) => {
    if (!resyncing) damage.corrupted++;
    resyncing = true;
    damage.skippedBytes += (next < 0 ? src.size : next) - pos;
    pos = next < 0 ? src.size : next;
  };
  while (pos < src.size) {
    if (src.size - pos < BLOCK_HEADER_SIZE) {
      damage.truncated = true;
      break;
    }
    const h = src.read(pos, BLOCK_HEADER_SIZE);
    if (h.readUInt32LE(0) !== BLOCK_SYNC) {
      skipTo(findSync(src, pos + 1));
      continue;
    }
    const type = h.readUInt16LE(4);
    const len = h.readUInt32LE(8);
    const crc = h.readUInt32LE(12);
    const end = pos + BLOCK_HEADER_SIZE + len;
    if (len > MAX_BLOCK || end > src.size) {
      // a torn last block, or a damaged length: the latter has a whole block after it
      let next = findSync(src, pos + 4);
      while (next >= 0 && !blockAt(src, next)) next = findSync(src, next + 4);
      if (next < 0 && len <= MAX_BLOCK) {
        damage.truncated = true;
        break;
      }
      skipTo(next);
      continue;
    }
    const check = h.readUInt16LE(6);
    const payload = src.read(pos + BLOCK_HEADER_SIZE, len);
    if (crc32(payload) !== crc || !typeOk(type, check)) {
      skipTo(findSync(src, pos + 4));
      continue;
    }
    resyncing = false;
    if (type === BLOCK.END) damage.unfinished = false;
    yield { type, offset: pos, payload };
    pos = end;
  }
}

/** Splits a recording held in memory into verified blocks (small files and tests). */
export function scanRecording(buf: Buffer): ScanResult {
  const res: ScanResult = { blocks: [], truncated: false, unfinished: true, corrupted: 0, skippedBytes: 0 };
  for (const b of scanBlocks(bufferSource(buf), res)) res.blocks.push(b);
  return res;
}

const syncBytes = (() => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(BLOCK_SYNC, 0);
  return b;
})();
