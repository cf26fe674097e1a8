#!/usr/bin/env node
// How the readers of a recording scale: builds a recording of N events (default 10 million, about
// 1.4 GB at 136 bytes an event) from the real records of test/fixtures/seed-6.18.dtr, one flood
// site with exact counts every 500,000 events, then times report, diff (against itself), export
// and live --replay --plain on it, each as its own process under /usr/bin/time: wall seconds,
// MB/s, peak RSS. Checks that report's total is N. No root needed.
// Usage: node scripts/bench-recordings.mjs [EVENTS] [DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (m) => import(join(ROOT, 'dist', m));
const { BLOCK, RecordingWriter } = await dist('formats/record.js');
const { scanRecording } = await dist('formats/scan.js');
const { loadRecording } = await dist('formats/recording.js');
const { EV } = await dist('model/decode.js');

const N = Number(process.argv[2] ?? 10_000_000);
const dir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'droptrace-bench-rec-'));
const seed = readFileSync(join(ROOT, 'test/fixtures/seed-6.18.dtr'));
const rec = loadRecording(seed);
const scan = scanRecording(seed);
const first = scan.blocks.find((b) => b.type === BLOCK.EVENTS).payload;
const size = first.readUInt32LE(4);
const one = first.subarray(8, 8 + size);

const file = join(dir, 'big.dtr');
const fd = openSync(file, 'w', 0o600);
const w = new RecordingWriter(fd);
w.meta({ ...rec.meta, startTime: new Date(0).toISOString(), wallOffsetNs: '0', snaplen: rec.meta.snaplen });
for (const b of scan.blocks) if (b.type === BLOCK.SYMBOLS || b.type === BLOCK.NAMES) w.block(b.type, b.payload);
const BATCH = 65536;
const batch = Buffer.alloc(BATCH * size);
const counts = Buffer.alloc(40);
one.copy(counts, 0, EV.location, EV.location + 8);
counts.writeUInt32LE(one.readUInt32LE(EV.reason), 8);
counts.writeUInt32LE(one.readUInt32LE(EV.ifindex), 12);
counts.writeUInt32LE(one.readUInt32LE(EV.netns), 16);
const t0 = Date.now();
for (let done = 0; done < N; ) {
  const n = Math.min(BATCH, N - done);
  for (let i = 0; i < n; i++) {
    one.copy(batch, i * size);
    // 2 µs apart (a 500k/s flood) from 1 s after boot; source ports vary as a flood's do
    batch.writeBigUInt64LE(1_000_000_000n + BigInt(done + i) * 2000n, i * size + EV.ts_ns);
    batch.writeUInt16LE(1024 + ((done + i) % 60000), i * size + EV.sport);
  }
  w.events(batch.subarray(0, n * size), size);
  done += n;
  if (done % 524288 < BATCH || done === N) {
    counts.writeBigUInt64LE(BigInt(done), 24);
    counts.writeBigUInt64LE(BigInt(done) * 60n, 32);
    w.counts(1_000_000_000n + BigInt(done) * 2000n, counts);
  }
}
w.stats({ delivered: N, lost: 0, mapFull: 0, seen: N, stackFailures: 0, exact: N, final: true });
w.close();
const bytes = statSync(file).size;
console.log(`built ${file}: ${N} events, ${(bytes / 1e6).toFixed(0)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s (${process.versions.node}, ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()})`);

const bin = join(ROOT, 'bin', 'droptrace.js');
const runs = [
  ['report', ['report', file, '--json']],
  ['diff A A', ['diff', file, file, '--json']],
  ['export', ['export', file, '--pcapng', join(dir, 'big.pcapng'), '--force']],
  ['live --replay --plain', ['live', '--replay', file, '--plain', '--speed', '1000000', '--interval', '0.05']],
];
console.log('| reader | wall s | MB/s | peak RSS MB | check |');
console.log('|---|---|---|---|---|');
for (const [name, args] of runs) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const [wall, kb] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  let check = `exit ${r.status}`;
  if (name === 'report' && r.status === 0) check = JSON.parse(r.stdout).report.total === N ? `total ${N}: ok` : 'WRONG TOTAL';
  const mb = (bytes * (name === 'diff A A' ? 2 : 1)) / 1e6;
  console.log(`| ${name} | ${wall.toFixed(1)} | ${(mb / wall).toFixed(0)} | ${(kb / 1024).toFixed(0)} | ${check} |`);
}
if (!process.argv[3]) rmSync(dir, { recursive: true, force: true });
else closeSync(openSync(join(dir, '.done'), 'w'));
