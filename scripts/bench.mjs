#!/usr/bin/env node
// Flood benchmark: how much each tracer costs the kernel's drop path.
//
// For each scenario a flood (scripts/flood/flood.c, sendmmsg) drops packets inside namespaces
// this script creates; the drop rate is read from the kernel's own counter (Udp NoPorts, or the
// iptables rule's packet counter). Every repetition measures every mode in turn, and each mode's
// rate is divided by the untraced rate of the same repetition. Medians are printed, with each
// tracer's own BPF programs' nanoseconds per drop (kernel.bpf_stats_enabled, restored after).
// droptrace is driven only through its public CLI, so any row can be reproduced by hand.
//
// With --unfiltered droptrace runs with no filter at all, as users first run it (the bpftrace
// one-liners never filter).
//
//   sudo node scripts/bench.mjs [--reps 3] [--seconds 3] [--modes a,b] [--scenarios a,b] [--unfiltered | --filters "…"] [--sample N] [--json]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'droptrace.js');
const RING_ADDON = join(ROOT, 'build', 'ring', 'Release', 'droptrace.node');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const REPS = Number(opt('reps', '3'));
const SECONDS = Number(opt('seconds', '3'));
const JSON_OUT = args.includes('--json');
const UNFILTERED = args.includes('--unfiltered');
// --filters "…": droptrace's filters instead of the scenario's (e.g. one the flood does not match,
// to measure what tracing costs the traffic it is not looking at)
const FILTERS = opt('filters', null);
// --sample N: the droptrace-sample mode's one event per N drops (10 unless told)
const SAMPLE = opt('sample', '10');
const work = mkdtempSync(join(tmpdir(), 'droptrace-bench-'));
const FLOOD = join(work, 'flood');
const TAG = `db${process.pid % 100000}`;
const log = (s) => !JSON_OUT && process.stderr.write(s + '\n');

if (process.getuid() !== 0) {
  console.error('bench: run as root (it creates namespaces and loads BPF)');
  process.exit(2);
}
execFileSync('cc', ['-O2', '-o', FLOOD, join(ROOT, 'scripts', 'flood', 'flood.c')]);
const hasBpftrace = spawnSync('bpftrace', ['--version']).status === 0;
const hasPerf = spawnSync('perf', ['--version']).status === 0;
// per-program run time and count, for every tracer alike (each run costs two clock reads more)
const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
const statsWas = readFileSync(STATS_SYSCTL, 'utf8').trim();
writeFileSync(STATS_SYSCTL, '1');

