/**
 * The receiving socket (kfree_skb's rx_sk, 6.11+) on the running kernel: a UDP receiver that
 * does not read, placed in a cgroup of its own (and in a kubepods-like one), overflows its
 * buffer; every SOCKET_RCVBUFF drop must name that cgroup and pod, on both tracepoint programs,
 * and drops without a socket must trace as before. Skips where the tracepoint has no rx_sk.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadAddon } from '../src/capture/native.js';
import { cgroup2MountIn } from '../src/host/cgroups.js';
import type { DropRecord } from '../src/model/drop.js';
import { BIN, jsonLines, kernelCount, start } from './helpers/cli.js';
import { canRunKernelTests } from './helpers/kernel.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';

const canRun = canRunKernelTests('the receiving-socket tests');
const hasRxSk = canRun && loadAddon().probe().tpHasRxSk;
const mount = cgroup2MountIn(readFileSync('/proc/self/mountinfo', 'utf8'));
if (canRun && !hasRxSk) console.warn('skipping the receiving-socket tests: skb:kfree_skb has no rx_sk on this kernel (6.11+)');
if (canRun && !mount) console.warn('skipping the receiving-socket tests: no cgroup v2 hierarchy is mounted');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasRxSk || !mount)('the receiving socket of a drop (rx_sk)', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'dt-socket-'));
  const cgroups: string[] = [];
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    await sleep(200);
    for (const d of cgroups.splice(0).reverse()) {
      try {
        rmdirSync(d);
      } catch {
        // still busy: the next run uses another name
      }
    }
    expect(await ourProgramsSettled()).toEqual([]);
  });
  afterAll(() => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A cgroup v2 path under the mount, made (parents too) and remembered for removal. */
  function cgroup(rel: string): string {
    let at = mount!;
    for (const part of rel.split('/')) {
      at = join(at, part);
      mkdirSync(at, { recursive: true });
      cgroups.push(at);
    }
    return at;
  }

  /**
   * A UDP receiver on 127.0.0.1:port in ns that never reads, with a 2 KiB buffer; it joins the
   * cgroup before it makes its socket (a socket takes the cgroup of the task that creates it).
   */
  async function receiver(ns: string, cg: string, port: number): Promise<void> {
    const py = `import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,2048)\ns.bind(("127.0.0.1",${port}))\nprint("ready",flush=True)\ntime.sleep(60)`;
    const p = spawn('sh', ['-c', `echo $$ > ${join(cg, 'cgroup.procs')} && exec ip netns exec ${ns} python3 -c '${py}'`], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(p);
    await new Promise<void>((resolve, reject) => {
      p.stdout!.once('data', () => resolve());
      p.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
    });
  }

  /** n datagrams of 1000 bytes to 127.0.0.1:port from inside ns, as fast as python sends them. */
  function flood(ns: string, port: number, n: number): void {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'python3', '-c', `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(${n}): s.sendto(b"x"*1000,("127.0.0.1",${port}))`]);
    if (r.status !== 0) throw new Error(`sender failed: ${r.stderr}`);
  }

  it.each(['tp_btf', 'raw_tp'])('%s: every SOCKET_RCVBUFF drop names the receiver\'s cgroup; a drop without a socket has none', async (attach) => {
    const ns = lab.netns('rx');
    const rel = `dt${process.pid}-rx-${attach}`;
    const cg = cgroup(rel);
    await receiver(ns, cg, 7000);
    const before = lab.snmp(ns, 'Udp', 'RcvbufErrors');
    const t = start(['trace', '--json', '--netns', ns, '--proto', 'udp', '--attach', attach]);
    await t.ready();
    flood(ns, 7000, 300);
    lab.udp(ns, '127.0.0.1', 9, 3); // a closed port: NO_SOCKET, no receiving socket
    const res = await t.stop();
    const rcvbuf = lab.snmp(ns, 'Udp', 'RcvbufErrors') - before;

    expect(res.code).toBe(0);
    const drops = jsonLines<DropRecord>(res.stdout);
    const full = drops.filter((d) => d.reason === 'SOCKET_RCVBUFF');
    expect(full.length).toBeGreaterThan(100);
    expect(full.length).toBe(rcvbuf);
    for (const d of full) {
      expect(d.socket).toEqual({
        cgroupId: statSync(cg).ino, cgroup: `/${rel}`, namespace: null, pod: null, container: null,
        inode: expect.any(Number), uid: 0, family: 'IPv4', l4: 'UDP', local: '127.0.0.1:7000',
      });
      expect(d.socket!.inode).toBeGreaterThan(0);
    }
    const closed = drops.filter((d) => d.reason === 'NO_SOCKET');
    expect(closed).toHaveLength(3);
    for (const d of closed) expect(d.socket).toBeNull();
    expect(drops).toHaveLength(full.length + 3);
    expect(kernelCount(res.stderr)).toBe(drops.length);
  });

  /** TcpExt's TCPAbortOnData as seen inside ns (/proc/net/netstat: a header line, then values). */
  function abortOnData(ns: string): number {
    const [names, values] = lab.exec(ns, 'cat', ['/proc/net/netstat']).split('\n').filter((l) => l.startsWith('TcpExt:')).map((l) => l.split(/\s+/));
    return Number(values[names.indexOf('TCPAbortOnData')]);
  }

  it.each(['tp_btf', 'raw_tp'])("%s: TCP's drops after tcp_v4_rcv let go of the device are in the receiving socket's netns, so --netns finds them", async (attach) => {
    const ns = lab.netns('tcp');
    const before = abortOnData(ns);
    const t = start(['trace', '--json', '--netns', ns, '--attach', attach]);
    await t.ready();
    // a client that shut down both ways (FIN_WAIT2, still open) refuses data with a reset: each
    // refused segment is dropped in tcp_v4_do_rcv, where skb->dev is already NULL
    lab.exec(ns, 'python3', ['-c', `
import socket, time
srv = socket.socket(); srv.bind(('127.0.0.1', 7400)); srv.listen(8)
keep = []
for _ in range(3):
    c = socket.create_connection(('127.0.0.1', 7400))
    a, _ = srv.accept()
    c.shutdown(socket.SHUT_RDWR)
    time.sleep(0.05)
    a.send(b'late data')
    keep += [a, c]
time.sleep(0.2)`]);
    const res = await t.stop();
    expect(abortOnData(ns) - before).toBe(3);

    expect(res.code).toBe(0);
    const refused = jsonLines<DropRecord>(res.stdout).filter((d) => d.sport === 7400);
    expect(refused).toHaveLength(3);
    for (const d of refused) {
      expect(d).toMatchObject({ reason: 'TCP_ABORT_ON_DATA', ifindex: 0, ifname: null, netns: statSync(`/run/netns/${ns}`).ino, l4: 'TCP' });
      expect(d.socket).toMatchObject({ family: 'IPv4', l4: 'TCP' });
    }
  });

  it('names the pod whose cgroup the socket is in: trace, record, report and diagnose', async () => {
    const uid = '1c6d8b3f-2e4a-4b7c-9d0e-1f2a3b4c5d6e';
    const cid = 'e'.repeat(63) + '2';
    const logs = join(dir, 'pods');
    mkdirSync(join(logs, `default_sink-0_${uid}`), { recursive: true });
    const rel = `dt${process.pid}-kubepods/besteffort/pod${uid}/${cid}`;
    const cg = cgroup(rel);
    const ns = lab.netns('pod');
    await receiver(ns, cg, 7001);

    const t = start(['trace', '--json', '--netns', ns, '--proto', 'udp', '--port', '7001', '--pod-logs', logs]);
    await t.ready();
    flood(ns, 7001, 200);
    const res = await t.stop();
    const full = jsonLines<DropRecord>(res.stdout).filter((d) => d.reason === 'SOCKET_RCVBUFF');
    expect(full.length).toBeGreaterThan(50);
    for (const d of full) expect(d.socket).toMatchObject({ cgroup: `/${rel}`, namespace: 'default', pod: 'sink-0', container: cid, local: '127.0.0.1:7001' });

    // text lines say it too
    const tt = start(['trace', '--netns', ns, '--proto', 'udp', '--port', '7001', '--pod-logs', logs]);
    await tt.ready();
    flood(ns, 7001, 50);
    const text = await tt.stop();
    expect(text.stdout).toMatch(/SOCKET_RCVBUFF .* socket UDP 127\.0\.0\.1:7001 uid 0 pod default\/sink-0\n/);

    // a recording carries the owner: report names it on another machine
    const file = join(dir, 'sock.dtr');
    const r = start(['record', '-o', file, '--netns', ns, '--proto', 'udp', '--port', '7001', '--pod-logs', logs]);
    await r.ready();
    flood(ns, 7001, 200);
    await r.stop();
    const rep = spawnSync(process.execPath, [BIN, 'report', file, '--json'], { encoding: 'utf8' });
    const row = (JSON.parse(rep.stdout) as { report: { rows: Array<{ reasons: string[]; sockets: string[] }> } }).report.rows.find((x) => x.reasons[0] === 'SOCKET_RCVBUFF');
    expect(row?.sockets).toEqual(['UDP 127.0.0.1:7001 uid 0 pod default/sink-0']);
    const repText = spawnSync(process.execPath, [BIN, 'report', file], { encoding: 'utf8' });
    expect(repText.stdout).toMatch(/socket UDP 127\.0\.0\.1:7001 uid 0 pod default\/sink-0/);

    // diagnose: the finding's cause is that pod's socket
    const d = start(['diagnose', '--netns', ns, '--duration', '4', '--json', '--pod-logs', logs]);
    await d.ready();
    flood(ns, 7001, 300);
    const out = await d.exited;
    const verdict = JSON.parse(out.stdout) as { findings: Array<{ reason: string; cause: string | null; sockets: Array<{ socket: string }> }> };
    const f = verdict.findings.find((x) => x.reason === 'SOCKET_RCVBUFF');
    expect(f?.sockets[0].socket).toBe('UDP 127.0.0.1:7001 uid 0 pod default/sink-0');
    expect(f?.cause).toMatch(/^the socket UDP 127\.0\.0\.1:7001 uid 0 pod default\/sink-0 in .* does not read fast enough/);
  });
});
