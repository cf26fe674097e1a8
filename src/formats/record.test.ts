import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../capture/native.js';
import { BLOCK, BLOCK_HEADER_SIZE, BLOCK_SYNC, encodeBlock, FILE_HEADER_SIZE, fileHeader, FORMAT_VERSION, RecordingWriter, type BlockType } from './record.js';
import { bufferSource, RecordingError, scanRecording } from './scan.js';
import { damageNote, loadRecording, RecordingReader } from './recording.js';
import { buildReport, diffReports, formatReport } from '../analysis/report.js';

const open = (buf: Buffer) => new RecordingReader(bufferSource(buf));

// a real recording of the seed scenario on the 6.18 VM: 3 SYNs dropped by an INPUT rule,
// 5 UDP datagrams to a closed port, 4 IPv6 multicast drops, all on cni0 in netns "fxh"
const file = readFileSync(new URL('../../test/fixtures/seed-6.18.dtr', import.meta.url));

describe('recording format', () => {
  it('frames events blocks as the addon\'s reader thread does (native/addon/record_writer.h)', () => {
    expect(loadAddon().layout().constants.RECORDING).toEqual({ blockSync: BLOCK_SYNC, blockHeaderSize: BLOCK_HEADER_SIZE, eventsBlock: BLOCK.EVENTS });
  });

  it('reads the real recording whole: meta, events, counts, names', () => {
    const scan = scanRecording(file);
    expect(scan).toMatchObject({ truncated: false, unfinished: false, corrupted: 0 });
    const rec = loadRecording(file);
    // written by format 1 (136-byte records): read through the widening
    expect(rec.meta).toMatchObject({ format: 1, kernel: '6.18.44-fc-v657', attach: 'tp_btf', snaplen: 64, stack: true });
    expect(rec.events).toHaveLength(12);
    expect(rec.stats).toMatchObject({ final: true, exact: 12, lost: 0, delivered: 12 });
    expect(rec.netns.get(rec.events[0].netns)).toBe('fxh');
    expect([...rec.symbols.values()].map((s) => s.name)).toEqual(expect.arrayContaining(['nft_do_chain', '__udp4_lib_rcv']));
    expect(rec.stacks.size).toBeGreaterThan(0);
    expect(damageNote(rec)).toBeNull();
  });

  it('says how many events came after the last exact count of a file cut short, and keeps them out of the totals', () => {
    expect(buildReport(open(file), { by: 'reason', all: true }).uncounted).toBe(0);
    // cut before its counts block at 20247: the 1 + 5 events of the two events blocks before it follow the count at 16946
    const cut = buildReport(open(file.subarray(0, 20247)), { by: 'reason', all: true });
    expect(cut.uncounted).toBe(6);
    expect(cut.events).toBe(12);
    expect(cut.total).toBe(6);
    expect(formatReport(cut, 20)).toContain('6 of the events came after the last exact count (written each second), so they are not in these totals');
  });

  it('reports the same counts as the kernel counted, with names from the file', () => {
    const rep = buildReport(open(file), { by: 'reason', all: true });
    expect(Object.fromEntries(rep.rows.map((r) => [r.key, r.count]))).toEqual({ NO_SOCKET: 5, NOT_SPECIFIED: 4, NETFILTER_DROP: 3 });
    expect(rep.total).toBe(12);
    // folded by default: the MLD noise of this real recording is one benign line, still counted
    const folded = buildReport(open(file), { by: 'reason' });
    expect(Object.fromEntries(folded.rows.map((r) => [r.key, r.count]))).toEqual({ NO_SOCKET: 5, NETFILTER_DROP: 3 });
    expect(folded.benign).toMatchObject([{ rule: 'ipv6-multicast-not-joined', total: 4 }]);
    expect(folded.total).toBe(12);
    expect(formatReport(folded, 20)).toMatch(/^4 drops of expected noise on \d+ interfaces? \(--all shows them\): 4 IPv6 multicast to groups nobody/m);
    const byLoc = buildReport(open(file), { by: 'location' });
    expect(byLoc.rows.find((r) => r.key.startsWith('nft_do_chain+0x'))).toMatchObject({ count: 3, interfaces: ['cni0'] });
  });

  it('a quiet node (the lab up, no fault, 150 s unfiltered) has no drop outside the benign classes', () => {
    const rep = buildReport(open(readFileSync(new URL('../../test/fixtures/lab-at-rest-6.18.dtr', import.meta.url))), { by: 'location' });
    expect(rep.rows).toEqual([]);
    expect(rep.total).toBe(72);
    expect(rep.benign.reduce((n, b) => n + b.total, 0)).toBe(72);
    expect(rep.benign.map((b) => b.rule).sort()).toEqual(['ipv6-multicast-not-joined', 'tunnel-multicast-no-target']);
    expect(formatReport(rep, 20)).toContain('no drops besides the expected noise below');
  });

  it('a recording made with --sample N reports flows scaled by N and counts as counted', () => {
    const plain = buildReport(open(file), { by: 'flow', all: true });
    const sampledReader = () => {
      const r = open(file);
      r.tables.meta.sample = 4;
      return r;
    };
    const sampled = buildReport(sampledReader(), { by: 'flow', all: true });
    expect(sampled.rows.map((r) => [r.key, r.count])).toEqual(plain.rows.map((r) => [r.key, r.count * 4]));
    expect(buildReport(sampledReader(), { by: 'reason' }).total).toBe(12);
  });

  it('windows with --since/--until use the exact counts at those times', () => {
    const start = Date.parse(open(file).meta.startTime);
    const all = buildReport(open(file), { by: 'location', since: start, until: start + 60_000 }).total;
    const none = buildReport(open(file), { by: 'location', since: start + 60_000 }).total;
    expect(all).toBe(12);
    expect(none).toBe(0);
  });

  it('survives truncation at every byte offset of its last blocks, and says it was cut short', () => {
    const scan = scanRecording(file);
    const tailStart = scan.blocks[Math.max(0, scan.blocks.length - 4)].offset;
    for (let cut = tailStart; cut < file.length; cut++) {
      const s = scanRecording(file.subarray(0, cut));
      expect(s.unfinished).toBe(true);
      const rec = loadRecording(file.subarray(0, cut));
      expect(damageNote(rec)).toMatch(/cut short/);
      expect(rec.events.length).toBeLessThanOrEqual(12);
    }
  });

  it('skips a corrupted block, counts it, and reads the blocks after it', () => {
    const scan = scanRecording(file);
    const ev = scan.blocks.find((b) => b.type === BLOCK.EVENTS)!;
    const bad = Buffer.from(file);
    bad[ev.offset + BLOCK_HEADER_SIZE + 20] ^= 0xff;
    const s = scanRecording(bad);
    expect(s.corrupted).toBe(1);
    expect(s.unfinished).toBe(false);
    const rec = loadRecording(bad);
    expect(rec.events.length).toBeLessThan(12);
    expect(rec.stats?.final).toBe(true);
    expect(damageNote(rec)).toMatch(/1 damaged place/);
  });

  it('skips garbage between blocks by finding the next sync word', () => {
    const junk = Buffer.concat([fileHeader(), encodeBlock(BLOCK.STATS, Buffer.from('{}')), Buffer.from('garbage!'), encodeBlock(BLOCK.END, Buffer.from('{}'))]);
    const s = scanRecording(junk);
    expect(s.blocks.map((b) => b.type)).toEqual([BLOCK.STATS, BLOCK.END]);
    expect(s.corrupted).toBe(1);
    expect(s.skippedBytes).toBe(8);
  });

  it('refuses a future format version and non-recordings with a clear error', () => {
    const future = Buffer.from(file);
    future.writeUInt16LE(FORMAT_VERSION + 1, 8);
    expect(() => scanRecording(future)).toThrow(new RegExp(`format version ${FORMAT_VERSION + 1}; this droptrace reads version ${FORMAT_VERSION}: upgrade`));
    expect(() => scanRecording(Buffer.from('hello world, not a recording'))).toThrow(RecordingError);
    // a header and nothing else: no META, nothing to read, and it says so
    expect(damageNote(loadRecording(fileHeader()))).toMatch(/META block is unreadable/);
  });
});

