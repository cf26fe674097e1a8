#!/usr/bin/env node
// Micro-benchmark of the userspace path alone: decode + symbolize + aggregate of event batches,
// as `live` (aggregate straight from the batch) and `trace` (lines as bytes) do per batch, in events/s on one core. Input: the events of a real recording
// (test/fixtures/seed-6.18.dtr) replicated into 4096-record batches 2 µs apart, resolved against the
// recording's own symbols. Baseline in the same run: a loop that only reads each record's
// location (the least any consumer must do). Usage: node scripts/bench-userspace.mjs [EVENTS]
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (m) => import(join(ROOT, 'dist', m));
const { BLOCK } = await dist('formats/record.js');
const { scanRecording } = await dist('formats/scan.js');
const { eventSizeOf, loadRecording, RecordedSymbols, recordingReasons, widenRecords } = await dist('formats/recording.js');
const { decodeEvent, eventCount } = await dist('model/decode.js');
const { toRecord } = await dist('model/drop.js');
const { WallClock, writeJsonLine, writeTextLine } = await dist('formats/lines.js');
const { ByteSink } = await dist('formats/sink.js');
const { Aggregator } = await dist('analysis/aggregate.js');
const { makeNaming } = await dist('model/naming.js');
const { Recorder } = await dist('formats/recorder.js');
const { RecordingWriter: Writer } = await dist('formats/record.js');
const { EventBatch } = await dist('capture/run.js');
import { openSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';

const N = Number(process.argv[2] ?? 2_000_000);
const file = readFileSync(join(ROOT, 'test/fixtures/seed-6.18.dtr'));
const scan = scanRecording(file);
const rec = loadRecording(file);
const evBlock = scan.blocks.find((b) => b.type === BLOCK.EVENTS);
const fileSize = evBlock.payload.readUInt32LE(4);
// the seed is an older format: its records widened to today's, as the reader does
const { buf: one, stride: size } = widenRecords(evBlock.payload.subarray(8), evBlock.payload.readUInt32LE(0), fileSize, eventSizeOf(file.readUInt16LE(8)));
const per = Math.floor(one.length / size);
const BATCH = 4096;
const batch = Buffer.alloc(BATCH * size);
for (let i = 0; i < BATCH; i++) {
  one.copy(batch, i * size, (i % per) * size, ((i % per) + 1) * size);
  // the recording's 12 drops span 2 s; space them as a 500k/s flood would (2 µs apart)
  batch.writeBigUInt64LE(5_000_000_000n + BigInt(i) * 2000n, i * size);
}
// a flood: one drop (the recording's first) repeated, 2 µs apart
const flood = Buffer.alloc(BATCH * size);
for (let i = 0; i < BATCH; i++) {
  one.copy(flood, i * size, 0, size);
  flood.writeBigUInt64LE(5_000_000_000n + BigInt(i) * 2000n, i * size);
}
const batches = Math.ceil(N / BATCH);
const syms = new RecordedSymbols(rec.symbols);
const reasons = recordingReasons(rec.meta);
const off = BigInt(rec.meta.wallOffsetNs);

function time(name, fn) {
  fn(Math.min(batches, 20)); // warm up the JIT
  const t0 = process.hrtime.bigint();
  fn(batches);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, eventsPerSec: (batches * BATCH) / s };
}

const results = [];
results.push(
  time('baseline: read location only', (n) => {
    let x = 0n;
    for (let b = 0; b < n; b++) for (let i = 0; i < BATCH; i++) x ^= batch.readBigUInt64LE(i * size + 8);
    return x;
  }),
);
results.push(
  time('decode', (n) => {
    for (let b = 0; b < n; b++) for (let i = 0, c = eventCount(batch, size); i < c; i++) decodeEvent(batch, i, size);
  }),
);
results.push(
  time('decode + symbolize (toRecord)', (n) => {
    for (let b = 0; b < n; b++) for (let i = 0, c = eventCount(batch, size); i < c; i++) toRecord(decodeEvent(batch, i, size), syms, reasons, off);
  }),
);
const agg2 = new Aggregator(makeNaming(syms, reasons, rec.netns));
const offMs = Number(off / 1_000_000n);
results.push(
  time('aggregate straight from the batch (live)', (n) => {
    for (let b = 0; b < n; b++) {
      const c = eventCount(batch, size);
      agg2.addBatch(batch, size, c, offMs, (buf, i, st) => toRecord(decodeEvent(buf, i, st), syms, reasons, off));
    }
  }),
);
// trace: a line per drop into 64 KiB pieces; the pieces are counted, not written anywhere
const lines = (write, input = batch) => (n) => {
  let len = 0;
  const sink = new ByteSink(65536, (piece, done) => ((len += piece.length), done()));
  const clock = new WallClock(off);
  for (let b = 0; b < n; b++) {
    for (let i = 0, c = eventCount(input, size); i < c; i++) write(sink, clock, input, i, size, syms, reasons, null);
    sink.flush();
  }
  return len;
};
results.push(time('JSON line as bytes (trace --json)', lines(writeJsonLine)));
results.push(time('JSON line as bytes, one flow (a flood)', lines(writeJsonLine, flood)));
results.push(time('text line as bytes (trace)', lines(writeTextLine)));
results.push(
  time('JSON line through objects (JSON.stringify)', (n) => {
    let len = 0;
    for (let b = 0; b < n; b++) for (let i = 0, c = eventCount(batch, size); i < c; i++) len += JSON.stringify(toRecord(decodeEvent(batch, i, size), syms, reasons, off)).length;
    return len;
  }),
);
// record: the batch as a recording's blocks (CRC and write included) into a file in memory
// (/dev/shm) so a disk does not set the figure, as JavaScript writes it (a batch that brings
// something new: this run declines writeRecords, so every batch here); the run a recorder is
// attached to is only what it asks of one
const recFile = join(existsSync('/dev/shm') ? '/dev/shm' : ROOT, `bench-userspace-${process.pid}.dtr`);
process.on('exit', () => rmSync(recFile, { force: true }));
const recorder = new Recorder(new Writer(openSync(recFile, 'w')), {
  syms,
  reasons,
  netnsName: () => null,
  podName: () => null,
  filters: 'none',
  version: 'bench',
});
recorder.attached({ tracer: { path: 'tp_btf', target: 'skb:kfree_skb', recordSize: size, stack: () => Buffer.alloc(0) }, config: { attach: 0 }, wallOffset: off, writeRecords: () => false, stop() {} });
results.push(
  time('record: the batch into a recording (record)', (n) => {
    for (let b = 0; b < n; b++) recorder.batch(new EventBatch(batch, size));
  }),
);
const base = results[0].eventsPerSec;
if (process.argv.includes('--json')) console.log(JSON.stringify({ events: batches * BATCH, results }, null, 2));
else {
  console.log(`${batches * BATCH} events in ${BATCH}-record batches of ${size} bytes (real events of seed-6.18.dtr), one core`);
  for (const r of results) console.log(`${r.name.padEnd(46)} ${(r.eventsPerSec / 1e6).toFixed(2).padStart(6)} M events/s  (${(r.eventsPerSec / base).toFixed(3)} of baseline)`);
}
