/** `droptrace diff`: what appeared, vanished or changed rate between two recordings. */
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { GROUPS, type GroupBy } from '../analysis/snapshot.js';
import { UsageError } from '../capture/filters.js';
import { damageNote } from '../formats/recording.js';
import { buildReport, diffReports, formatDiff } from '../analysis/report.js';
import { diffHtml, LINE_COLOURS } from '../views/report-html.js';
import { closeOutput, createOutput, htmlHeader, openRecording } from './files.js';

export function diffCommand(): Command {
  return new Command('diff')
    .description('compare two recordings (before/after a change, node A vs node B): drop sites or reasons that appeared, vanished, or changed rate')
    .argument('<a>', 'the first recording (before)')
    .argument('<b>', 'the second recording (after)')
    .addOption(new Option('--by <group>', 'compare rows grouped by').choices([...GROUPS]).default('location'))
    .option('--factor <x>', 'a rate change of at least this factor counts as up/down', '2')
    .option('--json', 'print the rows as JSON')
    .option('--html <out>', 'write the comparison as one self-contained HTML page (the changed rows, both headers and both charts) to OUT ("-": standard output)')
    .option('--force', 'replace the --html file if it exists')
    .action((a: string, b: string, opts: { by: GroupBy; factor: string; json?: boolean; html?: string; force?: boolean }) => {
      const factor = Number(opts.factor);
      if (!(factor > 1)) throw new UsageError(`--factor ${opts.factor}: expected a number above 1`);
      if (opts.html !== undefined && opts.json) throw new UsageError('--html and --json: give one (the page is written to the --html file)');
      const html = opts.html !== undefined;
      const side = (file: string) => {
        const reader = openRecording(file);
        const report = buildReport(reader, { by: opts.by, series: html ? LINE_COLOURS.length : undefined });
        return { file, report, damage: damageNote(reader.tables), tables: reader.tables };
      };
      const A = side(a);
      const B = side(b);
      const out = html ? createOutput(opts.html!, { force: opts.force, stdoutOk: true }) : -1;
      const rows = diffReports(A.report, B.report, factor);
      const head = (s: typeof A) => ({ file: s.file, total: s.report.total, seconds: s.report.seconds, damaged: s.damage });
      if (html) {
        const page = diffHtml({ header: htmlHeader(A.file, A.tables, A.damage), report: A.report }, { header: htmlHeader(B.file, B.tables, B.damage), report: B.report }, rows);
        if (out === 1) process.stdout.write(page);
        else writeFileSync(out, page);
        closeOutput(out);
        if (out !== 1) process.stderr.write(`droptrace: wrote ${opts.html} (${Math.ceil(Buffer.byteLength(page) / 1024)} KiB): ${rows.filter((r) => r.change !== 'same').length} of ${rows.length} rows changed\n`);
      } else if (opts.json) process.stdout.write(JSON.stringify({ by: opts.by, a: head(A), b: head(B), rows }) + '\n');
      else {
        // a damaged side can show rows as vanished that were only cut off: say so next to its totals
        const line = (name: string, s: typeof A) => `${name} ${s.file}: ${s.report.total} drops in ${s.report.seconds.toFixed(1)} s${s.damage ? ` (DAMAGED: ${s.damage})` : ''}`;
        process.stdout.write(`${line('A', A)}\n${line('B', B)}\n${formatDiff(rows, opts.by)}\n`);
      }
      for (const s of [A, B]) if (s.damage) process.stderr.write(`droptrace: warning: ${s.file}: ${s.damage}\n`);
    });
}
