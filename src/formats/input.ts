/**
 * Reading big inputs a line at a time without holding them: files or
 * stdin, plain or gzip (detected by magic), CRLF tolerated by callers.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
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

/** Yields arrays of lines (newline removed); a last line without newline is kept. */
export async function* lineBatches(path: string): AsyncGenerator<string[]> {
  const dec = new StringDecoder('utf8');
  let rest = '';
  for await (const c of chunks(path)) {
    const text = rest + dec.write(c);
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    if (parts.length) yield parts;
  }
  const tail = rest + dec.end();
  if (tail) yield [tail];
}
