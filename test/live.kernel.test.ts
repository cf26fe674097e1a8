/**
 * `droptrace live` driven through a real terminal (tmux), on a namespace
 * scenario that drops at a known site; and `--plain` read back by the
 * dropwatch parser. Needs root, BTF and tmux.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseLine } from '../src/droplog.js';
import { start } from './helpers/cli.js';
import { sleep, Tmux } from './helpers/tmux.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';

const canRun = process.getuid?.() === 0 && existsSync('/sys/kernel/btf/vmlinux') && spawnSync('tmux', ['-V']).status === 0;
if (!canRun) console.warn('skipping live tests: they need root, /sys/kernel/btf/vmlinux and tmux');

describe.skipIf(!canRun)('droptrace live', () => {
  const lab = new Lab();
  let tmux: Tmux | null = null;
  afterEach(async () => {
    tmux?.kill();
    tmux = null;
    expect(await ourProgramsSettled()).toEqual([]);
  });
  afterAll(() => lab.destroy());

  it('shows the drop site, reason and interface with the kernel count, answers keys, and quits cleanly', async () => {
    const ns = lab.netns('live');
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    tmux = new Tmux();
    tmux.start(['--netns', ns, '--interval', '0.3'], 'NO_COLOR=1');
    await tmux.ready();
    lab.udp(ns, '127.0.0.1', 9, 25);
    const delta = lab.snmp(ns, 'Udp', 'NoPorts') - before;
    expect(delta).toBe(25);

    let s = await tmux.waitFor((x) => /^\s+25\s/m.test(x), 'a row with 25 drops');
    const rows = s.split('\n');
    const hdr = rows.findIndex((l) => /COUNT\s+RATE\/s\s+TREND\s+LOCATION/.test(l));
    expect(hdr).toBeGreaterThan(0);
    expect(rows[hdr + 1]).toMatch(/^\s+25\s+\S+\s.*__udp4_lib_rcv\+0x[0-9a-f]+\s+NO_SOCKET\s+lo\s*$/);
    expect(s).toMatch(/drops 25 /);
    expect(s).toMatch(/events 25 \(lost 0\)/);
    expect(s).toMatch(/Recent drops:\n.*__udp4_lib_rcv\+0x[0-9a-f]+ NO_SOCKET lo UDP 127\.0\.0\.1:\d+ > 127\.0\.0\.1:9/);

    tmux.keys('g');
    s = await tmux.waitFor((x) => /group: function/.test(x), 'group: function');
    expect(s).toMatch(/^\s+25\s.*__udp4_lib_rcv\s+NO_SOCKET/m);
    tmux.keys('g');
    s = await tmux.waitFor((x) => /group: reason/.test(x), 'group: reason');
    expect(s).toMatch(/^\s+25\s.*NO_SOCKET\s+__udp4_lib_rcv/m);

    tmux.keys('s');
    await tmux.waitFor((x) => /sort: count/.test(x), 'sort: count');

    tmux.keys('p');
    await tmux.waitFor((x) => /\[PAUSED\]/.test(x), 'PAUSED');
    tmux.keys('p');
    await tmux.waitFor((x) => !/\[PAUSED\]/.test(x), 'unpaused');

    tmux.keys('Enter');
    s = await tmux.waitFor((x) => /reason: NO_SOCKET/.test(x), 'the detail view');
    expect(s).toMatch(/total 25 drops/);
    expect(s).toMatch(/Locations:\n\s+25\s+__udp4_lib_rcv\+0x/);
    tmux.keys('Escape');
    await sleep(300); // Escape followed at once by a key reads as Alt-key
    await tmux.waitFor((x) => !/Esc to go back/.test(x), 'the table again');

    tmux.keys('c');
    await tmux.waitFor((x) => /drops 0 /.test(x), 'cleared counts');

    tmux.keys('q');
    const until = Date.now() + 8000;
    while (!tmux.exitCode() && Date.now() < until) await sleep(100);
    expect(tmux.exitCode()).toBe('EXIT=0');
    s = tmux.screen();
    // the terminal is back: no droptrace screen, the summary printed after it
    expect(s).not.toMatch(/RATE\/s/);
    expect(s).toMatch(/droptrace: 25 drops counted in the kernel, 25 events delivered, 0 lost/);
  });

  it('SIGTERM restores the terminal and exits 0', async () => {
    tmux = new Tmux();
    tmux.start([]);
    await tmux.ready();
    await tmux.waitFor((x) => /RATE\/s/.test(x), 'the screen');
    const pid = Number(readFileSync(tmux.readyFile, 'utf8'));
    process.kill(pid, 'SIGTERM');
    const until = Date.now() + 8000;
    while (!tmux.exitCode() && Date.now() < until) await sleep(100);
    expect(tmux.exitCode()).toBe('EXIT=0');
    expect(tmux.screen()).not.toMatch(/RATE\/s/);
  });

  it('--plain prints dropwatch-style lines that the dropwatch parser reads back to the same counts', async () => {
    const ns = lab.netns('plain');
    const t = start(['live', '--plain', '--interval', '0.3', '--netns', ns]);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9, 12);
    await sleep(700);
    lab.udp(ns, '127.0.0.1', 10, 5);
    const res = await t.stop('SIGINT');
    expect(res.code).toBe(0);
    const lines = res.stdout.split('\n').filter(Boolean);
    const parsed = lines.map((l) => parseLine(l));
    expect(parsed.every((p) => p && p.kind === 'dropwatch')).toBe(true);
    const total = parsed.reduce((n, p) => n + (p && 'count' in p ? p.count : 0), 0);
    expect(total).toBe(17);
    expect(lines[0]).toMatch(/^\d+ drops at __udp4_lib_rcv\+0x[0-9a-f]+ \(0xffffffff[0-9a-f]+\) \[NO_SOCKET\] lo$/);
    expect(res.stderr).toMatch(/droptrace: 17 drops counted in the kernel/);
  });
});
