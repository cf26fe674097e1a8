/**
 * The only place that wires commands to the core, and the only place that
 * sets the exit code.
 */
import { droptraceVersion } from './version.js';
import { Command } from 'commander';
import { checkCommand } from './check.js';
import { diagnoseCommand } from './diagnose.js';
import { diffCommand } from './diff.js';
import { handleError } from './errors.js';
import { exportCommand } from './export.js';
import { liveCommand } from './live.js';
import { recordCommand } from './record.js';
import { reportCommand } from './report.js';
import { serveCommand } from './serve.js';
import { symbolizeCommand } from './symbolize.js';
import { traceCommand } from './trace.js';


export function buildProgram(): Command {
  const program = new Command('droptrace')
    .description(
      'Trace where and why the Linux kernel drops packets (eBPF on skb:kfree_skb).\n' +
        'Answers: which function+offset, which drop reason, on which interface, netns and flow.',
    )
    .version(droptraceVersion())
    .showHelpAfterError('(run with --help for usage)')
    .addCommand(liveCommand())
    .addCommand(traceCommand())
    .addCommand(diagnoseCommand())
    .addCommand(recordCommand())
    .addCommand(reportCommand())
    .addCommand(diffCommand())
    .addCommand(exportCommand())
    .addCommand(serveCommand())
    .addCommand(symbolizeCommand())
    .addCommand(checkCommand());
  program.addHelpText(
    'after',
    `
Start with:
  droptrace check                 can this kernel be traced, and how?
  droptrace live                  a top for drops: where, why, how fast, right now
  droptrace trace --port 2483     every drop touching port 2483, with its reason
  droptrace diagnose --port 2483  watch 10 s, then: what drops it, the evidence, what to run next
  droptrace symbolize -k node.kallsyms dropwatch.log   make sense of a pasted dropwatch log

Exit codes: 0 success or Ctrl-C, 1 runtime error, 2 usage error.`,
  );
  const exitOverride = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(exitOverride);
  };
  exitOverride(program);
  return program;
}

/**
 * A reader that goes away (`droptrace report x | head`) ends the output, as
 * SIGPIPE ends other Unix tools: quietly. A command that must finish its own
 * way first (trace stops its tracer and prints its summary) listens too.
 */
function quietOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (process.stdout.listenerCount('error') === 1) process.exit(process.exitCode ?? 0);
  });
}

async function main(argv: string[]): Promise<void> {
  quietOnClosedStdout();
  const verbose = argv.includes('-v') || argv.includes('--verbose');
  try {
    const program = buildProgram();
    if (argv.length <= 2) {
      // a bare `droptrace` is a usage error, like any other missing argument
      program.outputHelp({ error: true });
      process.exitCode = 2;
      return;
    }
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = handleError(err, verbose);
  }
}

await main(process.argv);
