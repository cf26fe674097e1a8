/**
 * The only place that wires commands to the core, and the only place that
 * sets the exit code.
 */
import { droptraceVersion } from './version.js';
import { Command } from 'commander';
import { handleError } from './errors.js';

/**
 * Each command's module, loaded only when it is the one run (or help lists them all): a
 * command pays for its own imports, not for every other command's (symbolize of a short log
 * would otherwise load the tracer, the live screen and the exporter).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  live: async () => (await import('./live.js')).liveCommand(),
  trace: async () => (await import('./trace.js')).traceCommand(),
  diagnose: async () => (await import('./diagnose.js')).diagnoseCommand(),
  record: async () => (await import('./record.js')).recordCommand(),
  report: async () => (await import('./report.js')).reportCommand(),
  diff: async () => (await import('./diff.js')).diffCommand(),
  export: async () => (await import('./export.js')).exportCommand(),
  serve: async () => (await import('./serve.js')).serveCommand(),
  symbolize: async () => (await import('./symbolize.js')).symbolizeCommand(),
  check: async () => (await import('./check.js')).checkCommand(),
};

/** The program with every command, or with only `only` when that names one. */
export async function buildProgram(only?: string): Promise<Command> {
  const names = only !== undefined && Object.hasOwn(COMMANDS, only) ? [only] : Object.keys(COMMANDS);
  const commands = await Promise.all(names.map((n) => COMMANDS[n]()));
  const program = new Command('droptrace')
    .description(
      'Trace where and why the Linux kernel drops packets (eBPF on skb:kfree_skb).\n' +
        'Answers: which function+offset, which drop reason, on which interface, netns and flow.',
    )
    .version(droptraceVersion())
    .showHelpAfterError('(run with --help for usage)');
  for (const c of commands) program.addCommand(c);
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
    // the first word that is not an option is the command (droptrace takes no global option with a value)
    const program = await buildProgram(argv.slice(2).find((a) => !a.startsWith('-')));
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
