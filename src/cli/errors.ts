/**
 * The one place that turns an error into a message and an exit code:
 * 0 success (or Ctrl-C), 1 runtime error, 2 usage. Commands and the core
 * throw; they never exit.
 */
import { CommanderError } from 'commander';
import { UsageError } from '../capture/filters.js';
import { KallsymsError } from '../model/kallsyms.js';
import { DroptraceError } from '../capture/native.js';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      return EXIT_OK;
    }
    return EXIT_USAGE;
  }
  if (err instanceof UsageError) return EXIT_USAGE;
  return EXIT_RUNTIME;
}

/** Prints what went wrong (once, to stderr) and returns the exit code. */
export function handleError(err: unknown, verbose = false): number {
  const code = exitCodeFor(err);
  if (err instanceof CommanderError) return code; // commander already printed it
  const write = (s: string) => process.stderr.write(s.endsWith('\n') ? s : s + '\n');
  if (err instanceof DroptraceError) {
    write(`droptrace: ${err.message}`);
    if (err.tried && err.tried.includes(';')) write(`  attach paths tried: ${err.tried}`);
    if (verbose && err.log) write(err.log.trimEnd());
  } else if (err instanceof UsageError || err instanceof KallsymsError) {
    write(`droptrace: ${err.message}`);
  } else if (err instanceof Error) {
    write(`droptrace: ${err.message}`);
    if (verbose || process.env.DROPTRACE_DEBUG) write(err.stack ?? '');
  } else {
    write(`droptrace: ${String(err)}`);
  }
  return code;
}
