/** scripts/lab driven by a test: its own namespace prefix, every call checked. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './cli.js';

export const LAB = join(ROOT, 'scripts', 'lab');

/** The lab under this prefix: run(args…) fails the test on a non-zero exit; env for other calls. */
export function labScript(prefix: string): { run: (...args: string[]) => string; env: NodeJS.ProcessEnv } {
  const env = { ...process.env, DT_LAB_PREFIX: prefix, NODE: process.execPath };
  const run = (...args: string[]) => {
    const r = spawnSync(LAB, args, { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`lab ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  return { run, env };
}
