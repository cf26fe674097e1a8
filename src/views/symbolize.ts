/** What `droptrace symbolize` prints after the log: the verdict on the snapshot and the ranked tables, columns as wide as the data. */
import type { Report, Row } from '../analysis/symbolize-report.js';
import type { SnapshotVerdict } from '../analysis/judge.js';
import { functionHint, reasonHint } from '../model/hints.js';

/** The ranked tables as text. */
export function formatReport(r: Report, top = 20): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  const lines: string[] = [];
  const fmts = Object.entries(r.formats)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  lines.push(`${r.drops} drops on ${r.recognised} recognised lines (${fmts || 'none'}), ${r.ignored} ignored (prompts, comments), ${r.unrecognised} unrecognised, of ${r.lines}`);
  const verdicts: Record<SnapshotVerdict, string> = {
    matches: `kallsyms: matches the log (${r.agreement.agree} of ${r.agreement.of} named functions agree${r.slide !== '0x0' ? `; slide ${r.slide}` : ''})`,
    'one name': 'kallsyms: unchecked (one named function in the log); the log\'s names are kept',
    mismatch: `kallsyms: DOES NOT MATCH THIS LOG (${r.agreement.agree} of ${r.agreement.of} named functions agree); the log's names are kept`,
    unchecked: 'kallsyms: unchecked (no line has both a name and an address)',
  };
  lines.push(verdicts[r.snapshot]);
  const table = (title: string, rows: Row[], total: number, withAddress: boolean) => {
    const shown = rows.slice(0, top);
    const name = (row: Row) => (row.module ? `${row.key} [${row.module}]` : row.key);
    const nameW = Math.max(withAddress ? 8 : 8, ...shown.map((row) => name(row).length));
    const addrW = Math.max(7, ...shown.map((row) => (row.address ?? '-').length));
    const reasons = (row: Row) => row.reasons.join(',') || '-';
    const reasonW = Math.max(7, ...shown.map((row) => reasons(row).length));
    const countW = Math.max(5, ...shown.map((row) => String(row.count).length));
    lines.push('', title);
    lines.push(`  ${'COUNT'.padStart(countW)} ${'SHARE'.padStart(6)}  ${(withAddress ? 'LOCATION' : 'FUNCTION').padEnd(nameW)}  ${withAddress ? 'ADDRESS'.padEnd(addrW) + '  ' : ''}${'REASONS'.padEnd(reasonW)}  LINES`);
    for (const row of shown) {
      const addr = withAddress ? `${(row.address ?? '-').padEnd(addrW)}  ` : '';
      lines.push(`  ${String(row.count).padStart(countW)} ${pct(row.share)}  ${name(row).padEnd(nameW)}  ${addr}${reasons(row).padEnd(reasonW)}  ${row.firstLine}-${row.lastLine}`);
      if (!withAddress && row.callers.length) lines.push(`  ${''.padStart(countW)} ${''.padStart(6)}    called from ${row.callers.slice(0, 3).map((c) => `${c.name} (${c.count})`).join(', ')}`);
    }
    if (total > shown.length) lines.push(`  … ${total - shown.length} more`);
  };
  table('By function:', r.byFunction, r.functions, false);
  table('By location:', r.byLocation, r.locations, true);
  const hinted = r.byFunction.slice(0, 5).filter((row) => row.hint);
  if (hinted.length) {
    lines.push('', 'What they mean:');
    for (const row of hinted) {
      const [kind, name] = row.hint!.split('/');
      const h = kind === 'reason' ? reasonHint(name) : functionHint(name);
      if (h) lines.push(`  ${row.key}: ${h.title}`);
    }
  }
  return lines.join('\n');
}
