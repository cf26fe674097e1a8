/**
 * The native build as a user's machine runs it: the CMake graph (cmake-js) that `npm ci`
 * used for this checkout, and the binding.gyp fallback for a machine without cmake, built
 * from a copy of the sources; both addons load and agree on the event layout. No root needed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, run } from './helpers/cli.js';

const canRun = existsSync('/sys/kernel/btf/vmlinux') && spawnSync('sh', ['-c', 'command -v node-gyp && command -v clang && command -v bpftool']).status === 0;
if (!canRun) console.warn('skipping the build tests: they need BTF, clang, bpftool and node-gyp on PATH (npm puts its own there for npm test)');

describe.skipIf(!canRun)('the native build', () => {
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-build-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const require = createRequire(import.meta.url);

  it('this checkout was built by cmake-js, and node-gyp is no runtime dependency', () => {
    expect(existsSync(join(ROOT, 'build', 'CMakeCache.txt'))).toBe(true);
    const prod = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' });
    expect(prod).not.toMatch(/node_modules\/node-gyp$/m);
    expect(prod).toMatch(/node_modules\/cmake-js$/m);
  });

  it('binding.gyp builds the same addon without cmake', async () => {
    for (const p of ['native', 'scripts', 'binding.gyp', 'package.json', 'CMakeLists.txt']) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const r = await run([join(dir, 'scripts', 'build-native')], { cwd: dir, env: { ...process.env, DROPTRACE_BUILD: 'gyp' } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(dir, 'build', 'CMakeCache.txt'))).toBe(false);
    const gyp = require(join(dir, 'build', 'Release', 'droptrace.node'));
    const cmake = require(join(ROOT, 'build', 'Release', 'droptrace.node'));
    expect(gyp.layout()).toEqual(cmake.layout());
    expect(Object.keys(gyp).sort()).toEqual(Object.keys(cmake).sort());
  }, 320_000);
});
