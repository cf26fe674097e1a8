/** `droptrace diff`: what appeared, vanished or changed rate between two recordings. */
import { Command, Option } from 'commander';
import { GROUPS, type GroupBy } from '../aggregate.js';
import { UsageError } from '../filters.js';
import { buildReport, diffReports, formatDiff } from '../report.js';
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
      const ra = buildReport(openRecording(a), { by: opts.by });
      const rb = buildReport(openRecording(b), { by: opts.by });
      const rows = diffReports(ra, rb, factor);
      if (opts.json) process.stdout.write(JSON.stringify({ by: opts.by, a: { file: a, total: ra.total, seconds: ra.seconds }, b: { file: b, total: rb.total, seconds: rb.seconds }, rows }) + '\n');
      else process.stdout.write(`A ${a}: ${ra.total} drops in ${ra.seconds.toFixed(1)} s; B ${b}: ${rb.total} drops in ${rb.seconds.toFixed(1)} s\n${formatDiff(rows, opts.by)}\n`);
    });
}
