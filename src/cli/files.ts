/** Reading recordings and time bounds from the command line. */
import { existsSync } from 'node:fs';
import { UsageError } from '../filters.js';
import { readRecordingFile, RecordingError } from '../record.js';
import { loadRecording, type Recording } from '../recording.js';

export function openRecording(path: string): Recording {
  if (!existsSync(path)) throw new UsageError(`${path}: no such file`);
  try {
    return loadRecording(readRecordingFile(path));
  } catch (err) {
    if (err instanceof RecordingError) throw new UsageError(`${path}: ${err.message}`);
    throw err;
  }
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
