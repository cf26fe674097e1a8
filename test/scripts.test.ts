/**
 * The benchmark scripts import the compiled modules by path: a module that
 * moves or a function that goes must fail here, not the next time someone
 * measures.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';

describe('benchmark scripts', () => {
  it('bench-userspace runs every case on a small input', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/bench-userspace.mjs'), '8192', '--json'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { events: number; results: Array<{ name: string; eventsPerSec: number }> };
    expect(out.events).toBe(8192);
    expect(out.results.map((x) => x.name)).toContain('JSON line as bytes (trace --json)');
    for (const x of out.results) expect(x.eventsPerSec).toBeGreaterThan(0);
  });
});
