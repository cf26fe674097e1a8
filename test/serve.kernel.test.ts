/**
 * `droptrace serve` scraped for real: promtool accepts the exposition, a
 * real Prometheus on loopback scrapes it while namespaces drop packets and
 * answers a PromQL query with the kernel's count; and pod attribution on the
 * lab, with a pod process placed in a kubepods-like cgroup.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { jsonLines, ROOT, start } from './helpers/cli.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';
import { canRunKernelTests } from './helpers/kernel.js';

const canRun = canRunKernelTests('the serve tests');
const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0 && spawnSync('promtool', ['--version']).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const port = () => 20000 + Math.floor(Math.random() * 20000);

async function get(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.text();
}

/** /metrics once it shows what we wait for: serve reads the counts on a timer, not on a scrape. */
async function metricsWith(url: string, re: RegExp): Promise<string> {
  let body = '';
  for (let i = 0; i < 50; i++) {
    body = await get(url);
    if (re.test(body)) return body;
    await sleep(100);
  }
  return body;
}

/** Sum of a metric's samples in an exposition. */
function sumOf(body: string, name: string): number {
  return body
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe.skipIf(!canRun)('droptrace serve', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-serve-'));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    expect(await ourProgramsSettled()).toEqual([]);
  });

  it.skipIf(!hasPrometheus)('promtool accepts /metrics, and a real Prometheus scrapes the kernel count', async () => {
    const ns = lab.netns('srv');
    const mport = port();
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = start(['serve', '--listen', `127.0.0.1:${mport}`, '--netns', ns]);
    await t.ready();

    const pport = mport + 1;
    const cfg = join(dir, 'prometheus.yml');
    writeFileSync(cfg, `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: droptrace\n    static_configs:\n      - targets: ['127.0.0.1:${mport}']\n`);
    const prom = spawn('prometheus', [`--config.file=${cfg}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${pport}`], { stdio: 'ignore' });
    children.push(prom);
    try {
      for (let i = 0; i < 100; i++) {
        try {
          await get(`http://127.0.0.1:${pport}/-/ready`);
          break;
        } catch {
          await sleep(200);
        }
      }
      lab.udp(ns, '127.0.0.1', 9, 12);
      const kernel = lab.snmp(ns, 'Udp', 'NoPorts') - before;
      expect(kernel).toBe(12);

      const body = await metricsWith(`http://127.0.0.1:${mport}/metrics`, /^droptrace_drops_total\{[^}]*\} 12$/m);
      const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
      expect(check.status, check.stdout + check.stderr).toBe(0);
      expect(body).toMatch(/^droptrace_drops_total\{reason="NO_SOCKET",function="__udp4_lib_rcv",interface="lo",netns="\d+",namespace="",pod="",container=""\} 12$/m);
      // every way a drop could go missing is exported, and none did
      for (const m of ['droptrace_events_lost_total', 'droptrace_map_full_total', 'droptrace_drops_unseen_total']) expect(body).toMatch(new RegExp(`^${m} 0$`, 'm'));
      expect(await get(`http://127.0.0.1:${mport}/healthz`)).toBe('ok\n');

      let value = NaN;
      for (let i = 0; i < 50 && value !== kernel; i++) {
        await sleep(300);
        const q = await get(`http://127.0.0.1:${pport}/api/v1/query?query=${encodeURIComponent('sum by (reason) (droptrace_drops_total)')}`);
        const r = JSON.parse(q).data.result.find((x: { metric: { reason: string } }) => x.metric.reason === 'NO_SOCKET');
        value = r ? Number(r.value[1]) : NaN;
      }
      expect(value).toBe(kernel);
    } finally {
      prom.kill('SIGTERM');
      await t.stop();
    }
  });

  it('names the pod of a drop (trace --json and serve labels) from its cgroup and the pod log directory', async () => {
    const uid = '0b5c7a2e-1d3f-4a6b-8c9d-0e1f2a3b4c5d';
    const cid = 'f'.repeat(63) + '1';
    const pod = lab.netns('pod');
    const logs = join(dir, 'pods');
    mkdirSync(join(logs, `default_web-0_${uid}`), { recursive: true });
    // a kubepods-like cgroup (cgroupfs driver) holding a process that lives in the pod's netns
    const v1 = '/sys/fs/cgroup/pids';
    const base = existsSync(v1) ? v1 : '/sys/fs/cgroup';
    const cg = [join(base, `dt${process.pid}-kubepods`), join(base, `dt${process.pid}-kubepods`, 'burstable'), join(base, `dt${process.pid}-kubepods`, 'burstable', `pod${uid}`), join(base, `dt${process.pid}-kubepods`, 'burstable', `pod${uid}`, cid)];
    for (const d of cg) mkdirSync(d, { recursive: true });
    const holder = spawn('ip', ['netns', 'exec', pod, 'sleep', '60'], { stdio: 'ignore' });
    children.push(holder);
    try {
      await sleep(200);
      writeFileSync(join(cg[3], 'cgroup.procs'), String(holder.pid));
      expect(readFileSync(`/proc/${holder.pid}/cgroup`, 'utf8')).toContain(`pod${uid}/${cid}`);

      // a drop on the pod's host-side veth (in the host namespace: a closed port there) is the pod's too
      const host = lab.netns('podhost');
      lab.veth(pod, 'eth0', host, 'vethweb0');
      lab.exec(pod, 'ip', ['addr', 'add', '10.77.0.2/24', 'dev', 'eth0']);
      lab.exec(host, 'ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'vethweb0']);
      const ht = start(['trace', '--json', '--netns', host, '--proto', 'udp', '--pod-logs', logs]);
      await ht.ready();
      lab.udp(pod, '10.77.0.1', 9, 2);
      const hres = await ht.stop();
      const hdrops = jsonLines<{ reason: string; ifname: string; pod: string; namespace: string }>(hres.stdout);
      expect(hdrops).toHaveLength(2);
      for (const d of hdrops) expect(d).toMatchObject({ reason: 'NO_SOCKET', ifname: 'vethweb0', namespace: 'default', pod: 'web-0' });

      // the pod's eth0 also drops IPv6 multicast on its own: look at our datagrams only
      const t = start(['trace', '--json', '--netns', pod, '--proto', 'udp', '--port', '9', '--pod-logs', logs]);
      await t.ready();
      lab.udp(pod, '127.0.0.1', 9, 3);
      const res = await t.stop();
      const drops = jsonLines<{ namespace: string; pod: string; container: string }>(res.stdout);
      expect(drops).toHaveLength(3);
      for (const d of drops) expect(d).toMatchObject({ namespace: 'default', pod: 'web-0', container: cid });

      // a recording keeps the pod's name, so report can group by pod anywhere
      const file = join(dir, 'pod.dtr');
      const r = start(['record', '-o', file, '--netns', pod, '--proto', 'udp', '--port', '9', '--pod-logs', logs]);
      await r.ready();
      lab.udp(pod, '127.0.0.1', 9, 4);
      await r.stop();
      const rep = spawnSync(process.execPath, [join(ROOT, 'bin/droptrace.js'), 'report', file, '--by', 'pod', '--json'], { encoding: 'utf8' });
      expect(JSON.parse(rep.stdout).report.rows[0]).toMatchObject({ key: 'default/web-0', count: 4 });

      const mport = port();
      const s = start(['serve', '--listen', `127.0.0.1:${mport}`, '--netns', pod, '--proto', 'udp', '--port', '9', '--pod-logs', logs]);
      await s.ready();
      lab.udp(pod, '127.0.0.1', 9, 2);
      const body = await metricsWith(`http://127.0.0.1:${mport}/metrics`, /pod="web-0"[^}]*\} 2$/m);
      await s.stop();
      expect(body).toMatch(new RegExp(`droptrace_drops_total\\{reason="NO_SOCKET",[^}]*namespace="default",pod="web-0",container="${cid.slice(0, 12)}"\\} 2`));
    } finally {
      holder.kill('SIGKILL');
      await sleep(200);
      for (const d of [...cg].reverse()) {
        try {
          rmdirSync(d);
        } catch {
          // still busy: the next run uses another name
        }
      }
    }
  });

  it('500 namespaces come and go while it is scraped: series, kernel keys and memory stay bounded, every drop stays counted', async () => {
    const mport = port();
    const url = `http://127.0.0.1:${mport}/metrics`;
    const s = start(['serve', '--listen', `127.0.0.1:${mport}`, '--proto', 'udp', '--port', '9', '--forget-after', '2', '--update-every', '0.2']);
    await s.ready();
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${s.child.pid}/status`, 'utf8'))![1]) / 1024;
    let kernel = 0;
    const latencies: number[] = [];
    const seen = { series: 0, keys: 0, rss: [] as number[] };
    const scrape = async () => {
      const t0 = performance.now();
      const body = await get(url);
      latencies.push(performance.now() - t0);
      seen.series = Math.max(seen.series, body.split('\n').filter((l) => l.startsWith('droptrace_drops_total{')).length);
      seen.keys = Math.max(seen.keys, sumOf(body, 'droptrace_count_keys'));
      return body;
    };
    try {
      for (let i = 0; i < 500; i++) {
        const ns = lab.netns('churn');
        lab.udp(ns, '127.0.0.1', 9, 2);
        kernel += lab.snmp(ns, 'Udp', 'NoPorts');
        lab.remove(ns);
        if (i % 10 === 9) await scrape();
        if (i % 100 === 99) seen.rss.push(rss());
      }
      // everything idle expires; the totals then hold every drop
      let body = '';
      for (let i = 0; i < 60; i++) {
        await sleep(200);
        body = await scrape();
        if (sumOf(body, 'droptrace_drops_total') === 0 && sumOf(body, 'droptrace_drops_expired_total') === kernel) break;
      }
      expect(kernel).toBe(1000);
      expect(sumOf(body, 'droptrace_drops_total') + sumOf(body, 'droptrace_drops_expired_total')).toBe(kernel);
      // what stays are keys in per-CPU hot slots, which are never given back (256 a CPU at most)
      const left = sumOf(body, 'droptrace_count_keys');
      expect(left).toBeLessThan(150);
      // at ~25 namespaces a second and a 2 s grace: dozens alive at once, never hundreds
      expect(seen.series).toBeLessThan(150);
      expect(seen.keys).toBeLessThan(150);
      // memory flat after warm-up: the last 400 namespaces add less than 25 MB
      expect(seen.rss[seen.rss.length - 1] - seen.rss[0]).toBeLessThan(25);
      latencies.sort((a, b) => a - b);
      console.log(
        `serve soak: 500 namespaces, ${kernel} drops; at most ${seen.series} series and ${seen.keys} kernel keys at once, ${left} keys left in hot slots; RSS ${seen.rss.map((x) => x.toFixed(0)).join(' → ')} MB; scrape latency median ${latencies[latencies.length >> 1].toFixed(1)} ms, max ${latencies[latencies.length - 1].toFixed(1)} ms over ${latencies.length} scrapes`,
      );
    } finally {
      await s.stop();
    }
  }, 180_000);

  it('rejects a bad --listen with exit 2', async () => {
    const res = spawnSync(process.execPath, [join(ROOT, 'bin/droptrace.js'), 'serve', '--listen', 'nope'], { encoding: 'utf8' });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/--listen nope: expected HOST:PORT/);
  });
});
