/**
 * End to end on the running kernel: build namespaces, make known drops,
 * check what `droptrace trace` reports against the kernel's own counters.
 * Needs root, BTF and a kernel with skb:kfree_skb (every kernel since 2.6.x
 * has the tracepoint; tp_btf needs 5.5). Skips only when those truly lack.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { DropRecord } from '../src/model/drop.js';
import { jsonLines, kernelCount, run, start, BIN } from './helpers/cli.js';
import { Lab, ourLinks, ourPrograms, ourProgramsSettled } from './helpers/netns.js';
import { canRunKernelTests } from './helpers/kernel.js';

const canRun = canRunKernelTests('the trace tests');

type Drop = DropRecord;

describe.skipIf(!canRun)('droptrace trace on the running kernel', () => {
  const lab = new Lab();
  afterAll(() => lab.destroy());
  afterEach(async () => {
    // nothing of ours may stay on the drop path after a test
    expect(await ourProgramsSettled()).toEqual([]);
  });

  it('counts a closed UDP port exactly: N datagrams, N NO_SOCKET events at __udp4_lib_rcv, == Udp NoPorts delta', async () => {
    const ns = lab.netns('udp');
    const N = 25;
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = start(['trace', '--json', '--netns', ns, '--proto', 'udp', '--port', '9999']);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9999, N);
    const res = await t.stop('SIGINT');
    const after = lab.snmp(ns, 'Udp', 'NoPorts');

    expect(res.code).toBe(0);
    const drops = jsonLines<Drop>(res.stdout);
    expect(drops).toHaveLength(N);
    for (const d of drops) {
      expect(d.reason).toBe('NO_SOCKET');
      expect(d.function).toBe('__udp4_lib_rcv');
      expect(d.symbol).toMatch(/^__udp4_lib_rcv\+0x[0-9a-f]+$/);
      expect(d.l4).toBe('UDP');
      expect(d.dport).toBe(9999);
      expect(d.saddr).toBe('127.0.0.1');
      expect(d.ifname).toBe('lo');
      expect(Date.parse(d.time)).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(after - before).toBe(N);
    expect(kernelCount(res.stderr)).toBe(N);
    expect(res.stderr).toMatch(new RegExp(`${N} delivered, 0 lost`));
  });

  // a subsystem reason (code above 255) goes through the command line, the config, the settings'
  // short list and the program's filter; this kernel drops none, so the core reason beside it
  // must still be counted exactly and the subsystem one alone must attach and count nothing
  it.each([
    [['NO_SOCKET,SUBSYS1:2'], 12],
    [['SUBSYS1:2', '--reason', 'NO_SOCKET'], 12],
    [['SUBSYS1:2'], 0],
  ])('--reason %j: attaches and keeps exactly the NO_SOCKET drops (%i)', async (reasons, want) => {
    const ns = lab.netns(`sub${want}${reasons.length}`);
    const t = start(['trace', '--json', '--netns', ns, '--port', '9996', '--reason', ...reasons]);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9996, 12);
    const res = await t.stop('SIGINT');
    expect(res.code).toBe(0);
    const drops = jsonLines<Drop>(res.stdout);
    expect(drops).toHaveLength(want);
    expect(drops.every((d) => d.reason === 'NO_SOCKET')).toBe(true);
    expect(kernelCount(res.stderr)).toBe(want);
  });

  it('a reader that goes away (| head) ends the trace with its summary and exit 0', async () => {
    const ns = lab.netns('pipe');
    const t = start(['trace', '--json', '--netns', ns, '--port', '9997']);
    await t.ready();
    const first = new Promise<string>((r) => t.child.stdout!.once('data', (d) => r(String(d))));
    lab.udp(ns, '127.0.0.1', 9997, 3);
    expect(JSON.parse((await first).split('\n')[0]).dport).toBe(9997);
    t.child.stdout!.destroy(); // as head does after its lines
    // the next lines meet a closed pipe: EPIPE, then the tracer stops by itself
    const exited = t.exited;
    for (let k = 0; k < 50; k++) {
      lab.udp(ns, '127.0.0.1', 9997, 5);
      const done = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))]);
      if (done) break;
    }
    const res = await exited;
    expect(res.code).toBe(0);
    expect(res.stderr).not.toMatch(/Error|at /);
    expect(res.stderr).toMatch(/\d+ printed, \d+ delivered, 0 lost, the kernel counted \d+ drops/);
  });

  it.each(['raw_tp', 'tp_btf'])('--attach %s reports the same closed-port drops', async (path) => {
    const ns = lab.netns(`u${path.slice(0, 2)}`);
    const t = start(['trace', '--json', '--attach', path, '--netns', ns, '--port', '9998']);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9998, 5);
    const res = await t.stop();
    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`tracing drops via ${path} on skb:kfree_skb`);
    const drops = jsonLines<Drop>(res.stdout);
    expect(drops.map((d) => `${d.function} ${d.reason} ${d.dport}`)).toEqual(Array(5).fill('__udp4_lib_rcv NO_SOCKET 9998'));
    expect(kernelCount(res.stderr)).toBe(5);
  });

  it('the seed scenario: pod → host:2483 dropped by an INPUT rule is NETFILTER_DROP on cni0, == the rule counter', async () => {
    const host = lab.netns('host');
    const pod = lab.netns('pod');
    lab.exec(host, 'ip', ['link', 'add', 'cni0', 'type', 'bridge']);
    lab.exec(host, 'ip', ['addr', 'add', '10.244.1.1/24', 'dev', 'cni0']);
    lab.exec(host, 'ip', ['link', 'set', 'cni0', 'up']);
    lab.veth(pod, 'eth0', host, 'vethpod1');
    lab.exec(host, 'ip', ['link', 'set', 'vethpod1', 'master', 'cni0']);
    lab.exec(pod, 'ip', ['addr', 'add', '10.244.1.2/24', 'dev', 'eth0']);
    lab.exec(pod, 'ip', ['route', 'add', 'default', 'via', '10.244.1.1']);
    lab.exec(host, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '2483', '-j', 'DROP']);

    const t = start(['trace', '--json', '--netns', host, '--port', '2483']);
    await t.ready();
    // the pod's connect() times out: SYN, then a retransmission after 1 s
    const conn = lab.bash(pod, 'timeout 2.5 bash -c "echo > /dev/tcp/10.244.1.1/2483"; exit 0');
    expect(conn.status).toBe(0);
    const res = await t.stop('SIGTERM');
    const rules = lab.exec(host, 'iptables', ['-L', 'INPUT', '-v', '-x', '-n']);
    const ruleLine = rules.split('\n').find((l) => /DROP/.test(l) && /dpt:2483/.test(l));
    const rulePackets = Number(ruleLine!.trim().split(/\s+/)[0]);

    expect(res.code).toBe(0);
    const drops = jsonLines<Drop>(res.stdout);
    expect(rulePackets).toBeGreaterThanOrEqual(1);
    expect(drops).toHaveLength(rulePackets);
    for (const d of drops) {
      expect(d.reason).toBe('NETFILTER_DROP');
      expect(d.function).toMatch(/^(nf_hook_slow|nft_do_chain|ipt_do_table)/);
      expect(d.ifname).toBe('cni0');
      expect(d.saddr).toBe('10.244.1.2');
      expect(d.daddr).toBe('10.244.1.1');
      expect(d.dport).toBe(2483);
      expect(d.l4).toBe('TCP');
      expect(d.tcpFlags).toBe('S');
    }
    expect(kernelCount(res.stderr)).toBe(rulePackets);
  });

  it('--port keeps other drops made at the same time out of the events and the count', async () => {
    const a = lab.netns('fa');
    const t = start(['trace', '--json', '--port', '2483']);
    await t.ready();
    lab.udp(a, '127.0.0.1', 2483, 7);
    lab.udp(a, '127.0.0.1', 4444, 11);
    const res = await t.stop();
    const drops = jsonLines<Drop>(res.stdout);
    expect(drops.every((d) => d.sport === 2483 || d.dport === 2483)).toBe(true);
    const ours = drops.filter((d) => d.dport === 2483 && d.saddr === '127.0.0.1');
    expect(ours.length).toBeGreaterThanOrEqual(7);
    expect(kernelCount(res.stderr)).toBe(drops.length);
  });

  it('--netns keeps drops of other namespaces out of the events and the count', async () => {
    const a = lab.netns('na');
    const b = lab.netns('nb');
    const t = start(['trace', '--json', '--netns', a]);
    await t.ready();
    lab.udp(a, '127.0.0.1', 5555, 6);
    lab.udp(b, '127.0.0.1', 5555, 9);
    const res = await t.stop();
    const drops = jsonLines<Drop>(res.stdout);
    const inode = Number((await run(['stat', '-L', '-c', '%i', `/run/netns/${a}`])).stdout.trim());
    expect(drops.length).toBeGreaterThanOrEqual(6);
    expect(drops.every((d) => d.netns === inode)).toBe(true);
    expect(drops.filter((d) => d.dport === 5555 && d.reason === 'NO_SOCKET')).toHaveLength(6);
    expect(kernelCount(res.stderr)).toBe(drops.length);
  });

  it.each([
    [['--iface', 'lo'], 4],
    [['--iface', 'eth9'], 0],
    [['--host', '127.0.0.0/8'], 4],
    [['--host', '10.0.0.1'], 0],
    [['--host', '::1'], 0],
    [['--proto', 'udp'], 4],
    [['--proto', 'tcp'], 0],
    [['--proto', 'ipv4'], 4],
    [['--reason', 'NO_SOCKET'], 4],
    [['--reason', 'NETFILTER_DROP,IP_RPFILTER'], 0],
    [['--exclude-reason', 'NO_SOCKET'], 0],
  ])('filter %j is applied in the kernel: %i of 4 closed-port drops pass', async (args, expected) => {
    const ns = lab.netns('flt');
    const t = start(['trace', '--json', '--netns', ns, '--port', '9997', ...args]);
    await t.ready();
    lab.udp(ns, '127.0.0.1', 9997, 4);
    const res = await t.stop();
    expect(res.code).toBe(0);
    expect(jsonLines<Drop>(res.stdout)).toHaveLength(expected);
    expect(kernelCount(res.stderr)).toBe(expected);
  });

  it('as an unprivileged user, trace exits 1 with one sentence saying what to do', async () => {
    const res = await run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'trace']);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr.trim()).toBe(
      'droptrace: tracing needs root, or the CAP_BPF and CAP_PERFMON capabilities: run droptrace with sudo',
    );
  });

  it('--attach kprobe on a kernel without kprobes exits 1 with its sentence', async () => {
    const probe = await run([process.execPath, BIN, 'check', '--json']);
    const report = JSON.parse(probe.stdout);
    const res = await run([process.execPath, BIN, 'trace', '--attach', 'kprobe', '-d', '1']);
    if (report.kprobesInKernel) {
      // a kernel with kprobes attaches; the sentence cannot be shown there
      expect(res.code).toBe(0);
    } else {
      expect(res.code).toBe(1);
      expect(res.stderr.trim()).toBe(
        'droptrace: this kernel has no kprobes (built without CONFIG_KPROBES): use --attach tracepoint or --attach fentry',
      );
    }
  });

  it('SIGINT: exit 0, a summary, and no program or link of ours left in the kernel', async () => {
    const t = start(['trace']);
    await t.ready();
    expect(ourPrograms().length).toBe(1);
    const res = await t.stop('SIGINT');
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/droptrace: \d+ printed, \d+ delivered, 0 lost, the kernel counted \d+ drops?/);
    expect(ourLinks()).toEqual([]);
    expect(await ourProgramsSettled()).toEqual([]);
  });

  it('check reports the attach path auto would use and exits 0', async () => {
    const res = await run([process.execPath, BIN, 'check', '--json']);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout);
    expect(report.ok).toBe(true);
    expect(['tp_btf', 'raw_tp', 'fentry', 'kprobe']).toContain(report.selected);
    expect(report.dropReasons.count).toBeGreaterThan(0);
    // hardware traps where the kernel's BTF has devlink's tracepoint, and the text says which
    const btf = readFileSync('/sys/kernel/btf/vmlinux');
    expect(report.hardwareTraps).toBe(btf.includes(Buffer.from('\0btf_trace_devlink_trap_report\0')));
    const text = await run([process.execPath, BIN, 'check']);
    expect(text.stdout).toMatch(report.hardwareTraps ? /^hardware traps +yes devlink:devlink_trap_report/m : /^hardware traps +no +\(no devlink in this kernel/m);
  });

  it('check --verbose, which its refusals advise, prints libbpf\'s log and still exits 0', async () => {
    const res = await run([process.execPath, BIN, 'check', '--verbose']);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/^libbpf: /m);
    expect(res.stdout).toContain('--attach auto would use:');
  });
});
