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
import { EV, ifnameAt } from '../src/model/decode.js';
import { baseTracerConfig, type TraceOptions } from '../src/cli/common.js';
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
    // two cores). The bound leaves that room and still fails a reader that falls behind (one
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
    expect(lost).toBeLessThanOrEqual(counted * 0.05);
  });

  it('record: the reader thread writes the batches with nothing new itself, and every events block comes after the names it needs', async () => {
    // two namespaces, the second flooding from the middle of the first's flood: its lo, its
    // namespace and (unfiltered) whatever else the machine drops are new mid-stream
    const a = lab.netns('rwa');
    const b = lab.netns('rwb');
    const file = join(dir, 'reader-thread.dtr');
    rmSync(file, { force: true });
    const recorder = new Recorder(new RecordingWriter(openSync(file, 'wx', 0o600)), {
      syms: loadLocalSymbols().table,
      reasons: localReasons(),
      netnsName: (ino) => (ino === statSync(`/run/netns/${a}`).ino ? a : ino === statSync(`/run/netns/${b}`).ino ? b : null),
      podName: () => null,
      filters: 'none',
      version: 'test',
    });
    const capture = CaptureRun.start({ ...baseTracerConfig({ ringSize: '8M', countEntries: '16384', attach: 'auto' } as TraceOptions) }, [recorder], { signals: false });
    const first = run(a, 3);
    await new Promise((r) => setTimeout(r, 1500));
    await run(b, 1);
    await first;
    capture.stop();
    const summary = await capture.done;
    const native = capture.tracer.written();
    expect(native.errno).toBe(0);

    const scan = scanRecording(readFileSync(file));
    expect(scan).toMatchObject({ truncated: false, unfinished: false, corrupted: 0 });
    const named = new Set<string>();
    const ifaces = new Set<string>();
    const netns = new Set<string>();
    let events = 0;
    let unnamed = 0;
    for (const blk of scan.blocks) {
      if (blk.type === BLOCK.SYMBOLS) for (const s of JSON.parse(blk.payload.toString()) as Array<{ address: string }>) named.add(s.address);
      if (blk.type === BLOCK.NAMES) {
        const n = JSON.parse(blk.payload.toString()) as { interfaces: Array<[number, number, string]>; netns: Array<[number, string]> };
        for (const [ns, ifindex] of n.interfaces) ifaces.add(`${ns}/${ifindex}`);
        for (const [ns] of n.netns) netns.add(String(ns));
      }
      if (blk.type !== BLOCK.EVENTS) continue;
      const count = blk.payload.readUInt32LE(0);
      const stride = blk.payload.readUInt32LE(4);
      const buf = blk.payload.subarray(8);
      for (let i = 0, o = 0; i < count; i++, o += stride) {
        const loc = `0x${buf.readBigUInt64LE(o + EV.location).toString(16)}`;
        const ns = buf.readUInt32LE(o + EV.netns);
        const iface = `${ns}/${buf.readUInt32LE(o + EV.ifindex)}`;
        // a cut-short file names everything it holds: the names precede the first event that needs them
        if (!named.has(loc) || (ifnameAt(buf, o) && !ifaces.has(iface))) unnamed++;
        events++;
      }
    }
    expect(unnamed).toBe(0);
    expect(netns).toContain(String(statSync(`/run/netns/${b}`).ino));
    expect(events).toBe(summary.stats.delivered);
    expect(summary.stats.delivered + summary.stats.lost).toBe(summary.exact);
    // under the flood nearly every batch holds nothing new: the reader thread wrote them
    expect(native.records).toBeGreaterThan(events * 0.5);
    expect(native.records).toBeLessThan(events);
    expect(recorder.written).toBe(events);
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
    // level-triggered wait returns at once under a flood: a handful of events per handoff
    const ns = lab.netns('bat');
    const netns = statSync(`/run/netns/${ns}`).ino;
    let batches = 0;
    let events = 0;
    let kept: Buffer | null = null;
    const capture = CaptureRun.start({ ...baseTracerConfig({ ringSize: '2M', countEntries: '16384', attach: 'auto' } as TraceOptions), netns }, [
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
    expect(summary.stats.lost).toBe(0);
    expect(events).toBe(summary.exact);
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
