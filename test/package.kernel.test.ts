/**
 * The npm package, installed as a node gets it: `npm pack` of this checkout, installed from the
 * tarball into an empty project with --omit=dev and with no compiler, bpftool or cmake on the
 * PATH; then `npx droptrace check` and a real trace of drops in a namespace, from there. Then the
 * fallback: the same installed package builds its addon from the sources it ships.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, kernelCount, run, startBin } from './helpers/cli.js';
import { Lab } from './helpers/netns.js';
import { installInto, pack, pathWithoutBuildTools } from './helpers/pack.js';
import { canRunKernelTests } from './helpers/kernel.js';

const canRun = canRunKernelTests('the package tests');

describe.skipIf(!canRun)('the npm package', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-pack-'));
  let tarball = '';
  let app = '';
  let env: NodeJS.ProcessEnv = {};
  const installed = () => join(app, 'node_modules', 'droptrace');

  beforeAll(() => {
    tarball = pack(dir);
    env = { ...process.env, PATH: pathWithoutBuildTools(join(dir, 'bin')) };
    app = installInto(join(dir, 'app'), tarball, env);
  }, 240_000);
  afterAll(() => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds the compiled JS and the prebuilt addon, and no tests, fixtures or kallsyms snapshots', () => {
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(files).toContain('package/dist/cli/index.js');
    expect(files).toContain('package/prebuilds/linux-x64/droptrace.napi.glibc.node');
    expect(files).toContain('package/native/bpf/droptrace.bpf.c');
    for (const f of files) {
      expect(f).not.toMatch(/\.test\.|\/test\/|fixtures|kallsyms\/|\.kallsyms|^package\/dist\/.*\.map$|^package\/build\//);
    }
  });

  it('installs with no build tool on the PATH, builds nothing, and `npx droptrace check` passes', async () => {
    expect(spawnSync('sh', ['-c', 'command -v clang || command -v bpftool || command -v cmake || command -v gcc'], { env }).status).not.toBe(0);
    expect(existsSync(join(installed(), 'build'))).toBe(false);
    const res = await run(['npx', '--no-install', 'droptrace', 'check'], { cwd: app, env });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/tracepoint\s+works \((tp_btf|raw_tp)\)/);
    expect(res.stdout).toContain(`addon             yes ${join(installed(), 'prebuilds', 'linux-x64', 'droptrace.napi.glibc.node')}`);
  });

  it('traces real drops from the installed package: as many events as the kernel counted Udp NoPorts', async () => {
    const ns = lab.netns('pkg');
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = startBin(join(app, 'node_modules', '.bin', 'droptrace'), ['trace', '--json', '--netns', ns, '--port', '9431'], { cwd: app, env });
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9431, 12);
    const res = await t.stop();
    expect(res.code).toBe(0);
    const drops = jsonLines<{ reason: string; function: string; dport: number }>(res.stdout);
    expect(drops).toHaveLength(lab.snmp(ns, 'Udp', 'NoPorts') - before);
    expect(drops).toHaveLength(12);
    expect(kernelCount(res.stderr)).toBe(12);
    for (const d of drops) expect([d.function, d.dport]).toEqual(['__udp4_lib_rcv', 9431]);
  });

  it('where no prebuild fits, the installed package builds its addon from the sources it ships', async () => {
    const build = await run(['npm', 'run', '--silent', 'build:native'], { cwd: installed() });
    expect(build.code, build.stderr).toBe(0);
    expect(existsSync(join(installed(), 'build', 'Release', 'droptrace.node'))).toBe(true);
    // node-gyp-build prefers build/Release: the source build is the one check loads now
    const res = await run(['npx', '--no-install', 'droptrace', 'check'], { cwd: app, env });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`addon             yes ${join(installed(), 'build', 'Release', 'droptrace.node')}`);
    expect(res.stdout).toMatch(/tracepoint\s+works/);
  }, 240_000);
});
