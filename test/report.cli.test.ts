/**
 * report --html from a stored recording, without root or kernel: the file rules every output
 * follows (0600, never over a file without --force, "-" for stdout) and the page's content.
 */
import { mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, run } from './helpers/cli.js';
import { FORMAT_VERSION, RecordingWriter } from '../src/formats/record.js';

const SEED = join(ROOT, 'test/fixtures/seed-6.18.dtr');
const dt = (args: string[]) => run([process.execPath, BIN, ...args]);

describe('report --html', () => {
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-html-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one page (mode 0600) with the rows report --json gives, and refuses to overwrite without --force', async () => {
    const out = join(dir, 'seed.html');
    const res = await dt(['report', SEED, '--html', out]);
    expect(res.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const html = readFileSync(out, 'utf8');
    const report = JSON.parse((await dt(['report', SEED, '--json'])).stdout).report;
    const rows: Array<{ key: string; count: number }> = report.rows;
    expect(rows.length).toBeGreaterThan(0);
    const sites = /<table id="sites">([\s\S]*?)<\/table>/.exec(html)![1];
    for (const r of rows) expect(sites).toContain(`<code>${r.key}</code>`);
    expect(html).toMatch(/<svg id="chart"/);
    expect(res.stderr).toMatch(new RegExp(`wrote .*seed\\.html \\(\\d+ KiB\\): ${report.total} drops`));

    const again = await dt(['report', SEED, '--html', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists already; .*--force/);
    expect((await dt(['report', SEED, '--html', out, '--force'])).code).toBe(0);
    const stdout = await dt(['report', SEED, '--html', '-']);
    expect(stdout.stdout).toBe(html);
    const both = await dt(['report', SEED, '--html', join(dir, 'x.html'), '--json']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--html and --json: give one/);
  });

  it('diff --html: the rows diff --json gives, with their change, and both sides\' charts', async () => {
    const before = join(ROOT, 'test/fixtures/lab-at-rest-6.18.dtr');
    const out = join(dir, 'diff.html');
    const res = await dt(['diff', before, SEED, '--html', out]);
    expect(res.code).toBe(0);
    const html = readFileSync(out, 'utf8');
    const rows: Array<{ key: string; change: string }> = JSON.parse((await dt(['diff', before, SEED, '--json'])).stdout).rows;
    expect(rows.length).toBeGreaterThan(0);
    const table = /<table id="diff">([\s\S]*?)<\/table>/.exec(html)![1];
    for (const r of rows) expect(table).toMatch(new RegExp(`<tr class="${r.change}">.*<code>${r.key.replace(/[+.]/g, '\\$&')}</code>`));
    expect(html.match(/<svg id="chart"/g)).toHaveLength(2);
    expect(html).not.toMatch(/<script|\b(?:src|href)="(?!data:)/);
  });
});

describe('report: hardware traps a recording counted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-traps-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the final stats\' devlink traps, summed over ports, and --json carries them', async () => {
    const file = join(dir, 'traps.dtr');
    const w = new RecordingWriter(openSync(file, 'wx', 0o600));
    w.meta({
      format: FORMAT_VERSION, tool: { name: 'droptrace', version: 'test' }, host: 'sw1', kernel: '7.2.13', bootId: null, startTime: '2026-12-04T07:00:00.000Z', wallOffsetNs: '0',
      attach: 'tp_btf', target: 'skb:kfree_skb', filters: 'none', snaplen: 0, stack: false, recordSize: 224, reasons: [], reasonSource: 'none',
    });
    const trap = { group: 'l3_drops', type: 'drop' as const, device: 'pci/0000:03:00.0', ifindex: 3, netns: 1, bytes: 0 };
    const stats = { delivered: 0, lost: 0, mapFull: 0, seen: 0, stackFailures: 0, exact: 0 };
    w.stats({ ...stats, final: false, traps: [{ ...trap, trap: 'blackhole_route', ifname: 'swp1', packets: 1 }] });
    w.stats({
      ...stats,
      final: true,
      traps: [
        { ...trap, trap: 'blackhole_route', ifname: 'swp1', packets: 30 },
        { ...trap, trap: 'blackhole_route', ifname: 'swp2', packets: 12 },
        { ...trap, trap: 'ttl_value_is_too_small', group: 'l3_exceptions', type: 'exception', ifname: 'swp1', packets: 5 },
      ],
    });
    w.close();
    const text = await dt(['report', file]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('hardware traps (devlink), over the whole recording: 47 packets');
    expect(text.stdout).toMatch(/^ +42 {2}blackhole_route \(l3_drops, drop\) of pci\/0000:03:00\.0$/m);
    expect(text.stdout).toMatch(/^ +5 {2}ttl_value_is_too_small \(l3_exceptions, exception\) on swp1 of pci\/0000:03:00\.0$/m);
    const json = JSON.parse((await dt(['report', file, '--json'])).stdout);
    expect(json.stats.traps).toHaveLength(3);
  });

  it('says nothing of traps for a recording without them', async () => {
    expect((await dt(['report', SEED])).stdout).not.toContain('hardware traps');
  });
});
