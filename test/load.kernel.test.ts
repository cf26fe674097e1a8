/**
 * Correctness under a flood (scripts/flood/flood.c, sendmmsg): whatever the
 * event stream loses, delivered + lost equals the kernel's own count, and
 * the exact counts equal the namespace's Udp NoPorts counter.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadLocalSymbols, localReasons } from '../src/capture/local.js';
import { CaptureRun } from '../src/capture/run.js';
import { BLOCK, RecordingWriter } from '../src/formats/record.js';
import { Recorder } from '../src/formats/recorder.js';
import { scanRecording } from '../src/formats/scan.js';
import { EV, FLAG, ifnameAt, keptSteps, PATH_SIZE, PP, ST, stepAt } from '../src/model/decode.js';
import { baseTracerConfig, type TraceOptions } from '../src/cli/common.js';
import { RECORD_RING_SIZE } from '../src/cli/record.js';
import { BIN, ROOT, run as runCommand, start } from './helpers/cli.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';
import { canRunKernelTests } from './helpers/kernel.js';

const canRun = canRunKernelTests('the load tests');

describe.skipIf(!canRun)('under a flood', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-load-'));
  const flood = join(dir, 'flood');
  execFileSync('cc', ['-O2', '-o', flood, join(ROOT, 'scripts/flood/flood.c')]);
  afterAll(() => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    expect(await ourProgramsSettled()).toEqual([]);
  });

  const run = (ns: string, seconds: number) =>
    new Promise<number>((resolve, reject) => {
      const p = spawn('ip', ['netns', 'exec', ns, flood, '127.0.0.1', '9', String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('close', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`flood exited ${code}`))));
    });

  it.each([
    ['the default ring', []],
    ['a 16 KiB ring that must overflow', ['--ring-size', '16k']],
  ])('trace --json with %s: delivered + lost == kernel count == Udp NoPorts', async (_name, extra) => {
    const ns = lab.netns('fl');
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = start(['trace', '--json', '--netns', ns, ...extra]);
    await t.ready();
    const sent = await run(ns, 2);
    const res = await t.stop('SIGINT');
    const noPorts = lab.snmp(ns, 'Udp', 'NoPorts') - before;
    expect(res.code).toBe(0);
    const m = /(\d+) printed, (\d+) delivered, (\d+) lost, the kernel counted (\d+) drops?/.exec(res.stderr)!;
    // the kernel never skipped the program (it counts such runs since 5.12): nothing unseen
    expect(res.stderr).not.toContain('not seen at all');
    const [printed, delivered, lost, counted] = m.slice(1).map(Number);
    expect(sent).toBeGreaterThan(10_000);
    expect(counted).toBe(noPorts);
    expect(delivered + lost).toBe(counted);
    expect(printed).toBe(delivered);
    expect(res.stdout.split('\n').filter(Boolean)).toHaveLength(delivered);
    if (extra.length) {
      expect(lost).toBeGreaterThan(0);
      // said while it happened, with the --sample that would have fitted
      expect(res.stderr).toMatch(/droptrace: \d+ events lost in the last second \(\d+ delivered\).*--sample \d+ would fit/);
    }
  });

  it.each([
    ['trace --json', ['trace', '--json']],
    ['trace', ['trace']],
    ['record', ['record', '-o', 'REC']],
  ])('%s unfiltered, default settings, under the flood: every event delivered', async (_name, args) => {
    // users start unfiltered: the reader must keep up with the whole machine's flood. Measured
    // here, stdout to /dev/null: 0 lost at 330-400k drops/s in most runs (trace --json at 62 % of
    // a core, record 14 %); when the untraced flood reaches 500-600k drops/s on this 2-vCPU VM,
    // trace and trace --json lose up to 3.9 % in some runs (the flood and the reader share the
    // two cores), and trace lost 5.3 % in one CI run. The bound leaves that room and still fails a reader that falls behind (one
    // that woke per event lost 12.8 %)
    const ns = lab.netns('un');
    const rec = join(dir, 'unfiltered.dtr');
    rmSync(rec, { force: true });
    // stdout to /dev/null, as users run it: a test process reading a pipe would be the slow reader
    const t = start(args.map((a) => (a === 'REC' ? rec : a)), { stdio: ['ignore', 'ignore', 'pipe'] });
    await t.ready();
    const sent = await run(ns, 2);
    const res = await t.stop('SIGINT');
    expect(res.code).toBe(0);
    const m = /(\d+) delivered, (\d+) lost[;,] the kernel counted (\d+)/.exec(res.stderr)!;
    const [delivered, lost, counted] = m.slice(1).map(Number);
    expect(sent).toBeGreaterThan(10_000);
    expect(counted).toBeGreaterThanOrEqual(sent);
    expect(delivered + lost).toBe(counted);
    expect(lost).toBeLessThanOrEqual(counted * 0.07);
  });

  /** The tracer as record runs it: its ring, and every program attached. */
  const floodTracer = () => baseTracerConfig({ ringSize: RECORD_RING_SIZE, countEntries: '16384', attach: 'auto' } as TraceOptions);

  /** A recorder into a new file, on this run's flood: the recording and the run it ends with. */
  const recordFlood = async (name: string, o: { limit?: number; packetPath?: 'tracepoints'; port?: number }, flood: (done: Promise<unknown>) => Promise<unknown>) => {
    const file = join(dir, `${name}.dtr`);
    rmSync(file, { force: true });
    const names = new Map(lab.namespaces().map((n) => [statSync(`/run/netns/${n}`).ino, n]));
    const recorder = new Recorder(new RecordingWriter(openSync(file, 'wx', 0o600)), {
      syms: loadLocalSymbols().table,
      reasons: localReasons(),
      netnsName: (ino) => names.get(ino) ?? null,
      podName: () => null,
      filters: 'none',
      version: 'test',
      limit: o.limit,
    });
    const capture = CaptureRun.start({ ...floodTracer(), ...(o.packetPath ? { packetPath: o.packetPath } : {}), ...(o.port ? { port: o.port } : {}) }, [recorder], { signals: false });
    await flood(capture.done);
    capture.stop();
    const summary = await capture.done;
    return { summary, recorder, native: capture.tracer.written(), ...readBack(file) };
  };

  /**
   * A recording's events in file order, and those whose location, interface, --path route or
   * --path step's namespace had not been described by a block before them: a file cut short
   * anywhere must name everything it holds.
   */
  function readBack(file: string): { events: number; unnamed: number; paths: number; netns: Set<number> } {
    const scan = scanRecording(readFileSync(file));
    expect(scan).toMatchObject({ truncated: false, unfinished: false, corrupted: 0 });
    const ours = new Set(lab.namespaces().map((n) => statSync(`/run/netns/${n}`).ino));
    const named = new Set<bigint>();
    const ifaces = new Set<string>();
    const netns = new Set<number>();
    let events = 0;
    let unnamed = 0;
    let paths = 0;
    for (const blk of scan.blocks) {
      if (blk.type === BLOCK.SYMBOLS) for (const s of JSON.parse(blk.payload.toString()) as Array<{ address: string }>) named.add(BigInt(s.address));
      if (blk.type === BLOCK.NAMES) {
        const n = JSON.parse(blk.payload.toString()) as { interfaces: Array<[number, number, string]>; netns: Array<[number, string]> };
        for (const [ns, ifindex] of n.interfaces) ifaces.add(`${ns}/${ifindex}`);
        for (const [ns] of n.netns) netns.add(ns);
      }
      if (blk.type !== BLOCK.EVENTS) continue;
      const count = blk.payload.readUInt32LE(0);
      const stride = blk.payload.readUInt32LE(4);
      const buf = blk.payload.subarray(8);
      for (let i = 0, o = 0; i < count; i++, o += stride) {
        const iface = `${buf.readUInt32LE(o + EV.netns)}/${buf.readUInt32LE(o + EV.ifindex)}`;
        let ok = named.has(buf.readBigUInt64LE(o + EV.location)) && (!ifnameAt(buf, o) || ifaces.has(iface));
        if (buf[o + EV.flags] & FLAG.PATH) {
          paths++;
          const p = o + stride - PATH_SIZE;
          for (const a of [buf.readBigUInt64LE(p + PP.dst_input), buf.readBigUInt64LE(p + PP.dst_output)]) ok &&= !a || named.has(a);
          for (let j = 0; j < keptSteps(buf, p); j++) {
            const ns = buf.readUInt32LE(stepAt(p, j) + ST.netns);
            // a namespace the recorder has a name for is named before the step that crossed it
            ok &&= !ours.has(ns) || netns.has(ns);
          }
        }
        if (!ok) unnamed++;
        events++;
      }
    }
    return { events, unnamed, paths, netns };
  }

  it('record: the reader thread writes the batches with nothing new itself, and every events block comes after the names it needs', async () => {
    // unfiltered, two namespaces, the second flooding from the middle of the first's flood: its
    // lo, its namespace and whatever else the machine drops are new mid-stream
    const a = lab.netns('rwa');
    const b = lab.netns('rwb');
    const r = await recordFlood('reader-thread', {}, async () => {
      const first = run(a, 3);
      await new Promise((res) => setTimeout(res, 1500));
      await run(b, 1);
      await first;
    });
    expect(r.native.errno).toBe(0);
    expect(r.unnamed).toBe(0);
    expect(r.netns).toContain(statSync(`/run/netns/${b}`).ino);
    expect(r.events).toBe(r.summary.stats.delivered);
    expect(r.summary.stats.delivered + r.summary.stats.lost).toBe(r.summary.exact);
    // under the flood nearly every batch holds nothing new: the reader thread wrote them
    expect(r.native.records).toBeGreaterThan(r.events * 0.5);
    expect(r.native.records).toBeLessThan(r.events);
    expect(r.recorder.written).toBe(r.events);
  });

  it('record --count under a flood: exactly that many events, most written by the reader thread, and the run ends by itself', async () => {
    const ns = lab.netns('rwc');
    const limit = 250_000;
    let first = '';
    const r = await recordFlood('count', { limit }, async (done) => {
      // the flood outlasts the limit: the recorder ends the run while it lasts
      const f = run(ns, 3);
      first = await Promise.race([done.then(() => 'run'), f.then(() => 'flood')]);
      await f;
    });
    expect(first).toBe('run');
    expect(r.events).toBe(limit);
    expect(r.recorder.written).toBe(limit);
    expect(r.unnamed).toBe(0);
    expect(r.native.records).toBeGreaterThan(limit * 0.5);
    expect(r.native.records).toBeLessThan(limit);
  });

  it('record --path under a flood: the reader thread writes the batches whose routes, functions and namespaces were all described', async () => {
    // two senders behind one bridge: their drops share a location and an interface (the host's
    // br0), and with only the flood's port traced the second's batches are new only by the
    // namespace their steps crossed
    const host = lab.netns('rwh');
    const senders = [lab.netns('rws'), lab.netns('rwt')];
    lab.exec(host, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
    lab.exec(host, 'ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'br0']);
    lab.exec(host, 'ip', ['link', 'set', 'br0', 'up']);
    senders.forEach((ns, i) => {
      lab.veth(host, `p${i}`, ns, 'eth0');
      lab.exec(host, 'ip', ['link', 'set', `p${i}`, 'master', 'br0']);
      lab.exec(ns, 'ip', ['addr', 'add', `10.77.0.${i + 2}/24`, 'dev', 'eth0']);
    });
    const to = (ns: string, seconds: number) =>
      new Promise<void>((resolve, reject) => {
        const p = spawn('ip', ['netns', 'exec', ns, flood, '10.77.0.1', '9', String(seconds)], { stdio: 'ignore' });
        p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`flood exited ${code}`))));
      });
    const r = await recordFlood('path', { packetPath: 'tracepoints', port: 9 }, async () => {
      const first = to(senders[0], 3);
      await new Promise((res) => setTimeout(res, 1500));
      await to(senders[1], 1);
      await first;
    });
    expect(r.paths).toBeGreaterThan(10_000);
    expect(r.unnamed).toBe(0);
    for (const ns of senders) expect(r.netns).toContain(statSync(`/run/netns/${ns}`).ino);
    expect(r.native.records).toBeGreaterThan(r.events * 0.5);
    expect(r.events).toBe(r.summary.stats.delivered);
  });

  it('record on a disk that fills mid-flood: the error names the file, exit 1, and what fit reads back', async () => {
    // a 1 MiB tmpfs in a mount namespace of the test's own: it vanishes with the shell
    const ns = lab.netns('full');
    const d = join(dir, 'full');
    const script = [
      `mkdir -p ${d} && mount -t tmpfs -o size=1m tmpfs ${d} || exit 99`,
      `${process.execPath} ${BIN} record -o ${d}/r.dtr --netns ${ns} --duration 8 --ready-file ${d}/ready 2> ${d}/err &`,
      `while [ ! -e ${d}/ready ] && kill -0 $! 2>/dev/null; do sleep 0.1; done`,
      `ip netns exec ${ns} ${flood} 127.0.0.1 9 2 > /dev/null`,
      'wait $!; echo "rc=$?"',
      `cat ${d}/err >&2`,
      `${process.execPath} ${BIN} report ${d}/r.dtr --json`,
    ].join('\n');
    const res = await runCommand(['unshare', '--mount', '--propagation', 'private', 'bash', '-c', script]);
    expect(res.stdout).toMatch(/^rc=1$/m);
    expect(res.stderr).toContain(`${d}/r.dtr: the disk is full`);
    // said once, as a sentence: no stack trace of an unhandled error
    expect(res.stderr).not.toMatch(/^\s+at |Node\.js v/m);
    const doc = JSON.parse(res.stdout.slice(res.stdout.indexOf('{')));
    expect(doc.damage.unfinished).toBe(true);
    expect(doc.report.events).toBeGreaterThan(1000);
  });

  it('events arrive in batches, not dribbles: one handoff to JavaScript per hundreds of drops', async () => {
    // the reader sleeps until the program wakes it for a batch (64 KiB) or 50 ms pass; a
    // level-triggered wait returns at once under a flood: a handful of events per handoff.
    // The ring is record's: on a 2 MiB one (~9k events) two CI runs lost 6-7k events; whether
    // the reader keeps up is the unfiltered tests' question, not this one's
    const ns = lab.netns('bat');
    const netns = statSync(`/run/netns/${ns}`).ino;
    let batches = 0;
    let events = 0;
    let kept: Buffer | null = null;
    const capture = CaptureRun.start({ ...floodTracer(), netns }, [
      {
        events: true,
        batch(b) {
          batches++;
          events += b.count;
          expect(b.buf.length).toBe(b.count * b.stride);
          kept = b.buf;
        },
      },
    ], { signals: false });
    const sent = await run(ns, 2);
    capture.stop();
    const summary = await capture.done;
    expect(sent).toBeGreaterThan(10_000);
    expect(events + summary.stats.lost).toBe(summary.exact);
    expect(summary.stats.lost).toBeLessThanOrEqual(summary.exact * 0.01);
    expect(events / batches).toBeGreaterThan(64);
    // a batch lives for its callback only (its memory is freed then): one kept reads as empty
    expect(kept!.length).toBe(0);
  });

  it('without a wakeup threshold (the addon\'s default) the reader sleeps when idle and still delivers every drop', async () => {
    // the waits for a batch apply only with a threshold; without one the reader once
    // returned at once on every poll: a thread spinning on a CPU while nothing dropped
    const ns = lab.netns('nothr');
    const netns = statSync(`/run/netns/${ns}`).ino;
    let events = 0;
    const capture = CaptureRun.start({ attach: 0, netns }, [{ events: true, batch: (b) => void (events += b.count) }], { signals: false });
    const cpu0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1500));
    const idle = process.cpuUsage(cpu0);
    lab.udp(ns, '127.0.0.1', 9, 5);
    capture.stop();
    const summary = await capture.done;
    // a spinning reader costs ~1.5 s of CPU here; an idle one next to nothing
    expect((idle.user + idle.system) / 1000).toBeLessThan(500);
    expect(summary.exact).toBe(5);
    expect(events).toBe(5);
  });

  it('trace --sample 7: one event per 7 drops of each CPU, and delivered + lost + not sent == kernel count == Udp NoPorts', async () => {
    const ns = lab.netns('fs');
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = start(['trace', '--json', '--sample', '7', '--netns', ns]);
    await t.ready();
    await run(ns, 2);
    const res = await t.stop('SIGINT');
    const noPorts = lab.snmp(ns, 'Udp', 'NoPorts') - before;
    expect(res.code).toBe(0);
    const m = /(\d+) printed, (\d+) delivered, (\d+) lost, (\d+) counted but not sent \(--sample\), the kernel counted (\d+) drops?/.exec(res.stderr)!;
    expect(m).not.toBeNull();
    const [printed, delivered, lost, notSent, counted] = m.slice(1).map(Number);
    expect(counted).toBe(noPorts);
    expect(delivered + lost + notSent).toBe(counted);
    expect(printed).toBe(delivered);
    // each CPU sends its 1st, 8th, 15th... drop: per CPU ceil(n / 7)
    const cpus = availableParallelism();
    expect(delivered + lost).toBeGreaterThanOrEqual(Math.floor(counted / 7));
    expect(delivered + lost).toBeLessThanOrEqual(Math.ceil(counted / 7) + cpus);
  });

  // a key counts in a per-CPU hot slot when it got one, else in the hash; user space sums both
  it.each([
    ['off (hash only)', ['--hot-slots', '0']],
    ['one slot (the second key on a CPU falls back to the hash)', ['--hot-slots', '1']],
    ['at its default size', []],
  ])('exact counts per key with the hot slots %s', async (_name, extra) => {
    const a = lab.netns('ha');
    const b = lab.netns('hb');
    lab.veth(a, 'eth0', b, 'eth0');
    lab.exec(a, 'ip', ['addr', 'add', '10.9.0.1/24', 'dev', 'eth0']);
    lab.exec(b, 'ip', ['addr', 'add', '10.9.0.2/24', 'dev', 'eth0']);
    const t = start(['live', '--plain', '--no-events', '--interval', '0.3', '--netns', b, '--reason', 'NO_SOCKET', ...extra]);
    await t.ready();
    const before = lab.snmp(b, 'Udp', 'NoPorts');
    lab.udp(a, '10.9.0.2', 5556, 7); // dropped in b, arriving on eth0
    lab.udp(b, '127.0.0.1', 5557, 3); // dropped in b on lo
    await run(b, 1); // and a flood on lo, spread over both CPUs' slots and hash
    const res = await t.stop('SIGINT');
    const noPorts = lab.snmp(b, 'Udp', 'NoPorts') - before;
    expect(res.code).toBe(0);
    const byIface = new Map<string, number>();
    for (const line of res.stdout.split('\n').filter(Boolean)) {
      const iface = line.split(' ').pop()!;
      byIface.set(iface, (byIface.get(iface) ?? 0) + Number(line.split(' ')[0]));
    }
    expect(byIface.get('eth0')).toBe(7);
    expect(byIface.get('lo')).toBe(noPorts - 7);
    expect(res.stderr).toContain(`${noPorts} drops counted in the kernel`);
  });

  it('counting only (live --plain --no-events) adds up to Udp NoPorts exactly', async () => {
    const ns = lab.netns('fc');
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = start(['live', '--plain', '--no-events', '--interval', '0.5', '--netns', ns]);
    await t.ready();
    await run(ns, 2);
    const res = await t.stop('SIGINT');
    const noPorts = lab.snmp(ns, 'Udp', 'NoPorts') - before;
    expect(res.code).toBe(0);
    const total = res.stdout
      .split('\n')
      .filter(Boolean)
      .reduce((n, l) => n + Number(l.split(' ')[0]), 0);
    expect(total).toBe(noPorts);
    expect(res.stderr).toContain(`${noPorts} drops counted in the kernel`);
  });
});
