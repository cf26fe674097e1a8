/** droptrace's version, from package.json next to dist/. */
import { readFileSync } from 'node:fs';

export function droptraceVersion(): string {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}
