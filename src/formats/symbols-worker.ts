/** The worker of readSymbolTableInWorker(): parse, index the names, hand the arrays back. */
import { parentPort, workerData } from 'node:worker_threads';
import { readSymbolTable } from './symbols.js';

try {
  const parts = readSymbolTable((workerData as { path: string }).path).toParts();
  const ix = parts.index;
  const buffers = [parts.hi, parts.lo, parts.nameAt, parts.nameLen, parts.mod, ix.buckets, ix.at, ix.len, ix.slot].map((a) => a.buffer as ArrayBuffer);
  // the blob may share a pooled buffer: copy it into its own to transfer it
  parts.blob = new Uint8Array(parts.blob);
  parentPort!.postMessage({ parts }, [...new Set(buffers), parts.blob.buffer as ArrayBuffer]);
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  parentPort!.postMessage({ error: { name: e.name, message: e.message, code: e.code } });
}
