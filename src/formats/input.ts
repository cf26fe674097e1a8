/**
 * Reading big inputs a line at a time without holding them: files or
 * stdin, plain or gzip (detected by magic), CRLF tolerated by callers.
 */
import { closeSync, createReadStream, openSync, readFileSync, readSync } from 'node:fs';
import { createGunzip, gunzipSync } from 'node:zlib';
import type { Readable } from 'node:stream';

/** Whole-file read (for symbol tables), gunzipped when it starts with the gzip magic. */
export function readMaybeGzipBuffer(path: string): Buffer {
  const buf = readFileSync(path === '-' ? 0 : path);
  return buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf;
}

/** A stream of the file's bytes, gunzipped when the first chunk carries the gzip magic. */
async function* chunks(path: string): AsyncGenerator<Buffer> {
  const src: Readable = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  if (first.done) return;
  const head: Buffer = first.value;
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    const feed = (async () => {
      gunzip.write(head);
      for (let r = await it.next(); !r.done; r = await it.next()) {
        if (!gunzip.write(r.value)) await new Promise((res) => gunzip.once('drain', res));
      }
      gunzip.end();
    })();
    for await (const c of gunzip) yield c as Buffer;
    await feed;
    return;
  }
  yield head;
  for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
}

/** What the first bytes of an input say about how to read it. */
export interface Sniffed {
  encoding: 'utf8' | 'utf16le' | 'utf16be';
  /** bytes of byte-order mark to skip */
  bom: number;
  /** NUL or control bytes that no text log has: a binary file, read as text anyway */
  binary: boolean;
}

export function sniff(head: Buffer): Sniffed {
  if (head[0] === 0xff && head[1] === 0xfe) return { encoding: 'utf16le', bom: 2, binary: false };
  if (head[0] === 0xfe && head[1] === 0xff) return { encoding: 'utf16be', bom: 2, binary: false };
  const n = Math.min(head.length, 4096);
  let evenNul = 0;
  let oddNul = 0;
  let control = 0;
  for (let i = 0; i < n; i++) {
    const c = head[i];
    if (c === 0) {
      if (i & 1) oddNul++;
      else evenNul++;
    } else if (c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 27 && c !== 3) control++;
  }
  // ASCII text as UTF-16 without a BOM: every other byte is NUL
  if (n >= 8 && oddNul > n * 0.4 && evenNul < n * 0.05) return { encoding: 'utf16le', bom: 0, binary: false };
  if (n >= 8 && evenNul > n * 0.4 && oddNul < n * 0.05) return { encoding: 'utf16be', bom: 0, binary: false };
  return { encoding: 'utf8', bom: head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0, binary: evenNul + oddNul + control > n * 0.01 + 1 };
}

/**
 * Calls line(buf, start, end) for every line of the input (newline not
 * included; a last line without one is kept), reading 1 MiB at a time and
 * making no string: what the caller does with the bytes is its own affair.
 * UTF-16 input is decoded to UTF-8 first. afterChunk lets the caller flush
 * its output between chunks. Returns what sniff() found.
 */
export async function eachLine(path: string, line: (buf: Buffer, start: number, end: number) => void, afterChunk: () => Promise<void> = async () => {}): Promise<Sniffed> {
  if (path !== '-') {
    const plain = await eachLineOfFile(path, line, afterChunk);
    if (plain) return plain;
  }
  let sniffed: Sniffed | null = null;
  let decoder: TextDecoder | null = null;
  let carry: Buffer | null = null;
  const lines = (buf: Buffer) => {
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(10, pos);
      if (nl < 0) break;
      line(buf, pos, nl);
      pos = nl + 1;
    }
    carry = pos < buf.length ? Buffer.from(buf.subarray(pos)) : null;
  };
  for await (const chunk of chunks(path)) {
    let c = chunk;
    if (!sniffed) {
      sniffed = sniff(c);
      c = c.subarray(sniffed.bom);
      if (sniffed.encoding !== 'utf8') decoder = new TextDecoder(sniffed.encoding === 'utf16le' ? 'utf-16le' : 'utf-16be');
    }
    if (decoder) c = Buffer.from(decoder.decode(c, { stream: true }), 'utf8');
    lines(carry ? Buffer.concat([carry, c]) : c);
    await afterChunk();
  }
  if (decoder) {
    const rest = Buffer.from(decoder.decode(), 'utf8');
    if (rest.length) lines(carry ? Buffer.concat([carry, rest]) : rest);
  }
  const last = carry as Buffer | null;
  if (last && last.length) line(last, 0, last.length);
  await afterChunk();
  return sniffed ?? { encoding: 'utf8', bom: 0, binary: false };
}

/**
 * The same for a plain UTF-8 file, through one buffer that is read into again
 * and again: no chunk left behind for the garbage collector (external memory
 * that V8 collects late would otherwise grow RSS by the file's size). Returns
 * null, having read nothing, for gzip or UTF-16, which take the stream path.
 */
async function eachLineOfFile(path: string, line: (buf: Buffer, start: number, end: number) => void, afterChunk: () => Promise<void>): Promise<Sniffed | null> {
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.allocUnsafe(1 << 20);
    let have = readSync(fd, buf, 0, buf.length, null);
    if (have >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return null;
    const sniffed = sniff(buf.subarray(0, have));
    if (sniffed.encoding !== 'utf8') return null;
    let start = sniffed.bom;
    for (;;) {
      let pos = start;
      for (;;) {
        const nl = buf.indexOf(10, pos);
        if (nl < 0 || nl >= have) break;
        line(buf, pos, nl);
        pos = nl + 1;
      }
      // keep the cut line at the front and fill the rest (a line longer than the buffer grows it)
      const rest = have - pos;
      if (rest === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      } else buf.copyWithin(0, pos, have);
      have = rest;
      start = 0;
      await afterChunk();
      const n = readSync(fd, buf, have, buf.length - have, null);
      if (n <= 0) break;
      have += n;
    }
    if (have > 0) line(buf, 0, have);
    await afterChunk();
    return sniffed;
  } finally {
    closeSync(fd);
  }
}
