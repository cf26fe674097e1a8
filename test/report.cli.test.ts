/**
 * report --html from a stored recording, without root or kernel: the file rules every output
 * follows (0600, never over a file without --force, "-" for stdout) and the page's content.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, run } from './helpers/cli.js';

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
