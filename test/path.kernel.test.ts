/**
 * --path on the running kernel, tracepoints only: UDP from namespace A to namespace B over a
 * veth pair, dropped by an nftables rule in B, traced with a port filter and no namespace
 * filter. Every drop's path must show the packet leaving a0 in A and arriving on b0 in B, in
 * time order, then the local route; a packet made where it dies has an empty path; without
 * --path nothing changes; record keeps the paths for report --paths and the pcapng comments.
 * The tunnel's path (pod → bridge → VXLAN → the other host) is checked in tunnel.kernel.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DropRecord } from '../src/model/drop.js';
import { BIN, jsonLines, kernelCount, run, start } from './helpers/cli.js';
import { canRunKernelTests } from './helpers/kernel.js';
import { Lab, sh } from './helpers/netns.js';
import { Tmux } from './helpers/tmux.js';

const canRun = canRunKernelTests('the path tests', ['nft']);
const PORT = 7791;
const OUT_PORT = 7792;
const SENT = 20;

/** A namespace's inode, as events name it. */
const inode = (ns: string) => Number(sh('stat', ['-L', '-c', '%i', `/run/netns/${ns}`]).trim());

/** The position of the first step of this kind on this device in this namespace, or -1. */
const stepAt = (d: DropRecord, kind: string, ifname: string, netns: number) => d.path!.findIndex((s) => s.kind === kind && s.ifname === ifname && s.netns === netns);

