import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { eventRecord } from '../../test/helpers/events.js';
import { Aggregator } from './aggregate.js';
import { decodeEvent, EV } from '../model/decode.js';
import { toRecord } from '../model/drop.js';
import { BatchFolder, type FoldEntry } from './fold.js';
import { makeNaming } from '../model/naming.js';
import { BLOCK } from '../formats/record.js';
import { scanRecording } from '../formats/scan.js';
import { eventSizeOf, loadRecording, RecordedSymbols, recordingReasons, widenRecords } from '../formats/recording.js';

// a real recording (seed scenario, 6.18 VM): 12 drops with --snaplen 64, in format 1, widened as the reader does
const seed = readFileSync(new URL('../../test/fixtures/seed-6.18.dtr', import.meta.url));
const scan = scanRecording(seed);
const rec = loadRecording(seed);
const eventBlocks = scan.blocks.filter((b) => b.type === BLOCK.EVENTS).map((b) => b.payload);
const fileStride = eventBlocks[0].readUInt32LE(4);
const fileRaw = Buffer.concat(eventBlocks.map((p) => p.subarray(8)));
const { buf: raw, stride } = widenRecords(fileRaw, fileRaw.length / fileStride, fileStride, eventSizeOf(seed.readUInt16LE(8)));

type Seen = Array<{ flow: string; count: number; bytes: number; last: number; wallMs: number }>;
function foldAll(folder: BatchFolder, buf: Buffer, st: number, n: number, offMs = 0): Seen[] {
  const calls: Seen[] = [];
  folder.fold(buf, st, n, offMs, (entries: readonly FoldEntry[], wallMsOf) => {
    calls.push(entries.map((e) => ({ flow: `${e.drop.location}|${e.drop.ifname}|${e.drop.saddr}>${e.drop.daddr}:${e.drop.dport}`, count: e.count, bytes: e.bytes, last: e.last, wallMs: wallMsOf(e.last) })));
  });
  return calls;
}

function batchOf(records: Buffer[]): Buffer {
  return Buffer.concat(records);
}

const base = { location: 0xffffffff81000010n, reason: 3, flags: 1 | 2 | 4, ipver: 4, l4: 17, sport: 40000, dport: 9, tcp: 0, ifname: 'lo', ifindex: 1, netns: 4026531840 };

describe('BatchFolder', () => {
  it('folds the real recording into the flow rows that decoding every record gives', () => {
    const syms = new RecordedSymbols(rec.symbols);
    const reasons = recordingReasons(rec.meta);
    const off = BigInt(rec.meta.wallOffsetNs);
    const naming = makeNaming(syms, reasons, rec.netns);
    const n = Math.floor(raw.length / stride);
    expect(n).toBe(12);
    const toRec = (buf: Buffer, i: number, st: number) => toRecord(decodeEvent(buf, i, st), syms, reasons, off);
    // the oracle: every record a batch of its own, where there is nothing to fold
    const slow = new Aggregator(naming);
    for (let i = 0; i < n; i++) slow.addBatch(Buffer.from(raw.subarray(i * stride, (i + 1) * stride)), stride, 1, Number(off / 1_000_000n), toRec);
    const fast = new Aggregator(naming);
    fast.addBatch(Buffer.from(raw), stride, n, Number(off / 1_000_000n), (buf, i, st) => toRecord(decodeEvent(buf, i, st), syms, reasons, off));
    const now = Date.parse(rec.meta.startTime) + 60_000;
    for (const by of ['flow', 'interface', 'location'] as const) {
      const rows = (a: Aggregator) => a.snapshot(now, by, 'rate', 'show').rows.map((r) => [r.key, r.total, r.bytes, r.flows, r.interfaces, r.history.reduce((x, y) => x + y, 0)]);
      expect(rows(fast)).toEqual(rows(slow));
    }
    expect(fast.snapshot(now, 'flow', 'rate', 'show').rows.length).toBeGreaterThan(2);
    expect(fast.snapshot(now).recent.map((r) => r.symbol)).toEqual(slow.snapshot(now).recent.map((r) => r.symbol));
  });

  it('one entry per flow: source ports differ within it; destination port, interface or address make another', () => {
    const recs = [
      eventRecord({ ...base, sport: 40000 }),
      eventRecord({ ...base, sport: 40001 }),
      eventRecord({ ...base, sport: 40002 }),
      eventRecord({ ...base, dport: 10 }),
      eventRecord({ ...base, ifname: 'eth0' }),
    ];
    recs[4].writeUInt32LE(2, EV.ifindex);
    const other = eventRecord(base);
    other[EV.saddr + 3] = 99;
    recs.push(other);
    const folder = new BatchFolder();
    const [calls] = foldAll(folder, batchOf(recs), recs[0].length, recs.length);
    expect(calls.map((c) => [c.flow.replace(/^\d+\|/, ''), c.count, c.bytes, c.last])).toEqual([
      ['lo|10.244.1.2>10.244.1.1:9', 3, 180, 2],
      ['lo|10.244.1.2>10.244.1.1:10', 1, 60, 3],
      ['eth0|10.244.1.2>10.244.1.1:9', 1, 60, 4],
      ['lo|10.244.1.99>10.244.1.1:9', 1, 60, 5],
    ]);
    expect(folder.size).toBe(4);
    // the next batch finds the same entries, counted from zero again
    const [again] = foldAll(folder, batchOf(recs.slice(0, 2)), recs[0].length, 2);
    expect(again.map((c) => c.count)).toEqual([2]);
    expect(folder.size).toBe(4);
  });

  it('reports a batch that spans a second boundary as two segments, each in its own second', () => {
    const recs = [999_000_000n, 999_500_000n, 1_000_000_000n, 1_000_100_000n, 1_000_200_000n].map((tsNs) => eventRecord({ ...base, tsNs }));
    const calls = foldAll(new BatchFolder(), batchOf(recs), recs[0].length, recs.length, 10_000);
    expect(calls.map((c) => c.map((e) => [e.count, e.wallMs]))).toEqual([[[2, 10_999]], [[3, 11_000]]]);
  });

  it('reads a batch that is not 4-byte aligned (through an aligned copy)', () => {
    const recs = [eventRecord(base), eventRecord(base)];
    const odd = Buffer.alloc(recs[0].length * 2 + 1).subarray(1);
    batchOf(recs).copy(odd);
    const [calls] = foldAll(new BatchFolder(), odd, recs[0].length, 2);
    expect(calls.map((c) => c.count)).toEqual([2]);
  });

  it('grows its table past its first size and loses no count (5,000 distinct flows, twice each)', () => {
    const recs: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      const r = eventRecord(base);
      r.writeUInt16BE(i, EV.saddr + 2);
      recs.push(r, r);
    }
    const folder = new BatchFolder();
    const calls = foldAll(folder, batchOf(recs), recs[0].length, recs.length);
    const entries = calls.flat();
    expect(entries).toHaveLength(5000);
    expect(entries.every((e) => e.count === 2)).toBe(true);
    expect(folder.size).toBe(5000);
  });

  it('refuses a record size that is not whole 32-bit words', () => {
    expect(() => new BatchFolder().fold(Buffer.alloc(137), 137, 1, 0, () => {})).toThrow(/32-bit words/);
  });
});
