/**
 * `report --html`: a recording's report as one self-contained page, for a
 * ticket or a mail to people without droptrace. No script, no font, no
 * external reference (a Content-Security-Policy forbids loading anything):
 * the chart is SVG drawn here, the rest is tables and <details>. Pure: a
 * Report in, a string out; its size follows the rows, not the events.
 *
 * Hand-drawn SVG rather than a charting library: the page then needs no
 * JavaScript at all (mail clients and locked-down viewers run none), and one
 * line chart with axes is ~100 lines, less than any library inlined.
 */
import { hintTitle, type DiffRow, type Report, type ReportRow } from '../analysis/report.js';
import type { Series } from '../analysis/series.js';
import type { SiteStacks } from '../analysis/stacks.js';
import type { PathSummary } from '../analysis/paths.js';
import { benignLine } from '../model/benign.js';
import { formatNs } from '../model/path.js';

export interface HtmlHeader {
  file: string;
  host: string;
  kernel: string;
  startTime: string;
  attach: string;
  filters: string;
  /** --sample N of the recording (1: every drop an event) */
  sample: number;
  /** events the ring could not take while recording; null when the file has no statistics */
  lost: number | null;
  /** why the file is incomplete, or null */
  damage: string | null;
  tool: string;
}

/** Colours of the drawn rows, then "other" (grey): distinct in print and for common colour blindness. */
export const LINE_COLOURS = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#17becf'];
const OTHER_COLOUR = '#7f7f7f';
const MAX_ROWS = 50;
const MAX_FLOWS = 20;

const esc = (s: string | number) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const rate = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2));

/**
 * Everything before the body's content: the policy that forbids loading anything (so the page
 * makes no request, whatever a recorded name holds) and the inline style.
 */
