import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BLOCK, BLOCK_HEADER_SIZE, encodeBlock, fileHeader, FORMAT_VERSION, RecordingError, scanRecording } from './record.js';
import { damageNote, loadRecording } from './recording.js';
import { buildReport, diffReports, formatReport } from './report.js';

// a real recording of the seed scenario on the 6.18 VM: 3 SYNs dropped by an INPUT rule,
// 5 UDP datagrams to a closed port, 4 IPv6 multicast drops, all on cni0 in netns "fxh"
const file = readFileSync(new URL('../test/fixtures/seed-6.18.dtr', import.meta.url));

describe('recording format', () => {
  it('reads the real recording whole: meta, events, counts, names', () => {
    const scan = scanRecording(file);
    expect(scan).toMatchObject({ truncated: false, unfinished: false, corrupted: 0 });
    const rec = loadRecording(scan);
    expect(rec.meta).toMatchObject({ format: FORMAT_VERSION, kernel: '6.18.44-fc-v657', attach: 'tp_btf', snaplen: 64, stack: true });
    expect(rec.events).toHaveLength(12);
    expect(rec.stats).toMatchObject({ final: true, exact: 12, lost: 0, delivered: 12 });
    expect(rec.netns.get(rec.events[0].netns)).toBe('fxh');
    expect([...rec.symbols.values()].map((s) => s.name)).toEqual(expect.arrayContaining(['nft_do_chain', '__udp4_lib_rcv']));
    expect(rec.stacks.size).toBeGreaterThan(0);
    expect(damageNote(rec)).toBeNull();
  });

  it('reports the same counts as the kernel counted, with names from the file', () => {
    const rep = buildReport(loadRecording(scanRecording(file)), { by: 'reason', all: true });
    expect(Object.fromEntries(rep.rows.map((r) => [r.key, r.count]))).toEqual({ NO_SOCKET: 5, NOT_SPECIFIED: 4, NETFILTER_DROP: 3 });
    expect(rep.total).toBe(12);
    // folded by default: the MLD noise of this real recording is one benign line, still counted
    const folded = buildReport(loadRecording(scanRecording(file)), { by: 'reason' });
    expect(Object.fromEntries(folded.rows.map((r) => [r.key, r.count]))).toEqual({ NO_SOCKET: 5, NETFILTER_DROP: 3 });
    expect(folded.benign).toMatchObject([{ rule: 'ipv6-multicast-not-joined', total: 4 }]);
    expect(folded.total).toBe(12);
    expect(formatReport(folded, 20)).toMatch(/^4 drops of expected noise on \d+ interfaces? \(--all shows them\): 4 IPv6 multicast to groups nobody/m);
    const byLoc = buildReport(loadRecording(scanRecording(file)), { by: 'location' });
    expect(byLoc.rows.find((r) => r.key.startsWith('nft_do_chain+0x'))).toMatchObject({ count: 3, interfaces: ['cni0'] });
  });

  it('a quiet node (the lab up, no fault, 150 s unfiltered) has no drop outside the benign classes', () => {
    const rest = loadRecording(scanRecording(readFileSync(new URL('../test/fixtures/lab-at-rest-6.18.dtr', import.meta.url))));
    const rep = buildReport(rest, { by: 'location' });
    expect(rep.rows).toEqual([]);
    expect(rep.total).toBe(72);
    expect(rep.benign.reduce((n, b) => n + b.total, 0)).toBe(72);
    expect(rep.benign.map((b) => b.rule).sort()).toEqual(['ipv6-multicast-not-joined', 'tunnel-multicast-no-target']);
    expect(formatReport(rep, 20)).toContain('no drops besides the expected noise below');
  });

  it('a recording made with --sample N reports flows scaled by N and counts as counted', () => {
    const rec = loadRecording(scanRecording(file));
    const plain = buildReport(rec, { by: 'flow' });
    rec.meta.sample = 4;
    const sampled = buildReport(rec, { by: 'flow' });
    expect(sampled.rows.map((r) => [r.key, r.count])).toEqual(plain.rows.map((r) => [r.key, r.count * 4]));
    expect(buildReport(rec, { by: 'reason' }).total).toBe(12);
  });

  it('windows with --since/--until use the exact counts at those times', () => {
    const rec = loadRecording(scanRecording(file));
    const start = Date.parse(rec.meta.startTime);
    const all = buildReport(rec, { by: 'location', since: start, until: start + 60_000 }).total;
    const none = buildReport(rec, { by: 'location', since: start + 60_000 }).total;
    expect(all).toBe(12);
    expect(none).toBe(0);
  });

  it('survives truncation at every byte offset of its last blocks, and says it was cut short', () => {
    const scan = scanRecording(file);
    const tailStart = scan.blocks[Math.max(0, scan.blocks.length - 4)].offset;
    for (let cut = tailStart; cut < file.length; cut++) {
      const s = scanRecording(file.subarray(0, cut));
      expect(s.unfinished).toBe(true);
      const rec = loadRecording(s);
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
    const rec = loadRecording(s);
    expect(rec.events.length).toBeLessThan(12);
    expect(rec.stats?.final).toBe(true);
    expect(damageNote(rec)).toMatch(/1 corrupted block/);
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
    expect(() => scanRecording(future)).toThrow(/format version 2; this droptrace reads version 1: upgrade/);
    expect(() => scanRecording(Buffer.from('hello world, not a recording'))).toThrow(RecordingError);
    expect(() => loadRecording(scanRecording(fileHeader()))).toThrow(/no readable META/);
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
      rows: rows.map(([key, count]) => ({ key, count, bytes: 0, share: 0, rate: count / seconds, module: null, exact: true, reasons: [], interfaces: [], netns: [], locations: [], flows: [], hint: null, benign: null })),
      benign: [],
    });
    const rows = diffReports(rep([['a', 10], ['b', 10], ['c', 10], ['d', 10]]), rep([['b', 50], ['c', 2], ['d', 12], ['e', 7]]));
    expect(Object.fromEntries(rows.map((r) => [r.key, r.change]))).toEqual({ a: 'vanished', b: 'up', c: 'down', d: 'same', e: 'appeared' });
    expect(rows[0].key).toBe('e');
  });
});
