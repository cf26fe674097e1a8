import { describe, expect, it } from 'vitest';
import type { Report } from '../analysis/report.js';
import { reportHtml, type HtmlHeader } from './report-html.js';

const header: HtmlHeader = { file: 'x.dtr', host: 'node-1', kernel: '6.18', startTime: '2026-12-01T00:00:00.000Z', attach: 'tp_btf', filters: 'none', sample: 1, lost: 0, damage: null, tool: 'droptrace test' };
const row = (key: string, count: number) => ({ key, count, bytes: 0, share: count / 10, rate: count, module: null, exact: true, reasons: ['NO_SOCKET'], interfaces: ['eth0'], netns: ['1 (pod <b>)'], locations: [], flows: [], sockets: ['UDP 0.0.0.0:53 uid 0 pod <i>x</i>/y'], hint: 'reason/NO_SOCKET', check: 'ss -ltnup | grep ":53\\b"', benign: null });

describe('reportHtml', () => {
  it('escapes every recorded name: a hostile interface, pod or flow cannot add markup or a request', () => {
    const rep: Report = {
      by: 'location', from: 0, to: 2000, seconds: 2, total: 10, events: 10, uncounted: 0,
      rows: [row('<img src=http://x/y.png>', 10)],
      benign: [],
      series: { from: 0, times: [1000, 2000], lines: [{ key: '<img src=http://x/y.png>', rates: [4, 6], total: 10 }, { key: null, rates: [0, 0], total: 0 }] },
      flows: [{ ...row('UDP 10.0.0.1 > 10.0.0.2:53 "><script>', 10), exact: false }],
    };
    const html = reportHtml({ ...header, host: 'n"><script>alert(1)</script>' }, rep);
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain('&lt;img src=http://x/y.png&gt;');
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    // one path per line with drops; the empty "other" line is not drawn
    expect(html.match(/<path class="line"/g)).toHaveLength(1);
  });

  it('says when there is nothing to draw, and when the file is incomplete', () => {
    const rep: Report = { by: 'location', from: 0, to: 0, seconds: 0, total: 0, events: 0, uncounted: 0, rows: [], benign: [], series: { from: 0, times: [], lines: [] } };
    const html = reportHtml({ ...header, damage: 'cut short after 3 blocks', lost: null }, rep);
    expect(html).toContain('No drops.');
    expect(html).toContain('no count snapshot in the window');
    expect(html).toMatch(/id="damage">This file is incomplete: cut short after 3 blocks/);
    expect(html).toContain('unknown (no statistics block)');
  });
});
