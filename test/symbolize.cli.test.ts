/**
 * `droptrace symbolize` as a user runs it: real files, exit codes, stdin,
 * gzip, and the round trip from real drops on this kernel.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, jsonLines, ROOT, run, start } from './helpers/cli.js';
import { Lab } from './helpers/netns.js';

const KALLSYMS = join(ROOT, 'kallsyms/vm-6.18.44-x86_64.kallsyms.gz');
const fixture = (name: string) => join(ROOT, 'test/fixtures', name);
const dir = mkdtempSync(join(tmpdir(), 'droptrace-sym-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const symbolize = (args: string[], input?: string) =>
  input === undefined
    ? run([process.execPath, BIN, 'symbolize', ...args])
    : new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        try {
          const stdout = execFileSync(process.execPath, [BIN, 'symbolize', ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
          resolve({ code: 0, stdout, stderr: '' });
        } catch (e) {
          const err = e as { status: number; stdout: string; stderr: string };
          resolve({ code: err.status, stdout: err.stdout, stderr: err.stderr });
        }
      });

describe('droptrace symbolize', () => {
  it('annotates and ranks a mixed dropwatch log (text)', async () => {
    const res = await symbolize(['-k', KALLSYMS, fixture('dropwatch-mixed.constructed.txt')]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('3 drops at location 0xffffffff82046f4c  => __udp4_lib_rcv+0x4bc');
    expect(res.stdout).toMatch(/By function:\n.*\n\s+8\s+36\.4%\s+ttl_value_is_too_small \[hardware\]/);
    expect(res.stdout).toContain('kallsyms: matches the log');
  });

  it('--summary prints only the tables; --json is one parseable document', async () => {
    const sum = await symbolize(['--summary', '-k', KALLSYMS, fixture('perf-script-raw-6.18.txt')]);
    expect(sum.stdout).not.toContain('skb:kfree_skb');
    expect(sum.stdout).toMatch(/By location:/);
    const js = await symbolize(['--json', '-k', KALLSYMS, fixture('trace_pipe-6.18.txt')]);
    const doc = JSON.parse(js.stdout);
    expect(doc.entries).toHaveLength(23);
    expect(doc.byFunction[0]).toMatchObject({ key: 'ip6_mc_input', count: 17 });
    expect(doc.summary.unrecognised).toBe(0);
  });

  it('reads the log from stdin and a gzip kallsyms', async () => {
    const res = await symbolize(['--summary', '-k', KALLSYMS], '5 drops at location 0xffffffff81f63638\n');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/5 100\.0%\s+nft_do_chain/);
  });

  it('a cut-short gzip kallsyms or a directory is named in a usage error', async () => {
    const cut = join(dir, 'cut.kallsyms.gz');
    writeFileSync(cut, readFileSync(KALLSYMS).subarray(0, 50_000));
    let res = await symbolize(['-k', cut], '1 drops at location 0xffffffff81f63638\n');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`--kallsyms ${cut}: a damaged or cut-short gzip file`);
    res = await symbolize(['-k', KALLSYMS, dir]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${dir}: is a directory`);
  });

  it('a kallsyms that exists but cannot be read is named with the reason, exit 1', async () => {
    // /proc/self/mem passes the existence check and fails the read (EIO): the worker's error is worded here
    const res = await symbolize(['--summary', '-k', '/proc/self/mem'], '1 drops at location 0xffffffff81f63638\n');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/\/proc\/self\/mem: EIO/);
  });

  it('exits 0 with a warning when the kallsyms does not match the log', async () => {
    const other = join(dir, 'System.map');
    writeFileSync(other, 'ffffffff81000000 T _stext\nffffffff81000100 T foo\nffffffff81001000 T _etext\n');
    const res = await symbolize(['-k', other, fixture('perf-script-raw-6.18.txt')]);
    expect(res.code).toBe(0);
    // warnings on stderr in every mode, the same set; JSON also carries them
    expect(res.stderr).toMatch(/warning: .*results are unreliable/);
    const js = await symbolize(['--json', '-k', other, fixture('perf-script-raw-6.18.txt')]);
    expect(js.code).toBe(0);
    expect(js.stderr).toBe(res.stderr);
    expect(JSON.parse(js.stdout).summary.warnings.join()).toMatch(/results are unreliable/);
  });

  it('reads a UTF-16 log (a Windows paste) after saying so, and warns of binary input', async () => {
    const text = readFileSync(fixture('dropwatch-mixed.constructed.txt'), 'utf8');
    const u16 = join(dir, 'utf16.txt');
    writeFileSync(u16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]));
    const a = await symbolize(['--summary', '-k', KALLSYMS, u16]);
    const b = await symbolize(['--summary', '-k', KALLSYMS, fixture('dropwatch-mixed.constructed.txt')]);
    expect(a.stderr).toMatch(/UTF-16LE text: decoded/);
    expect(a.stdout).toBe(b.stdout);
    const bin = join(dir, 'core');
    writeFileSync(bin, Buffer.concat([Buffer.alloc(4096, 0), Buffer.from('3 drops at location 0xffffffff82046f4c\n')]));
    const c = await symbolize(['--summary', '-k', KALLSYMS, bin]);
    expect(c.code).toBe(0);
    expect(c.stderr).toMatch(/looks binary/);
  });

  it.each([
    [['-k', '/nonexistent/kallsyms', '-'], /no such file/],
    [['-k', KALLSYMS, '/nonexistent/log'], /no such file/],
    [['-k', '-', '-'], /cannot both come from stdin/],
    [['--top', '0', '-k', KALLSYMS], /--top 0/],
  ])('exits 2 for unusable arguments %j', async (args, message) => {
    const res = await symbolize(args, '');
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it('exits 2 with the kptr_restrict fix for an all-zero kallsyms', async () => {
    const zeros = join(dir, 'zeros');
    writeFileSync(zeros, '0000000000000000 T _stext\n0000000000000000 t ip_rcv\n');
    const res = await symbolize(['-k', zeros, fixture('perf-script-raw-6.18.txt')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/kptr_restrict=0/);
  });

  it('a reader that goes away (| head) ends it quietly with exit 0, not a stack trace', async () => {
    // 200,000 lines of output: far more than a pipe holds, so writes go on after the reader left
    const log = join(dir, 'big.log');
    writeFileSync(log, '1 drops at location 0xffffffff82046f4c\n'.repeat(200_000));
    const child = spawn(process.execPath, [BIN, 'symbolize', '-k', KALLSYMS, log], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const first: string = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(String(d))));
    child.stdout.destroy();
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(first).toContain('__udp4_lib_rcv+0x4bc');
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});

const root = process.getuid?.() === 0 && existsSync('/sys/kernel/btf/vmlinux');
describe.skipIf(!root)('round trip on this kernel', () => {
  const lab = new Lab();
  afterAll(() => lab.destroy());

  it('drops from trace --json, printed as dropwatch raw lines, symbolize back to the same symbols', async () => {
    const ns = lab.netns('rt');
    const t = start(['trace', '--json', '--netns', ns]);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 7777, 4);
    const res = await t.stop();
    const drops = jsonLines<{ location: string; symbol: string }>(res.stdout);
    expect(drops.length).toBeGreaterThanOrEqual(4);
    const log = drops.map((d) => `1 drops at location ${d.location}`).join('\n') + '\n';
    const sym = await symbolize(['--json', '-k', '/proc/kallsyms'], log);
    expect(sym.code).toBe(0);
    const doc = JSON.parse(sym.stdout);
    expect(doc.entries.map((e: { symbol: string }) => e.symbol)).toEqual(drops.map((d) => d.symbol));
  });
});
