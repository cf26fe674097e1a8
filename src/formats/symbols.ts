/**
 * Reading a symbol table from a file (kallsyms, System.map, nm output;
 * plain or gzip) in a worker thread, so that the caller reads its log on
 * the other core meanwhile: parsing 120,000 symbols and indexing their names
 * is a third of symbolize's time on a large log. The arrays come back
 * transferred, not copied. Errors come back as the errors they were.
 */
import { Worker } from 'node:worker_threads';
import { KallsymsError, SymbolTable, type SymbolTableParts } from '../model/kallsyms.js';
import { readMaybeGzipBuffer } from './input.js';

type Reply = { parts: SymbolTableParts } | { error: { name: string; message: string; code?: string } };

export function readSymbolTable(path: string): SymbolTable {
  return SymbolTable.parse(readMaybeGzipBuffer(path));
}

export function readSymbolTableInWorker(path: string): Promise<SymbolTable> {
  if (path === '-') return Promise.resolve().then(() => readSymbolTable(path)); // stdin belongs to this thread
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./symbols-worker.js', import.meta.url), { workerData: { path } });
    worker.once('message', (m: Reply) => {
      void worker.terminate();
      if ('parts' in m) return resolve(SymbolTable.fromParts(m.parts));
      const e = m.error.name === 'KallsymsError' ? new KallsymsError(m.error.message) : Object.assign(new Error(m.error.message), { code: m.error.code });
      reject(e);
    });
    worker.once('error', reject);
  });
}