function pageHead(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
`;
}

export function reportHtml(h: HtmlHeader, rep: Report): string {
  const top = rep.rows[0];
  const title = `droptrace: ${h.host}, ${rep.total} drops${top ? `, most at ${top.key}` : ''}`;
  return `${pageHead(title)}<h1>Packet drops on ${esc(h.host)}</h1>
${header(h, rep)}
${summary(rep)}
${rep.series ? chart(rep.series, rep.by) : ''}
${sites(rep)}
${hints(rep.rows)}
${rep.flows ? flows(rep.flows) : ''}
${rep.stacks ? stacks(rep.stacks) : ''}
${rep.paths ? paths(rep.paths) : ''}
<footer>${esc(h.tool)} · from ${esc(h.file)} · counts are exact in-kernel counts; flows, stacks and paths come from events${h.sample > 1 ? ` (one in ${h.sample}, scaled)` : ''}</footer>
</body>
</html>
`;
}

/** The page of `diff --html`: both recordings' headers, what changed between them, and each side's chart. */
export function diffHtml(a: { header: HtmlHeader; report: Report }, b: { header: HtmlHeader; report: Report }, rows: readonly DiffRow[]): string {
  const by = a.report.by;
  const changed = rows.filter((r) => r.change !== 'same').length;
  const title = `droptrace diff: ${a.header.host} → ${b.header.host}, ${changed} of ${rows.length} ${by} rows changed`;
  const body = rows
    .slice(0, MAX_ROWS)
    .map(
      (r) =>
        `<tr class="${r.change}"><td><span class="change">${r.change}</span></td><td class="n">${r.a.count}</td><td class="n">${rate(r.a.rate)}</td><td class="n">${r.b.count}</td><td class="n">${rate(r.b.rate)}</td><td class="n">${r.ratio === null ? '' : `×${r.ratio.toFixed(2)}`}</td><td><code>${esc(r.key)}</code></td></tr>`,
    );
  const side = (name: string, s: { header: HtmlHeader; report: Report }) =>
    `<section><h2>${name}: ${esc(s.header.file)}</h2>${header(s.header, s.report)}${summary(s.report)}${s.report.series ? chart(s.report.series, by) : ''}</section>`;
  return `${pageHead(title)}<h1>What changed: ${esc(a.header.file)} → ${esc(b.header.file)}</h1>
<p class="summary">${changed} of ${rows.length} ${esc(by)} rows changed: appeared, vanished, or a rate at least the factor up or down.</p>
<table id="diff"><thead><tr><th>change</th><th>A</th><th>A/s</th><th>B</th><th>B/s</th><th>B/A</th><th>${esc(by)}</th></tr></thead><tbody>${body.join('\n')}</tbody></table>
${rows.length > MAX_ROWS ? `<p>… ${rows.length - MAX_ROWS} more rows (droptrace diff)</p>` : ''}
${side('A', a)}
${side('B', b)}
<footer>${esc(b.header.tool)} · counts are exact in-kernel counts</footer>
</body>
</html>
`;
}

function header(h: HtmlHeader, rep: Report): string {
  const facts: Array<[string, string]> = [
    ['kernel', `Linux ${h.kernel}`],
    ['window', `${new Date(rep.from).toISOString()} – ${new Date(rep.to).toISOString()} (${rep.seconds.toFixed(1)} s)`],
    ['recorded', `${h.startTime} via ${h.attach}`],
    ['filters', h.filters || 'none'],
    ['events', `${rep.events}${h.sample > 1 ? ` (one drop in ${h.sample} sent)` : ''}${rep.uncounted ? `; ${rep.uncounted} after the last exact count, not in the totals` : ''}`],
    ['lost events', h.lost === null ? 'unknown (no statistics block)' : String(h.lost)],
  ];
  const dl = facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('');
  const damage = h.damage ? `<p class="warn" id="damage">This file is incomplete: ${esc(h.damage)}</p>` : '';
  const lost = h.lost ? `<p class="warn">${h.lost} events were lost while recording: counts stay exact, flows miss them.</p>` : '';
  return `<dl class="facts">${dl}</dl>${damage}${lost}`;
}

function summary(rep: Report): string {
  const top = rep.rows[0];
  if (!top) return `<p class="summary">${rep.benign.length ? 'No drops besides expected noise (folded).' : 'No drops.'}</p>`;
  const why = [top.reasons[0], top.interfaces[0] && `on ${top.interfaces[0]}`, top.netns[0] && `in ${top.netns[0]}`].filter(Boolean).join(' ');
  return `<p class="summary"><b>${rep.total}</b> drops in ${rep.seconds.toFixed(1)} s; <b>${pct(top.share)}</b> at <code>${esc(top.key)}</code>${why ? ` (${esc(why)})` : ''}${top.hint ? `: ${esc(hintTitle(top.hint))}` : ''}.</p>`;
}

/** Drops per second of each drawn row: a step line per row, the rest as one grey line. */
function chart(s: Series, by: string): string {
  const W = 900;
  const H = 280;
  const L = 64;
  const R = 16;
  const T = 12;
  const B = 36;
  if (!s.times.length) return `<section><h2>Drops over time</h2><p>The recording has no count snapshot in the window.</p></section>`;
  const lines = s.lines.filter((l) => l.total > 0);
  const t0 = s.from;
  const t1 = s.times[s.times.length - 1];
  const span = Math.max(1, t1 - t0);
  const ymax = niceCeil(Math.max(1e-9, ...lines.flatMap((l) => l.rates)));
  const x = (t: number) => L + ((t - t0) / span) * (W - L - R);
  const y = (v: number) => T + (1 - v / ymax) * (H - T - B);
  const grid: string[] = [];
  for (const v of ticks(ymax)) {
    const label = Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3)));
    grid.push(`<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/><text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${esc(label)}</text>`);
  }
  for (const sec of ticks(span / 1000)) {
    const px = x(t0 + sec * 1000);
    grid.push(`<line class="tick" x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${H - B}" y2="${H - B + 5}"/><text x="${px.toFixed(1)}" y="${H - B + 18}" text-anchor="middle">${esc(clock(sec))}</text>`);
  }
  // drawn with "everything else" first, so that it passes beneath the named rows, never over them
  const paths = s.lines.map((l, i) => {
    if (!l.total) return '';
    const colour = l.key === null ? OTHER_COLOUR : LINE_COLOURS[i % LINE_COLOURS.length];
    // a step per interval: the rate held from the previous snapshot to this one
    let d = `M${x(t0).toFixed(1)},${y(l.rates[0]).toFixed(1)}`;
    l.rates.forEach((_r, j) => {
      d += `H${x(s.times[j]).toFixed(1)}`;
      if (j + 1 < l.rates.length) d += `V${y(l.rates[j + 1]).toFixed(1)}`;
    });
    return `<path class="line" data-key="${esc(l.key ?? 'other')}" stroke="${colour}" d="${d}"><title>${esc(l.key ?? 'all other drops')}: ${l.total} drops</title></path>`;
  });
  const legend = s.lines
    .map((l, i) => (l.total ? `<li><span class="swatch" style="background:${l.key === null ? OTHER_COLOUR : LINE_COLOURS[i % LINE_COLOURS.length]}"></span><code>${esc(l.key ?? 'all other drops')}</code> ${l.total}</li>` : ''))
    .join('');
  return `<section><h2>Drops per second, by ${esc(by)}</h2>
<svg id="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="drops per second over the recording">
<g class="axes">${grid.join('')}<line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"/><line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>
<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle">time since the window's start</text></g>
${[paths.at(-1), ...paths.slice(0, -1)].join('\n')}
</svg>
<ul class="legend">${legend}</ul></section>`;
}

