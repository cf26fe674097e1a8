/**
 * record → report / diff / export / live --replay on the running kernel,
 * including a recorder killed with SIGKILL mid-flood. Needs root and BTF;
 * the pcapng check needs tshark.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BIN, run, start } from './helpers/cli.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';
import { canRunKernelTests } from './helpers/kernel.js';

const canRun = canRunKernelTests('the record tests');
const hasTshark = spawnSync('tshark', ['--version']).status === 0;

const dt = (args: string[]) => run([process.execPath, BIN, ...args]);

describe.skipIf(!canRun)('droptrace record and what reads recordings', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-rec-'));
  afterAll(() => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    expect(await ourProgramsSettled()).toEqual([]);
  });

  /** host netns with cni0 and a pod, INPUT dropping TCP 2483 */
  function seedLab(tag: string): { host: string; pod: string } {
    const host = lab.netns(`${tag}h`);
    const pod = lab.netns(`${tag}p`);
    lab.exec(host, 'ip', ['link', 'add', 'cni0', 'type', 'bridge']);
    lab.exec(host, 'ip', ['addr', 'add', '10.244.1.1/24', 'dev', 'cni0']);
    lab.exec(host, 'ip', ['link', 'set', 'cni0', 'up']);
    lab.veth(pod, 'eth0', host, `veth${tag}`);
    lab.exec(host, 'ip', ['link', 'set', `veth${tag}`, 'master', 'cni0']);
    lab.exec(pod, 'ip', ['addr', 'add', '10.244.1.2/24', 'dev', 'eth0']);
    lab.exec(pod, 'ip', ['route', 'add', 'default', 'via', '10.244.1.1']);
    lab.exec(host, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '2483', '-j', 'DROP']);
    return { host, pod };
  }

  it('round trip: report gives the kernel counter, even where /proc/kallsyms cannot be read', async () => {
    const ns = lab.netns('rt');
    const out = join(dir, 'rt.dtr');
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = start(['record', '-o', out, '--netns', ns, '--proto', 'udp']);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9, 20);
    const res = await t.stop('SIGINT');
    expect(res.code).toBe(0);
    const delta = lab.snmp(ns, 'Udp', 'NoPorts') - before;
    expect(delta).toBe(20);
    expect(res.stderr).toMatch(/recorded 20 events \(20 delivered, 0 lost; the kernel counted 20\)/);
    expect(statSync(out).mode & 0o777).toBe(0o600);

    const rep = await dt(['report', out, '--json']);
    expect(rep.code).toBe(0);
    const doc = JSON.parse(rep.stdout);
    expect(doc.report.total).toBe(20);
    expect(doc.report.rows[0]).toMatchObject({ count: 20, reasons: ['NO_SOCKET'], interfaces: ['lo'] });
    expect(doc.report.rows[0].key).toMatch(/^__udp4_lib_rcv\+0x[0-9a-f]+$/);

    // another mount namespace where /proc/kallsyms is an empty file: names must come from the recording
    const hidden = spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind /dev/null /proc/kallsyms && wc -c < /proc/kallsyms && ${process.execPath} ${BIN} report ${out}`], {
      encoding: 'utf8',
    });
    expect(hidden.status).toBe(0);
    expect(hidden.stdout.split('\n')[0].trim()).toBe('0');
    expect(hidden.stdout).toMatch(/\s20\s+100\.0%\s+\S+\s+__udp4_lib_rcv\+0x[0-9a-f]+\s+NO_SOCKET\s+lo/);
  });

  it('record --stack, report --stacks: each drop site\'s stacks start at the site, named from the recording', async () => {
    const ns = lab.netns('stk');
    const out = join(dir, 'stk.dtr');
    const t = start(['record', '-o', out, '--netns', ns, '--port', '9', '--stack']);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9, 6);
    expect((await t.stop('SIGINT')).code).toBe(0);
    const rep = await dt(['report', out, '--stacks', '--json']);
    expect(rep.code).toBe(0);
    const stacks: Array<{ site: string; total: number; callers: unknown[]; stacks: Array<{ count: number; frames: string[] }> }> = JSON.parse(rep.stdout).report.stacks;
    expect(stacks).toHaveLength(1);
    expect(stacks[0].site).toMatch(/^__udp4_lib_rcv\+0x[0-9a-f]+$/);
    expect(stacks[0].total).toBe(6);
    // a specific site: no caller to name
    expect(stacks[0].callers).toEqual([]);
    expect(stacks[0].stacks.reduce((n, x) => n + x.count, 0)).toBe(6);
    expect(stacks[0].stacks[0].frames[0]).toBe(stacks[0].site);
    expect(stacks[0].stacks[0].frames).toEqual(expect.arrayContaining([expect.stringMatching(/^(udp_rcv|ip_protocol_deliver_rcu|ip_local_deliver_finish)\+0x/)]));
    const text = await dt(['report', out, '--stacks']);
    expect(text.stdout).toMatch(/Kernel stacks by drop site \(innermost frame first\):\n__udp4_lib_rcv\+0x[0-9a-f]+: 6 drops with a stack\n  \d+ ×\n      __udp4_lib_rcv\+0x/);
  });

  it('a quiet recording (no drop at all) ends cleanly and reports zero', async () => {
    // the counts written each second are empty then: once, that crashed the recorder
    const ns = lab.netns('quiet');
    const out = join(dir, 'quiet.dtr');
    const res = await dt(['record', '-o', out, '--netns', ns, '--duration', '2.5']);
    expect(res.stderr).not.toMatch(/Error/);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/recorded 0 events \(0 delivered, 0 lost; the kernel counted 0\)/);
    const rep = await dt(['report', out, '--json']);
    expect(rep.code).toBe(0);
    const doc = JSON.parse(rep.stdout);
    expect(doc.report.total).toBe(0);
    expect(doc.damage.unfinished).toBe(false);
  });

  it('after SIGKILL mid-flood, report reads what was written and says the file was cut short', async () => {
    const ns = lab.netns('kill');
    const out = join(dir, 'kill.dtr');
    const t = start(['record', '-o', out, '--netns', ns]);
    await t.ready();
    const flood = spawn('ip', ['netns', 'exec', ns, 'bash', '-c', 'for i in $(seq 100000); do echo x > /dev/udp/127.0.0.1/9; done'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 2500));
    t.child.kill('SIGKILL');
    await t.exited;
    flood.kill('SIGKILL');
    const rep = await dt(['report', out, '--json']);
    expect(rep.code).toBe(0);
    expect(rep.stderr).toMatch(/cut short/);
    const doc = JSON.parse(rep.stdout);
    expect(doc.damage.unfinished).toBe(true);
    // counts were flushed at least once a second while the flood ran
    expect(doc.report.total).toBeGreaterThan(0);
    expect(doc.report.rows[0].reasons).toEqual(['NO_SOCKET']);
  });

  it.skipIf(!hasTshark)('--pcapng: tshark reads every captured drop, with its location and reason in the comment', async () => {
    const { host, pod } = seedLab('pc');
    const out = join(dir, 'pc.dtr');
    const pcap = join(dir, 'pc.pcapng');
    const t = start(['record', '-o', out, '--netns', host, '--port', '2483', '--snaplen', '128', '--pcapng', pcap]);
    await t.ready();
    lab.bash(pod, 'timeout 2.5 bash -c "echo > /dev/tcp/10.244.1.1/2483"; exit 0');
    const res = await t.stop();
    const events = Number(/recorded (\d+) events/.exec(res.stderr)![1]);
    expect(events).toBeGreaterThanOrEqual(2);
    const list = spawnSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.comment', '-e', 'tcp.dstport', '-e', 'frame.interface_name'], { encoding: 'utf8' });
    expect(list.status).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines).toHaveLength(events);
    for (const l of lines) {
      expect(l).toMatch(/dropped at nft_do_chain\+0x[0-9a-f]+ \(0xffffffff[0-9a-f]+\) reason NETFILTER_DROP on cni0/);
      expect(l).toMatch(/\t2483\tcni0$/);
    }
    // export from the recording gives the same file
    const again = join(dir, 'again.pcapng');
    expect((await dt(['export', out, '--pcapng', again])).code).toBe(0);
    expect(spawnSync('tshark', ['-r', again], { encoding: 'utf8' }).stdout.trim().split('\n')).toHaveLength(events);
  });

  it('diff of two faults: the firewall drop vanished, the closed port appeared', async () => {
    const { host, pod } = seedLab('df');
    const a = join(dir, 'a.dtr');
    const b = join(dir, 'b.dtr');
    let t = start(['record', '-o', a, '--netns', host]);
    await t.ready();
    lab.bash(pod, 'timeout 1.5 bash -c "echo > /dev/tcp/10.244.1.1/2483"; exit 0');
    await t.stop();
    t = start(['record', '-o', b, '--netns', host]);
    await t.ready();
    lab.udp(pod, '10.244.1.1', 8472, 5);
    await new Promise((r) => setTimeout(r, 300));
    await t.stop();
    const res = await dt(['diff', a, b, '--by', 'reason', '--json']);
    expect(res.code).toBe(0);
    const rows = Object.fromEntries(JSON.parse(res.stdout).rows.map((r: { key: string; change: string }) => [r.key, r.change]));
    expect(rows.NETFILTER_DROP).toBe('vanished');
    expect(rows.NO_SOCKET).toBe('appeared');
    const text = await dt(['diff', a, b]);
    expect(text.stdout).toMatch(/^vanished .*nft_do_chain\+0x/m);
    expect(text.stdout).toMatch(/^appeared .*__udp4_lib_rcv\+0x/m);
  });

  it('live --replay shows the recording: --plain lines add up to its count', async () => {
    const ns = lab.netns('rp');
    const out = join(dir, 'rp.dtr');
    const t = start(['record', '-o', out, '--netns', ns]);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9, 9);
    await t.stop();
    const res = await dt(['live', '--replay', out, '--plain', '--speed', '50', '--interval', '0.1', '--duration', '1']);
    expect(res.code).toBe(0);
    const total = res.stdout
      .split('\n')
      .filter(Boolean)
      .reduce((n, l) => n + Number(l.split(' ')[0]), 0);
    expect(total).toBe(9);
    expect(res.stdout).toMatch(/drops at __udp4_lib_rcv\+0x[0-9a-f]+ \(0x[0-9a-f]+\) \[NO_SOCKET\] lo/);
  });
});
