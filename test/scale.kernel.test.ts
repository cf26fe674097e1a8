/**
 * A flood's recording read back by every reader (report, diff, export,
 * live --replay) with counts equal to the kernel's, replays that end by
 * themselves, output files created safely, and usage errors that come
 * before the privilege check. Needs root and BTF.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, run, start } from './helpers/cli.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';
import { canRunKernelTests } from './helpers/kernel.js';

const canRun = canRunKernelTests('the scale tests');

const dt = (args: string[], opts = {}) => run([process.execPath, BIN, ...args], opts);

describe.skipIf(!canRun)('a flood recording, read back by every reader', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-scale-'));
  const flood = join(dir, 'flood');
  const big = join(dir, 'flood.dtr');
  let kernel = 0;
  let events = 0;

  beforeAll(async () => {
    execFileSync('cc', ['-O2', '-o', flood, join(ROOT, 'scripts/flood/flood.c')]);
    const ns = lab.netns('sc');
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = start(['record', '-o', big, '--netns', ns, '--snaplen', '64']);
    await t.ready();
    await new Promise<void>((resolve, reject) => {
      const p = spawn('ip', ['netns', 'exec', ns, flood, '127.0.0.1', '9', '4'], { stdio: 'ignore' });
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`flood exited ${code}`))));
    });
    const res = await t.stop();
    kernel = lab.snmp(ns, 'Udp', 'NoPorts') - before;
    const m = /recorded (\d+) events .* the kernel counted (\d+)\)/.exec(res.stderr)!;
    events = Number(m[1]);
    expect(Number(m[2])).toBe(kernel);
  }, 120_000);
  afterAll(() => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    expect(await ourProgramsSettled()).toEqual([]);
  });

  it('holds at least 500,000 events', () => {
    expect(events).toBeGreaterThanOrEqual(500_000);
  });

  it('report: the kernel count, from the file alone', async () => {
    const res = await dt(['report', big, '--json']);
    expect(res.code).toBe(0);
    const j = JSON.parse(res.stdout);
    expect(j.report.total).toBe(kernel);
    expect(j.report.events).toBe(events);
    expect(j.damage.note).toBeNull();
  }, 120_000);

  it('diff against itself: every row the same', async () => {
    const res = await dt(['diff', big, big, '--json']);
    expect(res.code).toBe(0);
    const j = JSON.parse(res.stdout);
    expect(j.a.total).toBe(kernel);
    expect(j.rows.length).toBeGreaterThan(0);
    expect(j.rows.every((r: { change: string }) => r.change === 'same')).toBe(true);
  }, 120_000);

  it('export: every recorded packet', async () => {
    const out = join(dir, 'flood.pcapng');
    const res = await dt(['export', big, '--pcapng', out]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`wrote ${events} packets to ${out}`);
    expect(statSync(out).size).toBeGreaterThan(events * 64);
  }, 120_000);

  it('live --replay --plain plays it all and ends by itself', async () => {
    const res = await dt(['live', '--replay', big, '--plain', '--speed', '1000', '--interval', '0.2']);
    expect(res.code).toBe(0);
    const total = res.stdout
      .split('\n')
      .filter(Boolean)
      .reduce((n, l) => n + Number(l.split(' ')[0]), 0);
    expect(total).toBe(kernel);
  }, 120_000);
});

describe.skipIf(!canRun)('replays end, files are created safely, usage comes first', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-files-'));
  const rec = join(dir, 'small.dtr');
  beforeAll(async () => {
    const ns = lab.netns('fs');
    const t = start(['record', '-o', rec, '--netns', ns, '--snaplen', '64']);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9, 7);
    await t.stop();
  });
  afterAll(() => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('live --replay --json ends with the recording, exit 0', async () => {
    const res = await dt(['live', '--replay', rec, '--json', '--speed', '100', '--interval', '0.1']);
    expect(res.code).toBe(0);
    const last = JSON.parse(res.stdout.trim().split('\n').pop()!);
    expect(last.total).toBe(7);
  });

  it.each([['--port', '53'], ['--host', '10.0.0.1'], ['--reason', 'NO_SOCKET']])('live --replay refuses %s with exit 2', async (flag, value) => {
    const res = await dt(['live', '--replay', rec, '--plain', flag, value]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${flag} cannot apply to --replay`);
  });

  it('an existing output is refused unless --force; then it is replaced 0600, never through a link', async () => {
    const out = join(dir, 'taken.pcapng');
    writeFileSync(out, 'precious', { mode: 0o644 });
    let res = await dt(['export', rec, '--pcapng', out]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${out}: exists already; choose another name, or add --force`);
    expect(readFileSync(out, 'utf8')).toBe('precious');
    res = await dt(['export', rec, '--pcapng', out, '--force']);
    expect(res.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const target = join(dir, 'target');
    writeFileSync(target, 'keep');
    const link = join(dir, 'link.pcapng');
    symlinkSync(target, link);
    for (const extra of [[], ['--force']]) {
      res = await dt(['export', rec, '--pcapng', link, ...extra]);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`${link}: is a symbolic link`);
    }
    expect(readFileSync(target, 'utf8')).toBe('keep');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('--pcapng - writes to standard output', async () => {
    const res = await dt(['export', rec, '--pcapng', '-']);
    expect(res.code).toBe(0);
    expect(existsSync(join(process.cwd(), '-'))).toBe(false);
    expect(res.stdout.length).toBeGreaterThan(7 * 64);
  });

  it('a directory or a missing file as input names the path', async () => {
    const d = join(dir, 'adir');
    mkdirSync(d);
    for (const cmd of [['report', d], ['export', d, '--pcapng', join(dir, 'x.pcapng')], ['live', '--replay', d, '--plain'], ['diff', rec, d]]) {
      const res = await dt(cmd);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`${d}: is a directory`);
    }
    const res = await dt(['report', join(dir, 'nope.dtr')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${join(dir, 'nope.dtr')}: no such file`);
  });

  it('a damaged file is said by every reader', async () => {
    const bad = join(dir, 'cut.dtr');
    const buf = readFileSync(rec);
    writeFileSync(bad, buf.subarray(0, buf.length - 30));
    for (const cmd of [['report', bad], ['export', bad, '--pcapng', join(dir, 'cut.pcapng')], ['live', '--replay', bad, '--plain', '--speed', '100'], ['diff', rec, bad]]) {
      const res = await dt(cmd);
      expect(res.code).toBe(0);
      expect(res.stderr).toMatch(/warning: .*cut\.dtr: the recording was cut short/);
    }
    const diff = await dt(['diff', rec, bad]);
    expect(diff.stdout).toMatch(/^B .*cut\.dtr: .*\(DAMAGED: the recording was cut short/m);
  });

  it('usage errors come before the privilege check: a normal user gets exit 2 and the real mistake', async () => {
    for (const args of [['trace', '--port', '70000'], ['live', '--plain', '--reason', 'NO_SOKET'], ['record', '-o', join(dir, 'u.dtr'), '--sample', '0'], ['diagnose', '--host', '10.0.0.300'], ['serve', '--count-entries', '10']]) {
      const res = await run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...args]);
      expect(res.code).toBe(2);
      expect(res.stderr).not.toContain('needs root');
    }
    const res = await run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'live', '--plain', '--reason', 'NO_SOKET']);
    expect(res.stderr).toContain('did you mean NO_SOCKET');
  });

  it('--count-entries, which the map-full advice names, exists on every tracing command', async () => {
    for (const cmd of ['trace', 'live', 'record', 'diagnose', 'serve']) {
      const res = await dt([cmd, '--help']);
      expect(res.stdout).toContain('--count-entries <n>');
    }
  });

  it('a bare droptrace prints its help on stderr and exits 2', async () => {
    const res = await dt([]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('Usage: droptrace');
  });
});