function sites(rep: Report): string {
  if (!rep.rows.length && !rep.benign.length) return '';
  const second = rep.by === 'reason' ? 'location' : 'reason';
  const drawn = new Set(rep.series?.lines.map((l) => l.key));
  const rows = rep.rows.slice(0, MAX_ROWS).map((r, i) => {
    const swatch = drawn.has(r.key) ? `<span class="swatch" style="background:${LINE_COLOURS[i % LINE_COLOURS.length]}"></span>` : '';
    const other = rep.by === 'reason' ? r.locations[0] : r.reasons[0];
    return `<tr><td class="n">${r.count}${r.exact ? '' : ' ~'}</td><td class="n"><span class="bar" style="width:${Math.max(1, Math.round(r.share * 60))}px"></span>${pct(r.share)}</td><td class="n">${rate(r.rate)}</td><td class="site">${swatch}<code>${esc(r.key)}</code>${r.module ? ` [${esc(r.module)}]` : ''}</td><td>${esc(other ?? '-')}</td><td>${esc(r.interfaces.join(', ') || '-')}</td><td>${esc(r.netns.join(', ') || '-')}${r.sockets.length ? `<br><small>socket ${esc(r.sockets[0])}</small>` : ''}</td><td>${r.hint ? esc(hintTitle(r.hint)) : ''}</td></tr>`;
  });
  const more = rep.rows.length > MAX_ROWS ? `<p>… ${rep.rows.length - MAX_ROWS} more rows (droptrace report --top)</p>` : '';
  const folded = benignLine(rep.benign, 'report --all');
  return `<section><h2>Drop sites, by ${esc(rep.by)}</h2>
<table id="sites"><thead><tr><th>drops</th><th>share</th><th>avg/s</th><th>${esc(rep.by)}</th><th>${second}</th><th>interface</th><th>netns / pod</th><th>what it means</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>${more}${folded ? `<p class="noise">${esc(folded)}</p>` : ''}</section>`;
}

function hints(rows: readonly ReportRow[]): string {
  const hinted = rows.slice(0, 5).filter((r) => r.hint);
  if (!hinted.length) return '';
  const items = hinted.map((r) => `<li><code>${esc(r.key)}</code>: ${esc(hintTitle(r.hint!))}${r.check ? `<br>check first: <code>${esc(r.check)}</code>` : ''}</li>`);
  return `<section><h2>What to check</h2><ul class="hints">${items.join('')}</ul><p>droptrace diagnose on the node adds the evidence (the rule, route or program) and more commands.</p></section>`;
}

