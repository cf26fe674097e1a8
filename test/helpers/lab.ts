/** scripts/lab driven by a test: its own namespace prefix, every call checked. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, start } from './cli.js';

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

/** What the lab tests read of a diagnose finding (--json). */
export interface LabFinding {
  location: string;
  cause: string | null;
  counter: { key: string; delta: number } | null;
  function: string | null;
  reason: string | null;
  interfaces: string[];
  netns: { label: string };
  flows: Array<{ flow: string }>;
  hint: { id: string } | null;
  evidence: Array<{ verdict: string; text: string }>;
  benign: { rule: string } | null;
}

/** Runs an unfiltered diagnose while the pods restart and the fault's traffic flows. */
export async function labDiagnose(lab: (...args: string[]) => string, fault: string): Promise<{ findings: LabFinding[]; benign: Array<{ rule: string; total: number }> }> {
  const t = start(['diagnose', '--json', '--duration', '4']);
  await t.ready();
  lab('traffic', 'pod-restart');
  lab('traffic', fault);
  const res = await t.exited;
  if (res.code !== 0) throw new Error(`diagnose exited ${res.code}: ${res.stderr}`);
  return JSON.parse(res.stdout);
}