/** The seed recording with every block re-encoded (and META written twice, as the recorder does now). */
function rewritten(twoMetas: boolean): { buf: Buffer; offsets: Map<number, number[]> } {
  // the file's own header: its version says how long its records are
  const parts: Buffer[] = [Buffer.from(file.subarray(0, FILE_HEADER_SIZE))];
  const offsets = new Map<number, number[]>();
  let pos = parts[0].length;
  for (const b of scanRecording(file).blocks) {
    for (let k = 0; k < (b.type === BLOCK.META && twoMetas ? 2 : 1); k++) {
      const enc = encodeBlock(b.type as BlockType, b.payload);
      offsets.set(b.type, [...(offsets.get(b.type) ?? []), pos]);
      parts.push(enc);
      pos += enc.length;
    }
  }
  return { buf: Buffer.concat(parts), offsets };
}

describe('damage is said, never fatal where data survives', () => {
  it('a damaged META: the second copy is read and nothing is lost', () => {
    const { buf, offsets } = rewritten(true);
    const bad = Buffer.from(buf);
    bad[offsets.get(BLOCK.META)![0] + BLOCK_HEADER_SIZE + 5] ^= 0x04;
    const r = open(bad);
    expect(r.meta.kernel).toBe('6.18.44-fc-v657');
    const rep = buildReport(r, { by: 'reason', all: true });
    expect(rep.total).toBe(12);
    expect(rep.events).toBe(12);
    expect(damageNote(r.tables)).toMatch(/^1 damaged place/);
  });

  it('a recording with its only META damaged is still read, and says what is unknown', () => {
    const bad = Buffer.from(file);
    const meta = scanRecording(file).blocks.find((b) => b.type === BLOCK.META)!;
    bad[meta.offset + BLOCK_HEADER_SIZE + 5] ^= 0x04;
    const r = open(bad);
    const rep = buildReport(r, { by: 'location', all: true });
    expect(rep.total).toBe(12);
    expect(damageNote(r.tables)).toMatch(/META block is unreadable: host, kernel, filters and reason names are unknown/);
  });

  it('a damaged length field costs one block, not the rest of the file', () => {
    const { buf, offsets } = rewritten(true);
    const bad = Buffer.from(buf);
    const ev = offsets.get(BLOCK.EVENTS)![0];
    bad[ev + 11] ^= 0x01; // the length's top byte: 16 MiB more than the file holds
    const s = scanRecording(bad);
    expect(s.truncated).toBe(false);
    expect(s.unfinished).toBe(false);
    expect(s.corrupted).toBe(1);
    const r = open(bad);
    const rep = buildReport(r, { by: 'location', all: true });
    expect(rep.total).toBe(12);
    expect(rep.events).toBeLessThan(12);
    bad[ev + 8] ^= 0x40; // and a length that still fits in the file, but is wrong
    expect(buildReport(open(bad), { by: 'location', all: true }).total).toBe(12);
  });

  it('every byte of a real recording flipped in turn: no reader crashes, hangs, or reports more than the file holds', () => {
    const { buf } = rewritten(true);
    const truth = { total: 12, events: 12 };
    let readable = 0;
    for (let i = 0; i < buf.length; i++) {
      const bad = Buffer.from(buf);
      bad[i] ^= 1 << (i % 8);
      let r: RecordingReader;
      try {
        r = open(bad);
      } catch (err) {
        // only the 16-byte file header may make a file unreadable, and then with a sentence
        expect(i).toBeLessThan(16);
        expect(err).toBeInstanceOf(RecordingError);
        continue;
      }
      const rep = buildReport(r, { by: 'location', all: true });
      expect(rep.total).toBeLessThanOrEqual(truth.total);
      expect(rep.events).toBeLessThanOrEqual(truth.events);
      if (rep.total === truth.total) readable++;
    }
    // a flip in a block costs that block at most: nearly every variant still has the last counts
    expect(readable / buf.length).toBeGreaterThan(0.9);
  });
});

