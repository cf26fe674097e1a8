/**
 * Files named on the command line: recordings to read, outputs to create,
 * time bounds. Every error names the file and says what to do.
 */
import { closeSync, constants, lstatSync, openSync, statSync, unlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { UsageError } from '../capture/filters.js';
import { FileSource, RecordingError } from '../formats/scan.js';
import { RecordingReader, type RecordingTables } from '../formats/recording.js';
import type { HtmlHeader } from '../views/report-html.js';
import { droptraceVersion } from './version.js';

/** What a report page says about the recording it comes from (read after the pass: stats come last). */
export function htmlHeader(path: string, t: RecordingTables, damage: string | null): HtmlHeader {
  const m = t.meta;
  return { file: basename(path), host: m.host, kernel: m.kernel, startTime: m.startTime, attach: m.attach, filters: m.filters, sample: m.sample ?? 1, lost: t.stats?.lost ?? null, damage, tool: `droptrace ${droptraceVersion()}` };
}

/** Opens a recording for one streaming pass; its META is read already. */
export function openRecording(path: string): RecordingReader {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw fileError(path, err, 'read');
  }
  if (st.isDirectory()) throw new UsageError(`${path}: is a directory, not a recording (droptrace record -o FILE makes one)`);
  let src: FileSource;
  try {
    src = new FileSource(path);
  } catch (err) {
    throw fileError(path, err, 'read');
  }
  try {
    return new RecordingReader(src);
  } catch (err) {
    src.close();
    if (err instanceof RecordingError) throw new UsageError(`${path}: ${err.message}`);
    throw err;
  }
}

/** A file error as one sentence that names the file. */
export function fileError(path: string, err: unknown, doing: 'read' | 'write'): Error {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new UsageError(doing === 'read' ? `${path}: no such file` : `${path}: its directory does not exist`);
    case 'EISDIR':
      return new UsageError(`${path}: is a directory`);
    case 'EACCES':
    case 'EPERM':
      return new UsageError(`${path}: permission denied (${doing === 'read' ? 'run as a user who may read it' : 'choose a directory you may write to'})`);
    case 'EEXIST':
      return new UsageError(`${path}: exists already; choose another name, or add --force to replace it`);
    case 'ELOOP':
      return new UsageError(`${path}: is a symbolic link; droptrace does not write through links (name the target itself)`);
    case 'ENOSPC':
      return new Error(`${path}: the disk is full`);
    default:
      return new Error(`${path}: ${(err as Error).message}`);
  }
}

/**
 * Creates an output file for writing: mode 0600 (drops carry addresses and
 * flows), never through a symbolic link, never over an existing file unless
 * force (then only over a regular file). "-" is standard output where the
 * caller allows it. Returns the file descriptor.
 */
export function createOutput(path: string, opts: { force?: boolean; stdoutOk?: boolean } = {}): number {
  if (path === '-') {
    if (!opts.stdoutOk) throw new UsageError('"-" (standard output) cannot be used here: name a file');
    return 1;
  }
  if (opts.force) {
    const st = lstatSafe(path);
    if (st?.isSymbolicLink()) throw fileError(path, Object.assign(new Error('link'), { code: 'ELOOP' }), 'write');
    if (st && !st.isFile()) throw new UsageError(`${path}: exists and is not a regular file; --force replaces only files`);
    if (st) {
      try {
        unlinkSync(path);
      } catch (err) {
        throw fileError(path, err, 'write');
      }
    }
  }
  try {
    return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    // O_EXCL refuses a link (even a dangling one) as "exists": say what it is
    const isLink = (err as NodeJS.ErrnoException).code === 'EEXIST' && lstatSafe(path)?.isSymbolicLink();
    throw fileError(path, isLink ? Object.assign(new Error('link'), { code: 'ELOOP' }) : err, 'write');
  }
}

function lstatSafe(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

export function closeOutput(fd: number): void {
  if (fd > 2) closeSync(fd);
}

/** An ISO-8601 time, or seconds after the recording's start ("30", "+30", "30s"). */
export function parseWhen(text: string | undefined, start: number, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const rel = /^\+?(\d+(?:\.\d+)?)s?$/.exec(text);
  if (rel) return start + Number(rel[1]) * 1000;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`${flag} ${text}: expected seconds after the start (e.g. 30) or an ISO-8601 time`);
  return t;
}