describe.skipIf(!canRun)('the path of a dropped packet (--path)', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-path-'));
  let A = '';
  let B = '';
  beforeAll(() => {
    A = lab.netns('a');
    B = lab.netns('b');
    lab.veth(A, 'a0', B, 'b0');
    lab.exec(A, 'ip', ['addr', 'add', '10.79.0.1/24', 'dev', 'a0']);
    lab.exec(B, 'ip', ['addr', 'add', '10.79.0.2/24', 'dev', 'b0']);
    lab.exec(B, 'nft', [`add table inet pathtest; add chain inet pathtest in { type filter hook input priority 0; }; add rule inet pathtest in udp dport ${PORT} counter drop`]);
    // a packet A makes and drops on its own way out: it dies before any device sees it
    lab.exec(A, 'nft', [`add table inet pathtest; add chain inet pathtest out { type filter hook output priority 0; }; add rule inet pathtest out udp dport ${OUT_PORT} counter drop`]);
  });
  afterAll(() => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['tp_btf', 'raw_tp'])(`trace --json --path --port ${PORT} --attach %s: every drop's path leaves a0 in A and arrives on b0 in B, in time order, then is delivered locally`, async (attach) => {
    const t = start(['trace', '--json', '--path', '--port', String(PORT), '--attach', attach]);
    await t.ready();
    lab.udp(A, '10.79.0.2', PORT, SENT);
    const res = await t.stop();
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(new RegExp(`via ${attach} on skb:kfree_skb`));
    expect(res.stderr).toMatch(/following packets through \d+ tracepoints: .*net_dev_start_xmit.*netif_receive_skb/);
    const drops = jsonLines<DropRecord>(res.stdout);
    expect(drops).toHaveLength(SENT);
    expect(kernelCount(res.stderr)).toBe(SENT);
    const [inoA, inoB] = [inode(A), inode(B)];
    for (const d of drops) {
      expect([d.reason, d.ifname, d.netns]).toEqual(['NETFILTER_DROP', 'b0', inoB]);
      expect(d.path!.length).toBeGreaterThanOrEqual(2);
      expect(d.pathCut).toBe(0);
      const left = stepAt(d, 'xmit', 'a0', inoA);
      const arrived = stepAt(d, 'rx', 'b0', inoB);
      expect(left).toBeGreaterThanOrEqual(0);
      expect(arrived).toBeGreaterThan(left);
      expect(d.path![left].name).toBe('net:net_dev_start_xmit');
      const ts = d.path!.map((s) => s.ts_ns);
      expect(ts).toEqual([...ts].sort((x, y) => x - y));
      // the route lookup B made for it, on the CPU that received it, and the route it took
      expect(d.path!.slice(arrived).some((s) => s.kind === 'fib' && /^table (main|local): /.test(s.detail ?? ''))).toBe(true);
      expect(d.route).toMatchObject({ input: 'ip_local_deliver', meaning: 'local delivery' });
    }
  });

  it('a packet dropped before any device saw it has an empty path, and tracing goes on', async () => {
    const t = start(['trace', '--json', '--path', '--port', String(OUT_PORT)]);
    await t.ready();
    lab.bash(A, `for i in 1 2 3; do echo x > /dev/udp/10.79.0.2/${OUT_PORT}; done`);
    const res = await t.stop();
    expect(res.code).toBe(0);
    const drops = jsonLines<DropRecord>(res.stdout);
    expect(drops).toHaveLength(3);
    for (const d of drops) {
      expect([d.reason, d.netns]).toEqual(['NETFILTER_DROP', inode(A)]);
      expect(d.path).toEqual([]);
      expect(d.pathCut).toBe(0);
    }
  });

  it('--path functions: function steps where the kernel has kprobes, else one sentence saying why not', async () => {
    const kprobes = existsSync('/sys/bus/event_source/devices/kprobe/type');
    const t = start(['trace', '--json', '--path', 'functions', '--port', String(PORT)]);
    if (!kprobes) {
      const res = await t.exited;
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/--path functions hooks every kernel function that takes the skb with kprobes, which this kernel cannot \(no kprobes: built without CONFIG_KPROBES\): use --path/);
      return;
    }
    await t.ready();
    lab.udp(A, '10.79.0.2', PORT, 3);
    const res = await t.stop();
    expect(res.stderr).toMatch(/and through \d+ kernel functions taking an skb/);
    for (const d of jsonLines<DropRecord>(res.stdout)) expect(d.path!.filter((s) => s.kind === 'function').map((s) => s.name)).toContain('ip_rcv');
  });

  it("live --path: a row's detail view (Enter) shows the path its drops took and how long it took", async () => {
    const tmux = new Tmux();
    try {
      tmux.start(['--path', '--port', String(PORT), '--interval', '0.3'], 'NO_COLOR=1', [220, 50]);
      await tmux.ready();
      lab.udp(A, '10.79.0.2', PORT, 3);
      await tmux.waitFor((s) => /▶ NETFILTER_DROP at nft_do_chain/.test(s), 'the drop row', 10_000);
      // a key is read once the screen has drawn the row selected: a refresh later
      await new Promise((r) => setTimeout(r, 600));
      tmux.keys('Enter');
      const detail = await tmux.waitFor((s) => s.includes('Paths of its dropped packets'), 'the detail view', 10_000);
      expect(detail).toMatch(/\d+ drops?, [\d.]+ [nµm]?s median from first step to drop/);
      expect(detail).toContain(`a0 (${A}) out`);
      expect(detail).toContain(`b0 (${B}) in`);
      tmux.keys('q');
    } finally {
      tmux.kill();
    }
  });

  it('without --path the events and the program are what they were: no path member, no path tracepoint', async () => {
    const t = start(['trace', '--json', '--port', String(PORT)]);
    await t.ready();
    lab.udp(A, '10.79.0.2', PORT, 3);
    const res = await t.stop();
    const drops = jsonLines<DropRecord>(res.stdout);
    expect(drops).toHaveLength(3);
    for (const d of drops) expect('path' in d || 'route' in d || 'pathCut' in d).toBe(false);
    expect(res.stderr).not.toMatch(/following packets/);
  });

  it('record --path keeps the paths: report --paths counts them with their latency, and every pcapng comment carries one', async () => {
    const file = join(dir, 'p.dtr');
    const pcap = join(dir, 'p.pcapng');
    const t = start(['record', '-o', file, '--path', '--snaplen', '64', '--port', String(PORT)]);
    await t.ready();
    lab.udp(A, '10.79.0.2', PORT, 5);
    expect((await t.stop()).code).toBe(0);
    const rep = await run([process.execPath, BIN, 'report', file, '--paths', '--json']);
    expect(rep.code).toBe(0);
    const paths = JSON.parse(rep.stdout).report.paths as { rows: Array<{ hops: string[]; count: number; medianNs: number; reason: string }> };
    expect(paths.rows.reduce((n, r) => n + r.count, 0)).toBe(5);
    const top = paths.rows[0];
    expect(top.reason).toBe('NETFILTER_DROP');
    expect(top.hops[0]).toBe(`a0 (${A}) out`);
    expect(top.hops).toContain(`b0 (${B}) in`);
    expect(top.hops.at(-1)).toBe('route: local delivery');
    expect(top.medianNs).toBeGreaterThan(0);
    const text = await run([process.execPath, BIN, 'report', file, '--paths']);
    expect(text.stdout).toMatch(new RegExp(`a0 \\(${A}\\) out → b0 \\(${B}\\) in → .*route: local delivery → dropped at nft_do_chain`));
    expect((await run([process.execPath, BIN, 'export', file, '--pcapng', pcap])).code).toBe(0);
    const comments = spawnSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.comment'], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(comments).toHaveLength(5);
    for (const c of comments) expect(c).toMatch(new RegExp(`path: a0 \\(${A}\\) out → b0 \\(${B}\\) in → .* \\(\\d`));
  });
});