describe('diff', () => {
  it('classifies appeared, vanished, up, down and same', () => {
    const rep = (rows: Array<[string, number]>, seconds = 10) => ({
      by: 'location' as const,
      from: 0,
      to: seconds * 1000,
      seconds,
      total: rows.reduce((n, r) => n + r[1], 0),
      events: 0,
      rows: rows.map(([key, count]) => ({ key, count, bytes: 0, share: 0, rate: count / seconds, module: null, exact: true, reasons: [], interfaces: [], netns: [], locations: [], flows: [], sockets: [], hint: null, check: null, benign: null })),
      benign: [],
      uncounted: 0,
    });
    const rows = diffReports(rep([['a', 10], ['b', 10], ['c', 10], ['d', 10]]), rep([['b', 50], ['c', 2], ['d', 12], ['e', 7]]));
    expect(Object.fromEntries(rows.map((r) => [r.key, r.change]))).toEqual({ a: 'vanished', b: 'up', c: 'down', d: 'same', e: 'appeared' });
    expect(rows[0].key).toBe('e');
  });
});

describe('RecordingWriter', () => {
  it('syncs in the background on a second descriptor while writing goes on, and leaves none open after close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dt-writer-'));
    try {
      const path = join(dir, 'w.dtr');
      const fd = openSync(path, 'wx', 0o600);
      const w = new RecordingWriter(fd);
      const syncs = () => readdirSync('/proc/self/fd').length;
      const before = syncs();
      w.events(Buffer.alloc(224 * 3), 224);
      // a second old: the next flush starts a background sync on a second descriptor
      (w as unknown as { lastSync: number }).lastSync = 0;
      w.flush();
      expect(syncs()).toBe(before + 1);
      w.events(Buffer.alloc(224 * 2), 224);
      w.close();
      // the second descriptor goes when its sync ends, never before
      await new Promise((r) => setTimeout(r, 200));
      expect(syncs()).toBe(before - 1);
      const items = [...new RecordingReader(bufferSource(readFileSync(path))).items()];
      expect(items.filter((it) => it.kind === 'events').map((it) => (it.kind === 'events' ? it.count : 0))).toEqual([3, 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
