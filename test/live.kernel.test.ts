/**
 * `droptrace live` driven through a real terminal (tmux), on a namespace
 * scenario that drops at a known site; and `--plain` read back by the
 * dropwatch parser. Needs root, BTF and tmux.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseLine } from '../src/formats/droplog.js';
import { start } from './helpers/cli.js';
import { sleep, Tmux } from './helpers/tmux.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';
import { canRunKernelTests } from './helpers/kernel.js';

const canRun = canRunKernelTests('the live tests', ['tmux']);

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
    const hdr = rows.findIndex((l) => /COUNT\s+\/s 10s\s+TREND\s+LOCATION\s+REASON\s+IFACE\s+NETNS/.test(l));
    expect(hdr).toBeGreaterThan(0);
    // the namespace by its name, cut from the front where it must be: its end is what tells namespaces apart
    const shown = rows[hdr + 1].trim().split(/\s+/).pop()!;
    expect(ns.endsWith(shown.replace(/^…/, ''))).toBe(true);
    expect(rows[hdr + 1]).toMatch(/^\s+25\s+\S+\s.*__udp4_lib_rcv\+0x[0-9a-f]+\s+NO_SOCKET\s+lo\s+\S+\s*$/);
    // the line under the header says what it means and what to run
    expect(rows[hdr - 1]).toMatch(/^▶ NO_SOCKET at __udp4_lib_rcv\+0x[0-9a-f]+ on lo: nothing is listening/);
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
    await tmux.waitFor((x) => !/Esc: back/.test(x), 'the table again');

    tmux.keys('c');
    await tmux.waitFor((x) => /drops 0 /.test(x), 'cleared counts');

    tmux.keys('q');
    const until = Date.now() + 8000;
    while (!tmux.exitCode() && Date.now() < until) await sleep(100);
    expect(tmux.exitCode()).toBe('EXIT=0');
    s = tmux.screen();
    // the terminal is back: no droptrace screen, the summary printed after it
    expect(s).not.toMatch(/\/s 10s/);
    expect(s).toMatch(/droptrace: 25 drops counted in the kernel, 25 events delivered, 0 lost/);
  });

  it.each([
    [80, 24],
    [140, 40],
  ])('at %ix%i: names not inodes, rates that rise with a flood and fade after, overlays that cover what is under them', async (cols, lines) => {
    const ns = lab.netns('screen-with-a-long-name');
    tmux = new Tmux();
    tmux.start(['--netns', ns, '--interval', '0.3'], 'NO_COLOR=1', [cols, lines]);
    await tmux.ready();
    const rateOf = (screen: string) => {
      const row = screen.split('\n').find((l) => /^\s+\d+\s/.test(l) && /__udp4_lib_rcv\+0x/.test(l))!;
      return Number(row.trim().split(/\s+/)[1]);
    };
    // a steady trickle for 3 s: the rate column is not 0.0 while it lasts
    for (let i = 0; i < 6; i++) {
      lab.udp(ns, '127.0.0.1', 9, 20);
      await sleep(500);
    }
    const during = await tmux.waitFor((x) => /__udp4_lib_rcv\+0x/.test(x), 'the drop site');
    const r1 = rateOf(during);
    expect(r1).toBeGreaterThan(1);
    for (const line of during.split('\n')) expect(line.length).toBeLessThanOrEqual(cols);
    const row = during.split('\n').find((l) => /^\s+\d+\s/.test(l) && /__udp4_lib_rcv/.test(l))!;
    const shown = row.trim().split(/\s+/).pop()!;
    // the namespace's name (its end, when cut), never a bare inode
    expect(shown).not.toMatch(/^\d+$/);
    expect(ns.endsWith(shown.replace(/^…/, ''))).toBe(true);
    // fading, not gone: 3 s later the average is lower but still says something happened
    await sleep(3000);
    const r2 = rateOf(tmux.screen());
    expect(r2).toBeGreaterThan(0);
    expect(r2).toBeLessThan(r1);

    for (const key of ['?', 'Enter']) {
      tmux.keys(key);
      const open = await tmux.waitFor((x) => (key === '?' ? /droptrace live — keys/ : /\(Esc: back, ↑↓: scroll\)/).test(x), `the ${key} overlay`);
      const body = open.split('\n').slice(0, lines - 1).join('\n');
      // nothing of the table or the recent drops shows through, at the edges or anywhere
      expect(body).not.toMatch(/Recent drops:|COUNT\s+\/s 10s|^Re|…\s*$/m);
      tmux.keys('Escape');
      await sleep(300);
      await tmux.waitFor((x) => /Recent drops:/.test(x), 'the table again');
    }
    tmux.keys('q');
  });

  it('SIGTERM restores the terminal and exits 0', async () => {
    tmux = new Tmux();
    tmux.start([]);
    await tmux.ready();
    await tmux.waitFor((x) => /\/s 10s/.test(x), 'the screen');
    const pid = Number(readFileSync(tmux.readyFile, 'utf8'));
    process.kill(pid, 'SIGTERM');
    const until = Date.now() + 8000;
    while (!tmux.exitCode() && Date.now() < until) await sleep(100);
    expect(tmux.exitCode()).toBe('EXIT=0');
    expect(tmux.screen()).not.toMatch(/\/s 10s/);
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
