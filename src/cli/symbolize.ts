/** `droptrace symbolize`: resolve and rank dropwatch/perf/ftrace logs against a kallsyms snapshot. */
import { existsSync, statSync } from 'node:fs';
import { Command } from 'commander';
import { UsageError } from '../capture/filters.js';
import { KallsymsError, SymbolTable } from '../model/kallsyms.js';
import { fileError } from './files.js';
import { lineBatches, readMaybeGzipBuffer } from '../formats/input.js';
import { formatReport, Symbolizer, type Emitted } from '../analysis/symbolize.js';

interface Options {
  kallsyms: string;
  summary?: boolean;
  json?: boolean;
  top: string;
}

/** Writes with backpressure: a 1 GB log must not pile up in memory. */
class Out {
  private buf = '';
  constructor(private readonly stream: NodeJS.WritableStream) {}
  async write(s: string): Promise<void> {
    this.buf += s;
    if (this.buf.length >= 1 << 16) await this.flush();
  }
  async flush(): Promise<void> {
    if (!this.buf) return;
    const ok = this.stream.write(this.buf);
    this.buf = '';
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
Every printed address is re-resolved against --kallsyms; where the log's own name disagrees
(old dropwatch misnamed module addresses, e.g. __brk_limit+36c27a68) both are shown. When the
snapshot is from another boot, the KASLR slide is computed from any line with both a name and
an address and applied; without such a line droptrace warns instead.

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

  let table: SymbolTable;
  try {
    table = SymbolTable.parse(readMaybeGzipBuffer(opts.kallsyms));
  } catch (err) {
    if (err instanceof KallsymsError) throw new UsageError(`--kallsyms ${opts.kallsyms}: ${err.message}`);
    // zlib says "unexpected end of file" without saying which
    if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) throw new UsageError(`--kallsyms ${opts.kallsyms}: a damaged or cut-short gzip file (${(err as Error).message})`);
    throw fileError(opts.kallsyms, err, 'read');
  }

  const sym = new Symbolizer(table, { text: !opts.json && !opts.summary, entries: !!opts.json });
  const out = new Out(process.stdout);
  let firstEntry = true;
  const emit = async (items: Emitted[]) => {
    for (const it of items) {
      if (opts.json) {
        if (!it.entry) continue;
        await out.write((firstEntry ? '' : ',\n') + JSON.stringify(it.entry));
        firstEntry = false;
      } else if (!opts.summary) {
        await out.write(it.text + '\n');
      }
    }
  };

  if (opts.json) await out.write(`{"kallsyms":${JSON.stringify({ file: opts.kallsyms, symbols: table.size })},\n"entries":[\n`);
  for (const f of inputs) {
    for await (const batch of lineBatches(f)) {
      for (const line of batch) {
        const items = sym.push(line);
        if (items.length) await emit(items);
      }
    }
  }
  await emit(sym.end());
  const report = sym.report();
  if (opts.json) {
    const { byFunction, byLocation, ...rest } = report;
    await out.write(`\n],\n"summary":${JSON.stringify(rest)},\n"byFunction":${JSON.stringify(byFunction)},\n"byLocation":${JSON.stringify(byLocation)}}\n`);
  } else {
    await out.write((opts.summary ? '' : '\n') + formatReport(report, top) + '\n');
  }
  await out.flush();
  // text output carries the warnings in its report; JSON keeps stdout pure, so say them on stderr
  if (opts.json) for (const w of report.warnings) process.stderr.write(`droptrace: warning: ${w}\n`);
}
