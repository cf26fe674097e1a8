/** `droptrace report`: the live view's tables, from a recording, on any machine. */
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { GROUPS, type GroupBy } from '../analysis/snapshot.js';
import { UsageError } from '../capture/filters.js';
import { damageNote } from '../formats/recording.js';
import { buildReport, formatReport } from '../analysis/report.js';
import { trapLabel, trapPackets, trapsByName } from '../model/traps.js';
import { LINE_COLOURS, reportHtml } from '../views/report-html.js';
import { closeOutput, createOutput, htmlHeader, openRecording, parseWhen } from './files.js';

interface Options {
  by: GroupBy;
  top: string;
  since?: string;
  until?: string;
  json?: boolean;
  all?: boolean;
  stacks?: boolean;
  paths?: boolean;
  html?: string;
  force?: boolean;
}

export function reportCommand(): Command {
  return new Command('report')
    .description('tables of a recording: counts by location, function, reason, interface, netns, pod or flow (no root, no kernel needed)')
    .argument('<file>', 'a recording made by droptrace record')
    .addOption(new Option('--by <group>', 'group rows by').choices([...GROUPS]).default('location'))
    .option('--top <n>', 'rows to print', '20')
    .option('--since <time>', 'start of the window: seconds after the recording started, or an ISO-8601 time')
    .option('--until <time>', 'end of the window, same forms')
    .option('--json', 'print the report as JSON')
    .option('--stacks', 'also list the kernel stacks recorded per drop site (record --stack), and who a generic free function freed for')
    .option('--paths', 'also list the distinct paths the dropped packets took, with counts and latency (record --path)')
    .option('--html <out>', 'write the report as one self-contained HTML page (chart of drops over time, sites, flows, and the stacks and paths the file has) to OUT ("-": standard output), for a ticket or a mail: it loads nothing from anywhere; mode 0600, never over an existing file without --force')
    .option('--force', 'replace the --html file if it exists')
    .option('--all', 'show drops every healthy node makes (IPv6 multicast nobody joined, frames for other hosts, …) as rows instead of one folded line')
    .addHelpText(
      'after',
      `
Counts are the exact in-kernel counts stored in the file; flow rows (--by flow) are counted from
events. Symbols, reason names and interface names come from the file, not from this machine.
Drops a healthy node makes all the time (docs/DESIGN.md lists the rules) are folded into one
line that says how many there were; --all lists them as rows (marked "benign" in --json).

Examples:
  droptrace report drops.dtr
  droptrace report drops.dtr --by reason --since 30 --until 90
  droptrace report drops.dtr --stacks          # a recording made with record --stack
  droptrace report drops.dtr --paths           # a recording made with record --path
  droptrace report drops.dtr --html drops.html # a page for people without droptrace`,
    )
    .action((file: string, opts: Options) => {
      const top = Number(opts.top);
      if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top ${opts.top}: expected a positive whole number`);
      if (opts.html !== undefined && opts.json) throw new UsageError('--html and --json: give one (the page is written to the --html file)');
      const rec = openRecording(file);
      // created before the recording is read through: a name that cannot be written fails at once
      const out = opts.html !== undefined ? createOutput(opts.html, { force: opts.force, stdoutOk: true }) : -1;
      const start = Date.parse(rec.meta.startTime);
      const t = rec.tables;
      const m = t.meta;
      const html = opts.html !== undefined;
      // the page shows whatever the file has: stacks and paths when they were recorded
      const rep = buildReport(rec, {
        by: opts.by,
        since: parseWhen(opts.since, start, '--since'),
        until: parseWhen(opts.until, start, '--until'),
        all: opts.all,
        stacks: opts.stacks || (html && m.stack),
        paths: opts.paths || (html && m.packetPath !== undefined),
        series: html ? LINE_COLOURS.length : undefined,
        flows: html,
      });
      const damage = damageNote(t);
      if (html) {
        const page = reportHtml(htmlHeader(file, t, damage), rep);
        if (out === 1) process.stdout.write(page);
        else writeFileSync(out, page);
        closeOutput(out);
        if (out !== 1) process.stderr.write(`droptrace: wrote ${opts.html} (${Math.ceil(Buffer.byteLength(page) / 1024)} KiB): ${rep.total} drops, ${rep.rows.length} ${rep.by} rows\n`);
      } else if (opts.json) {
        process.stdout.write(
          JSON.stringify({ host: m.host, kernel: m.kernel, bootId: m.bootId, startTime: m.startTime, attach: m.attach, filters: m.filters, stats: t.stats, damage: { ...t.damage, note: damage }, report: rep }) + '\n',
        );
      } else {
        const lost = t.stats ? `, ${t.stats.lost} events lost while recording` : '';
        process.stdout.write(`${file}: ${m.host}, Linux ${m.kernel}, recorded ${m.startTime} via ${m.attach}; filters: ${m.filters}${lost}\n`);
        process.stdout.write(formatReport(rep, top) + '\n');
        // devlink traps are counts, not events: the recording's totals, whatever the window
        const traps = trapsByName(t.stats?.traps ?? []);
        if (traps.length) {
          process.stdout.write(`\nhardware traps (devlink), over the whole recording: ${trapPackets(traps)} packets\n`);
          for (const x of traps) process.stdout.write(`  ${String(x.packets).padStart(8)}  ${trapLabel(x)}\n`);
        }
      }
      if (damage) process.stderr.write(`droptrace: warning: ${file}: ${damage}\n`);
    });
}