function flows(rows: readonly ReportRow[]): string {
  if (!rows.length) return '';
  const body = rows
    .slice(0, MAX_FLOWS)
    .map((r) => `<tr><td class="n">${r.count} ~</td><td><code>${esc(r.key)}</code></td><td><code>${esc(r.locations[0] ?? '-')}</code></td><td>${esc(r.reasons[0] ?? '-')}</td><td>${esc(r.interfaces[0] ?? '-')}</td><td>${esc(r.netns[0] ?? '-')}</td></tr>`);
  return `<section><h2>Top flows</h2>
<table id="flows"><thead><tr><th>drops</th><th>flow</th><th>site</th><th>reason</th><th>interface</th><th>netns / pod</th></tr></thead><tbody>${body.join('\n')}</tbody></table>
<p class="note">~ counted from events: events lost while recording are missing here.</p></section>`;
}

function stacks(list: readonly SiteStacks[]): string {
  if (!list.length) return '';
  const sites = list.slice(0, 10).map((s) => {
    const callers = s.callers.length ? `; freed for ${s.callers.map((c) => `${c.function} (${c.count})`).join(', ')}` : '';
    const st = s.stacks.slice(0, 5).map((k) => `<pre>${k.count} ×\n${k.frames.map(esc).join('\n')}</pre>`).join('');
    return `<details><summary><code>${esc(s.site)}</code>: ${s.total} drops with a stack${esc(callers)}</summary>${st}</details>`;
  });
  return `<section><h2>Kernel stacks by drop site</h2>${sites.join('')}</section>`;
}

function paths(p: PathSummary): string {
  const rows = p.rows.slice(0, 20).map(
    (r) =>
      `<li><b>${r.count}</b> × ${esc(formatNs(r.medianNs))} median (max ${esc(formatNs(r.maxNs))}): ${[...r.hops, `dropped at ${r.site}${r.reason ? ` (${r.reason})` : ''}`].map((x) => `<code>${esc(x)}</code>`).join(' → ')}</li>`,
  );
  const extra = [p.noSteps ? `${p.noSteps} drops with no step before the drop` : '', p.other ? `${p.other} drops of further paths not listed` : ''].filter(Boolean);
  if (!rows.length && !extra.length) return '';
  return `<section><h2>Paths of the dropped packets</h2><ul class="paths">${rows.join('')}</ul>${extra.map((e) => `<p>${esc(e)}</p>`).join('')}</section>`;
}

/** The smallest 1, 2 or 5 × 10^k at or above v. */
function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** About four round values from 0 to max. */
function ticks(max: number): number[] {
  const step = niceCeil(max / 4);
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(v);
  return out;
}

/** Seconds as m:ss (or h:mm:ss). */
function clock(sec: number): string {
  const s = Math.round(sec);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
code,pre{font:12.5px ui-monospace,Menlo,Consolas,monospace}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}dt{color:#666}dd{margin:0}
.warn{background:#fff3cd;border-left:4px solid #e0a800;padding:6px 10px}
.summary{font-size:16px;background:#f4f6fa;padding:8px 12px;border-radius:4px}
svg{max-width:100%;height:auto}svg text{font-size:11px;fill:#555}
.grid{stroke:#e5e5e5}.axis,.tick{stroke:#999}.line{fill:none;stroke-width:2}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px 18px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#fafafa;font-weight:600}td code,td.site{white-space:nowrap}td.n{text-align:right;white-space:nowrap}
.bar{display:inline-block;height:8px;background:#9ab;margin-right:6px}
.noise,.note,footer{color:#666}footer{margin-top:32px;font-size:12px}
details{margin:4px 0}pre{background:#f7f7f7;padding:6px;margin:4px 0 4px 16px}
tr.appeared .change,tr.up .change{color:#b00020;font-weight:600}tr.vanished .change,tr.down .change{color:#1b7f3b;font-weight:600}tr.same{color:#777}
@media print{body{margin:0}}
`;
