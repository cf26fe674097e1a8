/** `droptrace symbolize`: resolve and rank dropwatch/perf/ftrace logs against a kallsyms snapshot. */
import { existsSync, statSync } from 'node:fs';
import { Command } from 'commander';
import { UsageError } from '../capture/filters.js';
import { KallsymsError } from '../model/kallsyms.js';
import { eachLine } from '../formats/input.js';
import { readSymbolTableInWorker } from '../formats/symbols.js';
import type { Emitted } from '../analysis/symbolize.js';

interface Options {
  kallsyms: string;
  summary?: boolean;
  json?: boolean;
  top: string;
}

/** Output gathered per input chunk and written with backpressure: a 1 GB log must not pile up in memory. */
class Out {
  private parts: string[] = [];
  constructor(private readonly stream: NodeJS.WritableStream) {}
  add(s: string): void {
    this.parts.push(s);
  }
  async flush(): Promise<void> {
    if (!this.parts.length) return;
    const ok = this.stream.write(this.parts.join(''));
    this.parts = [];
    if (!ok) await new Promise((r) => this.stream.once('drain', r));
  }
}

export function symbolizeCommand(): Command {
  return new Command('symbolize')
    .description('resolve drop logs (dropwatch, perf script, trace_pipe, bare addresses) against a kallsyms snapshot and rank them')
    .argument('[files...]', 'log files, plain or gzip; - or nothing for stdin')
    .option('-k, --kallsyms <file>', "/proc/kallsyms, System.map or nm output of the node the log came from (plain or gzip; - for stdin)", '/proc/kallsyms')
    .option('--summary', 'print only the ranked tables, not the annotated log')
    .option('--json', 'one JSON document: every recognised line resolved, then the tables')
    .option('--top <n>', 'rows per table in text output', '20')
    .addHelpText(
      'after',
      `
Drop lines are found anywhere on a line (quoted in prose, after a prompt or a timestamp):
dropwatch summary and packet mode (with [ns: N]), SystemTap's dropwatch.stp, perf script
(with -g stacks), trace_pipe (with stacktrace), bare address lists. Stack frames after a drop
line name the caller of generic free functions (skb_release_data, kfree_skb_list, …).

The kallsyms is checked before it is trusted: every line that prints both a name and an
address votes on the KASLR slide, and only when distinct functions agree is the snapshot taken
as the log's kernel; then addresses are re-resolved and a name that is none of the names at its
address is flagged (old dropwatch misnamed module addresses, e.g. __brk_limit+36c27a68). When
they disagree, the log's own names are kept and ranked, and nothing is renamed. Warnings go to
stderr in every mode (and into the document with --json).

Examples:
  droptrace symbolize --kallsyms node7.kallsyms.gz ticket-4711-dropwatch.txt
  perf script | droptrace symbolize --summary
  droptrace symbolize --json -k System.map-6.1.0-18-amd64 dropwatch.log | jq '.byFunction[0]'`,
    )
    .action(async (files: string[], opts: Options) => run(files, opts));
}

async function run(files: string[], opts: Options): Promise<void> {
  const inputs = files.length ? files : ['-'];
  if (opts.kallsyms === '-' && inputs.includes('-')) throw new UsageError('the log and --kallsyms cannot both come from stdin');
  for (const f of [...inputs, opts.kallsyms]) {
    if (f !== '-' && !existsSync(f)) throw new UsageError(`${f}: no such file`);
    if (f !== '-' && statSync(f).isDirectory()) throw new UsageError(`${f}: is a directory`);
  }
  const top = Number(opts.top);
  if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top ${opts.top}: expected a positive whole number`);
  // the table is parsed on the other core while the log is read; only per-line output waits for it
  const perLine = !!opts.json || !opts.summary;
  const loading = readSymbolTableInWorker(opts.kallsyms).catch(async (err) => {
    throw await tableError(opts.kallsyms, err);
  });
  loading.catch(() => {}); // awaited below; until then a failure must not count as unhandled
  // the scanner and the tables are loaded once the worker is on its way: it boots meanwhile
  const [{ Symbolizer }, { formatReport }] = await Promise.all([import('../analysis/symbolize.js'), import('../views/symbolize.js')]);
  const table = perLine ? await loading : null;

  const warn = (w: string) => process.stderr.write(`droptrace: warning: ${w}\n`);
  const inputWarnings: string[] = [];
  // the verdict on the snapshot is said the moment it is known, before any line is printed
  const sym = new Symbolizer(table, { text: !opts.json && !opts.summary, entries: !!opts.json }, (ws) => ws.forEach(warn));
  const out = new Out(process.stdout);
  let firstEntry = true;
  const emit = (items: Emitted[]) => {
    for (const it of items) {
      if (opts.json) {
        if (!it.entry) continue;
        out.add((firstEntry ? '' : ',\n') + JSON.stringify(it.entry));
        firstEntry = false;
      } else if (!opts.summary) out.add(it.text + '\n');
    }
  };

  if (opts.json) out.add(`{"kallsyms":${JSON.stringify({ file: opts.kallsyms, symbols: table!.size })},\n"entries":[\n`);
  for (const f of inputs) {
    const sniffed = await eachLine(
      f,
      (buf, start, end) => {
        const items = sym.pushBytes(buf, start, end);
        if (items.length) emit(items);
      },
      () => out.flush(),
    );
    const name = f === '-' ? 'stdin' : f;
    if (sniffed.encoding !== 'utf8') inputWarnings.push(`${name} is ${sniffed.encoding === 'utf16le' ? 'UTF-16LE' : 'UTF-16BE'} text: decoded`);
    if (sniffed.binary) inputWarnings.push(`${name} looks binary (NUL or control bytes): its lines were read as text and may be garbage`);
  }
  inputWarnings.forEach(warn);
  if (!table) sym.setTable(await loading);
  emit(sym.end());
  // text shows the first rows of each table: only those are made (a big log has ~250k locations)
  const report = sym.report(opts.json ? Infinity : top);
  // the verdict's warnings were said already; the rest now: the same set in every mode
  for (const w of report.warnings) if (!sym.announced.includes(w)) warn(w);
  report.warnings = [...inputWarnings, ...report.warnings];
  if (opts.json) {
    const { byFunction, byLocation, ...rest } = report;
    out.add(`\n],\n"summary":${JSON.stringify(rest)},\n"byFunction":${JSON.stringify(byFunction)},\n"byLocation":${JSON.stringify(byLocation)}}\n`);
  } else {
    out.add((opts.summary ? '' : '\n') + formatReport(report, top) + '\n');
  }
  await out.flush();
}

async function tableError(path: string, err: unknown): Promise<Error> {
  if (err instanceof KallsymsError) return new UsageError(`--kallsyms ${path}: ${err.message}`);
  // zlib says "unexpected end of file" without saying which
  if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) return new UsageError(`--kallsyms ${path}: a damaged or cut-short gzip file (${(err as Error).message})`);
  // files.ts reads recordings too: loaded only for the error it words
  return (await import('./files.js')).fileError(path, err, 'read');
}
