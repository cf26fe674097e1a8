/**
 * report --html on a real recording of two faults (INPUT dropping TCP 2483,
 * UDP to a closed port), rendered by headless Chromium: the chart is drawn,
 * both sites and the dropped flow are on the page, and the page asks the
 * network for nothing. Needs root, BTF and chromium-headless-shell.
 * DT_REPORT_SCREENSHOT=FILE keeps the screenshot (README's picture).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LINE_COLOURS } from '../src/views/report-html.js';
import { BIN, run, start } from './helpers/cli.js';
import { CHROMIUM, pixelsOf, render } from './helpers/browser.js';
import { canRunKernelTests } from './helpers/kernel.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';
import { sleep } from './helpers/tmux.js';

const canRun = canRunKernelTests('the report --html tests', [CHROMIUM]);
const dt = (args: string[]) => run([process.execPath, BIN, ...args]);

describe.skipIf(!canRun)('report --html', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-html-'));
  afterAll(() => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    expect(await ourProgramsSettled()).toEqual([]);
  });

  it('the browser finds a request the page makes (the check below can fail)', async () => {
    const page = await render('<!doctype html><p>x</p><img src="/local.png"><img src="http://192.0.2.1/remote.png"><script src="https://example.com/x.js"></script>', 400, 300);
    expect(page.requests).toEqual(expect.arrayContaining(['/local.png', 'http://192.0.2.1/remote.png', 'CONNECT example.com:443']));
    expect(page.netlog.some((u) => u.startsWith('http://192.0.2.1/'))).toBe(true);
  });

  it('a recording of two faults: a drawn chart, both sites, the dropped flow, and no request', async () => {
    const host = lab.netns('h');
    const pod = lab.netns('p');
    // IPv4 only: the namespaces' own IPv6 noise (MLD reports) would add a third line over the two
    for (const ns of [host, pod]) lab.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    lab.veth(pod, 'eth0', host, 'vethp');
    lab.exec(host, 'ip', ['addr', 'add', '10.244.1.1/24', 'dev', 'vethp']);
    lab.exec(pod, 'ip', ['addr', 'add', '10.244.1.2/24', 'dev', 'eth0']);
    lab.exec(host, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '2483', '-j', 'DROP']);
    const rec = join(dir, 'two.dtr');
    const t = start(['record', '-o', rec, '--netns', host]);
    await t.ready();
    // two phases a few seconds apart, so the chart has a shape over time
    lab.udp(pod, '10.244.1.1', 5301, 40);
    lab.bash(pod, 'timeout 2.5 bash -c "echo > /dev/tcp/10.244.1.1/2483"; exit 0');
    await sleep(1200);
    lab.udp(pod, '10.244.1.1', 5301, 10);
    await sleep(1200);
    expect((await t.stop('SIGINT')).code).toBe(0);

    const json = JSON.parse((await dt(['report', rec, '--json'])).stdout);
    const rows: Array<{ key: string; count: number; reasons: string[] }> = json.report.rows;
    const udp = rows.find((r) => r.reasons[0] === 'NO_SOCKET')!;
    const nft = rows.find((r) => r.reasons[0] === 'NETFILTER_DROP')!;
    expect(udp.count).toBe(50);
    expect(nft.count).toBeGreaterThanOrEqual(2);

    const out = join(dir, 'two.html');
    const res = await dt(['report', rec, '--html', out]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/wrote .*two\.html \(\d+ KiB\)/);
    const html = readFileSync(out, 'utf8');
    // nothing in the file points anywhere: no src, no href but the empty data: icon, no url()
    expect(html.match(/\b(?:src|href)\s*=\s*"(?!data:)[^"]*"/g) ?? []).toEqual([]);
    expect(html).not.toMatch(/url\(|@import|<script/i);

    const page = await render(html);
    expect(page.requests).toEqual([]);
    expect(page.netlog.every((u) => /^http:\/\/127\.0\.0\.1:\d+\/page\.html$/.test(u))).toBe(true);

    // the DOM as the browser built it: a line per site in the chart, both sites ranked, the flow
    const lines = [...page.dom.matchAll(/<path class="line" data-key="([^"]+)"[^>]*d="([^"]+)"/g)].map((m) => ({ key: m[1], d: m[2] }));
    expect(lines.map((l) => l.key)).toEqual(expect.arrayContaining([udp.key, nft.key]));
    for (const l of lines) expect(l.d.split(/[HV]/).length).toBeGreaterThan(3);
    const sites = /<table id="sites">([\s\S]*?)<\/table>/.exec(page.dom)![1];
    expect(sites).toContain(udp.key);
    expect(sites).toContain(nft.key);
    expect(sites).toMatch(/NETFILTER_DROP/);
    const flows = /<table id="flows">([\s\S]*?)<\/table>/.exec(page.dom)![1];
    expect(flows).toMatch(/10\.244\.1\.2 &gt; 10\.244\.1\.1:2483|10\.244\.1\.2[^<]*10\.244\.1\.1:2483/);
    expect(flows).toMatch(/10\.244\.1\.1:5301/);

    // the screenshot: the two drawn lines are there in their colours (a line spans the chart's
    // width: many more pixels than the legend's and the table's swatches, 2 × 144)
    const first = rows.indexOf(rows[0]) === rows.indexOf(udp) ? 0 : 1;
    expect(pixelsOf(page.png, LINE_COLOURS[first])).toBeGreaterThan(600);
    expect(pixelsOf(page.png, LINE_COLOURS[1 - first])).toBeGreaterThan(600);
    if (process.env.DT_REPORT_SCREENSHOT) writeFileSync(process.env.DT_REPORT_SCREENSHOT, PNG.sync.write(croppedToContent(page.png)));
  });
});

/** The screenshot without the blank window below the page's end (README's picture). */
function croppedToContent(png: PNG): PNG {
  let last = 0;
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) {
      const i = (y * png.width + x) * 4;
      if (png.data[i] < 250 || png.data[i + 1] < 250 || png.data[i + 2] < 250) {
        last = y;
        break;
      }
    }
  }
  const height = Math.min(png.height, last + 24);
  const out = new PNG({ width: png.width, height });
  // rows are stored top to bottom: the first `height` of them are the page
  png.data.copy(out.data, 0, 0, png.width * height * 4);
  return out;
}
