/** `droptrace diff`: what appeared, vanished or changed rate between two recordings. */
import { Command, Option } from 'commander';
import { GROUPS, type GroupBy } from '../analysis/snapshot.js';
import { UsageError } from '../capture/filters.js';
import { damageNote } from '../formats/recording.js';
import { buildReport, diffReports, formatDiff } from '../analysis/report.js';
import { openRecording } from './files.js';

export function diffCommand(): Command {
  return new Command('diff')
    .description('compare two recordings (before/after a change, node A vs node B): drop sites or reasons that appeared, vanished, or changed rate')
    .argument('<a>', 'the first recording (before)')
    .argument('<b>', 'the second recording (after)')
    .addOption(new Option('--by <group>', 'compare rows grouped by').choices([...GROUPS]).default('location'))
    .option('--factor <x>', 'a rate change of at least this factor counts as up/down', '2')
    .option('--json', 'print the rows as JSON')
    .action((a: string, b: string, opts: { by: GroupBy; factor: string; json?: boolean }) => {
      const factor = Number(opts.factor);
      if (!(factor > 1)) throw new UsageError(`--factor ${opts.factor}: expected a number above 1`);
      const side = (file: string) => {
        const reader = openRecording(file);
        const report = buildReport(reader, { by: opts.by });
        return { file, report, damage: damageNote(reader.tables) };
      };
      const A = side(a);
      const B = side(b);
      const rows = diffReports(A.report, B.report, factor);
      const head = (s: typeof A) => ({ file: s.file, total: s.report.total, seconds: s.report.seconds, damaged: s.damage });
      if (opts.json) process.stdout.write(JSON.stringify({ by: opts.by, a: head(A), b: head(B), rows }) + '\n');
      else {
        // a damaged side can show rows as vanished that were only cut off: say so next to its totals
        const line = (name: string, s: typeof A) => `${name} ${s.file}: ${s.report.total} drops in ${s.report.seconds.toFixed(1)} s${s.damage ? ` (DAMAGED: ${s.damage})` : ''}`;
        process.stdout.write(`${line('A', A)}\n${line('B', B)}\n${formatDiff(rows, opts.by)}\n`);
      }
      for (const s of [A, B]) if (s.damage) process.stderr.write(`droptrace: warning: ${s.file}: ${s.damage}\n`);
    });
}