const sh = (cmd, a, o = {}) => execFileSync(cmd, a, { encoding: 'utf8', ...o });
const nsx = (ns, cmd, a) => sh('ip', ['netns', 'exec', ns, cmd, ...a]);
const created = [];
function netns(name) {
  const n = `${TAG}-${name}`;
  sh('ip', ['netns', 'add', n]);
  created.push(n);
  nsx(n, 'ip', ['link', 'set', 'lo', 'up']);
  return n;
}
function cleanup() {
  writeFileSync(STATS_SYSCTL, statsWas);
  for (const n of created.splice(0)) spawnSync('ip', ['netns', 'del', n]);
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function snmp(ns, field) {
  const lines = nsx(ns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp:'));
  return Number(lines[1].split(/\s+/)[lines[0].split(/\s+/).indexOf(field)]);
}

const SCENARIOS = {
  'closed-port': () => {
    const ns = netns('cp');
    return {
      desc: 'UDP to a closed port on loopback (NO_SOCKET)',
      flood: (s) => nsx(ns, FLOOD, ['127.0.0.1', '9', String(s)]),
      counter: () => snmp(ns, 'NoPorts'),
      filters: ['--netns', ns, '--port', '9'],
    };
  },
  netfilter: () => {
    const host = netns('nfh');
    const pod = netns('nfp');
    nsx(host, 'ip', ['link', 'add', 'cni0', 'type', 'bridge']);
    nsx(host, 'ip', ['addr', 'add', '10.250.1.1/24', 'dev', 'cni0']);
    nsx(host, 'ip', ['link', 'set', 'cni0', 'up']);
    nsx(pod, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vethb', 'netns', host]);
    nsx(host, 'ip', ['link', 'set', 'vethb', 'master', 'cni0', 'up']);
    nsx(pod, 'ip', ['addr', 'add', '10.250.1.2/24', 'dev', 'eth0']);
    nsx(pod, 'ip', ['link', 'set', 'eth0', 'up']);
    nsx(host, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9999', '-j', 'DROP']);
    return {
      desc: 'UDP across veth + bridge into an iptables DROP rule (NETFILTER_DROP)',
      flood: (s) => nsx(pod, FLOOD, ['10.250.1.1', '9999', String(s)]),
      counter: () => {
        const line = nsx(host, 'iptables', ['-L', 'INPUT', '-v', '-x', '-n']).split('\n').find((l) => /dpt:9999/.test(l));
        return Number(line.trim().split(/\s+/)[0]);
      },
      filters: ['--netns', host, '--port', '9999'],
    };
  },
};

/** Modes: how to start each tracer. `ready` resolves once it is attached. */
const MODES = {
  untraced: null,
  'droptrace-count': { cmd: [process.execPath, BIN, 'live', '--plain', '--no-events', '--interval', '1'], droptrace: true, note: 'droptrace live --plain --no-events' },
  'droptrace-events': { cmd: [process.execPath, BIN, 'trace', '--json'], droptrace: true, note: 'droptrace trace --json > /dev/null' },
  // the event path's stages, from options alone (run --unfiltered): a host filter every IPv4
  // packet passes makes counting parse the headers; tunnel ports "none" leave the inner-flow
  // check out of events. count → count-parse is the parse, count-parse → events-notunnel the
  // event itself (reserve, fill, submit), events-notunnel → events the tunnel check
  'droptrace-count-parse': { cmd: [process.execPath, BIN, 'live', '--plain', '--no-events', '--interval', '1', '--host', '0.0.0.0/0'], droptrace: true, note: 'live --no-events --host 0.0.0.0/0 (counts, headers parsed)' },
  'droptrace-events-notunnel': { cmd: [process.execPath, BIN, 'trace', '--json', '--vxlan-ports', 'none', '--geneve-ports', 'none'], droptrace: true, note: 'trace --json, no tunnel ports' },
  // --path: the skb's steps through the path tracepoints too (every packet, not only drops, runs them)
  'droptrace-events-path': { cmd: [process.execPath, BIN, 'trace', '--json', '--path'], droptrace: true, note: 'droptrace trace --json --path > /dev/null' },
  'droptrace-sample': { cmd: [process.execPath, BIN, 'trace', '--json', '--sample', SAMPLE], droptrace: true, note: `droptrace trace --json --sample ${SAMPLE} > /dev/null` },
  // the same trace through the comparison build that drains with libbpf's consumer (scripts/bench-ring builds it)
  'droptrace-events-libbpf-ring': existsSync(RING_ADDON)
    ? { cmd: [process.execPath, BIN, 'trace', '--json'], droptrace: true, env: { DROPTRACE_ADDON: RING_ADDON }, note: 'trace --json, reader draining via ring_buffer__consume' }
    : undefined,
  'droptrace-record': { cmd: [process.execPath, BIN, 'record', '--force', '-o', join(work, 'bench.dtr')], droptrace: true, note: 'droptrace record -o FILE' },
  // every batch written by JavaScript: what the reader thread's own writes save
  'droptrace-record-js': { cmd: [process.execPath, BIN, 'record', '--force', '-o', join(work, 'bench.dtr')], droptrace: true, env: { DROPTRACE_RECORD_IN_JS: '1' }, note: 'DROPTRACE_RECORD_IN_JS=1 droptrace record -o FILE' },
  // perf copies the ring's pages to its file and decodes later: the cheapest way to keep every event
  'perf-record': hasPerf ? { cmd: ['perf', 'record', '-e', 'skb:kfree_skb', '-a', '-o', join(work, 'perf.data')], readyAfterMs: 1500, note: 'perf record -e skb:kfree_skb -a' } : undefined,
  'bpftrace-map': hasBpftrace ? { cmd: ['bpftrace', '-e', 'tracepoint:skb:kfree_skb { @[args->location] = count(); }'], note: 'bpftrace, count in a map' } : undefined,
  'bpftrace-print': hasBpftrace ? { cmd: ['bpftrace', '-e', 'tracepoint:skb:kfree_skb { printf("%p %d\\n", args->location, args->reason); }'], note: 'bpftrace printf per event' } : undefined,
};

function procStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpuTicks: Number(f[11]) + Number(f[12]), rssKb: hwm };
  } catch {
    return null;
  }
}

async function startTracer(mode, filters) {
  const m = MODES[mode];
  const ready = join(work, `ready-${mode}`);
  rmSync(ready, { force: true });
  const cmd = m.droptrace ? [...m.cmd, ...filters, '--ready-file', ready] : m.cmd;
  // stdout goes to a file, never a pipe: this script blocks while the flood runs and would
  // otherwise be the slow reader that the tracer waits for (the issue's "> /dev/null")
  const outFile = join(work, `out-${mode}`);
  const outFd = openSync(outFile, 'w');
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', m.droptrace ? openSync('/dev/null', 'w') : outFd, 'pipe'], env: { ...process.env, ...m.env } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.on('close', () => r()));
  const t0 = Date.now();
  for (;;) {
    if (m.readyAfterMs ? Date.now() - t0 >= m.readyAfterMs : m.droptrace ? existsSync(ready) : readFileSync(outFile, 'utf8').slice(0, 200).includes('Attaching')) break;
    if (Date.now() - t0 > 20000 || child.exitCode !== null) throw new Error(`${mode} did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 200));
  closeSync(outFd);
  return { child, exited, get stderr() { return stderr; } };
}

/** BPF programs now: id → { runCnt, runNs } (kernel.bpf_stats_enabled counts both). */
function programs() {
  const out = new Map();
  for (const p of JSON.parse(sh('bpftool', ['prog', 'show', '-j']))) out.set(p.id, { runCnt: p.run_cnt ?? 0, runNs: p.run_time_ns ?? 0 });
  return out;
}

async function measure(scn, mode) {
  const known = programs();
  const tracer = MODES[mode] ? await startTracer(mode, UNFILTERED ? [] : FILTERS ? FILTERS.split(' ') : scn.filters) : null;
  const ours = tracer ? [...programs().keys()].filter((id) => !known.has(id)) : [];
  const before = scn.counter();
  const cpu0 = tracer && procStat(tracer.child.pid);
  const t0 = process.hrtime.bigint();
  scn.flood(SECONDS);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = scn.counter();
  const res = { mode, rate: (after - before) / secs, kernel: after - before };
  if (tracer) {
    // the tracer's own programs: nanoseconds per run, from the kernel's BPF stats
    const now = programs();
    let cnt = 0;
    let ns = 0;
    for (const id of ours) {
      cnt += now.get(id)?.runCnt ?? 0;
      ns += now.get(id)?.runNs ?? 0;
    }
    res.progNs = cnt ? ns / cnt : null;
    // per drop, every program of the tracer: differs from per run where programs run for more than drops (--path)
    res.nsPerDrop = res.kernel ? ns / res.kernel : null;
    await new Promise((r) => setTimeout(r, 300));
    const cpu1 = procStat(tracer.child.pid);
    tracer.child.kill('SIGINT');
    // bpftrace 0.17 sometimes never returns from SIGINT: give every tracer 10 s, then SIGKILL
    const late = setTimeout(() => {
      log(`  ${mode} ignored SIGINT for 10 s: killed`);
      tracer.child.kill('SIGKILL');
    }, 10_000);
    await tracer.exited;
    clearTimeout(late);
    const ticks = 100; // USER_HZ
    res.cpuPct = cpu1 && cpu0 ? (100 * (cpu1.cpuTicks - cpu0.cpuTicks)) / ticks / (secs + 0.3) : null;
    res.rssMb = cpu1 ? cpu1.rssKb / 1024 : null;
    const e = tracer.stderr;
    let m = /(\d+) delivered, (\d+) lost, (?:(\d+) counted but not sent \(--sample\), )?the kernel counted (\d+)/.exec(e);
    if (m) Object.assign(res, { delivered: +m[1], lost: +m[2], notSent: +(m[3] ?? 0), counted: +m[4] });
    m = /\((\d+) delivered, (\d+) lost; the kernel counted (\d+)\)/.exec(e);
    if (m) Object.assign(res, { delivered: +m[1], lost: +m[2], counted: +m[3] });
    // perf: "[ perf record: Captured and wrote 12.3 MB perf.data (123456 samples) ]", and any "lost" chunks
    m = /\((\d+) samples\)/.exec(e);
    if (m) Object.assign(res, { delivered: +m[1], lost: +(/lost (\d+)/.exec(e)?.[1] ?? 0), counted: res.kernel });
    m = /(\d+) drops counted in the kernel/.exec(e);
    if (m && res.counted === undefined) res.counted = +m[1];
  }
  return res;
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

const asked = (opt('modes', '') || Object.keys(MODES).join(',')).split(',');
// a peer that is not installed is said, not silently left out of the table
const MISSING = { 'perf-record': 'perf (apt-get install linux-perf)', 'bpftrace-map': 'bpftrace (apt-get install bpftrace)', 'bpftrace-print': 'bpftrace (apt-get install bpftrace)' };
for (const m of asked) {
  if (MODES[m] !== undefined) continue;
  if (!(m in MODES)) {
    console.error(`bench: no mode ${m} (modes: ${Object.keys(MODES).join(', ')})`);
    process.exit(2);
  }
  log(`bench: ${m} left out: ${MISSING[m] ?? 'its tool'} is missing`);
}
const wantModes = asked.filter((m) => MODES[m] !== undefined);
const wantScn = (opt('scenarios', '') || Object.keys(SCENARIOS).join(',')).split(',');
if (!wantModes.includes('untraced')) wantModes.unshift('untraced');
const results = [];
/** per scenario and record mode: its CPU over perf record's, one ratio per repetition */
const recordVsPerf = [];
try {
  for (const name of wantScn) {
    const scn = SCENARIOS[name]();
    log(`${name}: ${scn.desc}; ${REPS} repetitions of ${SECONDS}s per mode; droptrace ${UNFILTERED ? 'unfiltered' : `filtered (${FILTERS ?? scn.filters.join(' ')})`}`);
    const reps = [];
    for (let r = 0; r < REPS; r++) {
      const rep = {};
      for (const mode of wantModes) {
        rep[mode] = await measure(scn, mode);
        log(`  rep ${r + 1} ${mode.padEnd(17)} ${Math.round(rep[mode].rate)} drops/s`);
      }
      for (const mode of wantModes) rep[mode].ratio = rep[mode].rate / rep.untraced.rate;
      reps.push(rep);
    }
    // the recorder against perf record, paired within each repetition: the VM's speed (and
    // with it both tools' CPU) moves between repetitions more than the two differ
    for (const mode of wantModes.filter((m) => m.startsWith('droptrace-record'))) {
      if (!reps[0]['perf-record']) break;
      const pairs = reps.map((r) => r[mode].cpuPct / r['perf-record'].cpuPct).filter(Number.isFinite);
      recordVsPerf.push({ scenario: name, mode, cpuRatios: pairs });
    }
    for (const mode of wantModes) {
      const rows = reps.map((r) => r[mode]);
      results.push({
        scenario: name,
        mode,
        how: MODES[mode]?.note ?? 'no tracer',
        rate: median(rows.map((x) => x.rate)),
        ratio: median(rows.map((x) => x.ratio)),
        progNs: median(rows.map((x) => x.progNs)),
        nsPerDrop: median(rows.map((x) => x.nsPerDrop)),
        cpuPct: median(rows.map((x) => x.cpuPct)),
        rssMb: median(rows.map((x) => x.rssMb)),
        lostPct: median(rows.map((x) => (x.lost !== undefined ? (100 * x.lost) / Math.max(1, x.counted) : null))),
        accounted: rows.every((x) => x.counted === undefined || x.delivered === undefined || x.delivered + x.lost + (x.notSent ?? 0) === x.counted),
        countedEqualsKernel: rows.every((x) => x.counted === undefined || x.counted === x.kernel),
      });
    }
  }
} finally {
  cleanup();
}

if (JSON_OUT) {
  process.stdout.write(JSON.stringify({ date: new Date().toISOString(), kernel: sh('uname', ['-r']).trim(), reps: REPS, seconds: SECONDS, results, recordVsPerf }, null, 2) + '\n');
} else {
  const f = (x, d = 0) => (x === null || x === undefined ? '-' : x.toFixed(d));
  console.log(`${'scenario'.padEnd(12)} ${'mode'.padEnd(17)} ${'drops/s'.padStart(9)} ${'ratio'.padStart(6)} ${'ns/run'.padStart(7)} ${'ns/drop'.padStart(7)} ${'cpu%'.padStart(5)} ${'rssMB'.padStart(6)} ${'lost%'.padStart(6)}  delivered+lost=counted  counted=kernel`);
  for (const r of results) {
    console.log(
      `${r.scenario.padEnd(12)} ${r.mode.padEnd(17)} ${f(r.rate).padStart(9)} ${f(r.ratio, 2).padStart(6)} ${f(r.progNs).padStart(7)} ${f(r.nsPerDrop).padStart(7)} ${f(r.cpuPct, 1).padStart(5)} ${f(r.rssMb).padStart(6)} ${f(r.lostPct, 1).padStart(6)}  ${String(r.accounted).padEnd(22)} ${r.countedEqualsKernel}`,
    );
  }
  // the recorder against the cheapest way to keep every event, per scenario (the target is ≤ 1.5)
  for (const r of recordVsPerf) {
    const xs = [...r.cpuRatios].sort((a, b) => a - b);
    console.log(`${r.scenario}: ${r.mode} CPU / perf record's, paired in each repetition = ${f(median(xs), 2)} (${xs.map((x) => f(x, 2)).join(', ')})`);
  }
}
