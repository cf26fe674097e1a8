#!/usr/bin/env node
// Reads the "SERIES what key=value …" lines the kernel matrix collected and prints the table:
// kernel × attach path × result. Exits 1 when a kernel fails what it should pass: every attach
// path the kernel supports delivers every drop its counter saw, the netns filter sees exactly
// its namespace's drops, a recording reports the kernel's count, and a qdisc's drops match its
// own counter (under the qdisc's own reason where the kernel gives one), and a device's trapped
// packets match devlink's own statistics.
import { readFileSync } from 'node:fs';

const rows = new Map();
for (const line of readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean)) {
  const [series, what, ...rest] = line.split(' ');
  const r = rows.get(series) ?? { series, trace: {} };
  rows.set(series, r);
  const kv = Object.fromEntries(rest.filter((w) => /^[a-z]+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  if (what === 'kernel') r.kernel = rest[0];
  else if (what === 'check') {
    r.checkRc = Number(kv.rc);
    try {
      r.check = JSON.parse(rest.slice(1).join(' '));
    } catch {
      r.check = null;
    }
  } else if (what === 'trace') r.trace[kv.attach] = { ...kv, refused: kv.refused !== undefined ? rest.slice(rest.findIndex((w) => w.startsWith('refused='))).join(' ').slice(8) : undefined };
  else if (what === 'path') (r.path ??= {})[kv.attach] = kv;
  else if (what === 'socket') (r.socket ??= {})[kv.attach] = { ...kv, refused: kv.refused !== undefined ? rest.slice(rest.findIndex((w) => w.startsWith('refused='))).join(' ').slice(8) : undefined };
  else if (what === 'qdisc') (r.qdisc ??= {})[kv.kind] = { ...kv, refused: kv.refused !== undefined ? rest.slice(rest.findIndex((w) => w.startsWith('refused='))).join(' ').slice(8) : undefined };
  else if (what === 'traps') (r.traps ??= {})[kv.attach] = { ...kv, refused: kv.refused !== undefined ? rest.slice(rest.findIndex((w) => w.startsWith('refused='))).join(' ').slice(8) : undefined };
  else if (what === 'netdevsim') r.netdevsim = kv.built;
  else if (what === 'pathfn') r.pathfn = { ...kv, refused: kv.refused !== undefined ? rest.slice(rest.findIndex((w) => w.startsWith('refused='))).join(' ').slice(8) : undefined };
  else r[what] = { ...kv, refused: kv.refused !== undefined ? rest.slice(rest.findIndex((w) => w.startsWith('refused='))).join(' ').slice(8) : undefined };
}

const ATTACH = ['tp_btf', 'raw_tp', 'fentry', 'kprobe'];
/** Whether this kernel offers the path at all (a refusal there is a failure, elsewhere a fact). */
function offered(r, a) {
  const c = r.check;
  if (!c) return true;
  if (a === 'tp_btf') return c.tpBtf;
  if (a === 'kprobe') return c.kprobesInKernel;
  // fentry needs BPF trampolines (5.5+, x86_64): every kernel of the matrix has them, unless
  // the kernel refuses them for a reason of its own (this VM's locked ftrace), which check says
  if (a === 'fentry') return !/refuses fentry programs although we are privileged/.test(c.attach?.fentry?.message ?? '');
  return true;
}

let fail = false;
const out = [['kernel', 'check (auto)', ...ATTACH, '--path (tp_btf, raw_tp)', '--path functions', 'netns filter', 'record → report', 'qdisc drops (tbf; fq)', 'receiving socket (every path)', 'hardware traps (tp_btf; raw_tp; record)', 'location (every path)']];
for (const r of rows.values()) {
  const cells = [`${r.kernel ?? r.series}${r.series === 'host' ? ' (host)' : ''}`];
  cells.push(r.checkRc === 0 ? `ok (${r.check?.selected})` : `FAILED (exit ${r.checkRc})`);
  if (r.checkRc !== 0) fail = true;
  for (const a of ATTACH) {
    const t = r.trace[a];
    const want = offered(r, a);
    if (!t) {
      cells.push('not run');
      fail = true;
    } else if (t.refused !== undefined) {
      cells.push(want ? `FAILED: ${t.refused.slice(0, 60)}` : 'not offered');
      if (want) fail = true;
    } else {
      const ok = t.rc === '0' && t.events === t.kernel && Number(t.kernel) === 5;
      cells.push(`${ok ? '' : 'FAILED '}${t.events}/${t.kernel} ${t.reasons?.replace(/,$/, '') || '-'}`);
      if (!ok) fail = true;
    }
  }
  // --path on both tracepoint flavours: every drop's path leaves and arrives on lo, locally routed
  const p = ['tp_btf', 'raw_tp'].map((a) => r.path?.[a]);
  const pok = p.every((x) => x && x.rc === '0' && x.events === x.kernel && x.paths === x.kernel && Number(x.kernel) === 5);
  cells.push(p.every(Boolean) ? `${pok ? '' : 'FAILED '}${p.map((x) => `${x.paths ?? '-'}/${x.kernel ?? '-'}`).join(', ')} (${(p[0].tracepoints ?? '').split(',').filter(Boolean).length} tracepoints${/qdisc_enqueue/.test(p[0].tracepoints ?? '') ? '' : ', no qdisc_enqueue'})` : 'not run');
  if (!pok) fail = true;
  // --path functions where the kernel has kprobe-multi: every drop's path names ip_rcv and the function that dropped it
  const f = r.pathfn;
  if (!f) {
    cells.push('not run');
    fail = true;
  } else if (f.refused !== undefined) {
    const absent = /hooks every kernel function that takes the skb with kprobes, which this kernel cannot/.test(f.refused);
    cells.push(absent ? 'not offered' : `FAILED: ${f.refused.slice(0, 60)}`);
    if (!absent) fail = true;
  } else {
    const fok = f.rc === '0' && f.events === f.kernel && f.paths === f.kernel && Number(f.kernel) === 5;
    cells.push(`${fok ? '' : 'FAILED '}${f.paths}/${f.kernel} (${f.functions} functions, ${f.via}, ${f.attachms} ms)`);
    if (!fok) fail = true;
  }
  const n = r.netns;
  const nok = n && n.rc === '0' && n.events === n.kernel && Number(n.kernel) === 4;
  cells.push(n ? (n.refused !== undefined ? 'FAILED' : `${nok ? '' : 'FAILED '}${n.events}/${n.kernel}`) : 'not run');
  if (!nok) fail = true;
  const rec = r.record;
  const rok = rec && rec.rc === '0' && rec.report === rec.kernel && Number(rec.kernel) === 6;
  cells.push(rec ? `${rok ? '' : 'FAILED '}${rec.report}/${rec.kernel}` : 'not run');
  if (!rok) fail = true;
  // a qdisc's drops (tbf everywhere, fq where the kernel has it): counted as the qdisc counted
  // them; with qdisc:qdisc_drop, under the qdisc's own reason although the free says QDISC_DROP
  const specific = !!r.check?.qdiscReasons;
  const qcells = [];
  for (const kind of ['tbf', 'fq']) {
    const q = r.qdisc?.[kind];
    if (!q) {
      qcells.push(`${kind} not run`);
      fail = true;
      continue;
    }
    if (q.refused !== undefined) {
      const absent = kind === 'fq' && /unknown/i.test(q.refused);
      qcells.push(absent ? `no ${kind}` : `${kind} FAILED: ${q.refused.slice(0, 50)}`);
      if (!absent) fail = true;
      continue;
    }
    const reasons = (q.reasons ?? '').split(',').filter(Boolean);
    // before 5.17 there are no reasons: the count alone is checked
    const hasReasons = r.check?.dropReasons?.available !== false;
    const named = !hasReasons
      ? reasons.length === 0
      : specific
        ? q.joined === '1' && reasons.length > 0 && reasons.every((x) => /^QDISC_DROP_[A-Z_0-9]+$/.test(x)) && (q.free === '-' || q.free === 'QDISC_DROP,')
        : reasons.length > 0 && reasons.every((x) => /^(QDISC|FQ|CAKE)_/.test(x));
    const ok = q.rc === '0' && q.events === q.tc && Number(q.tc) > 0 && named;
    qcells.push(`${ok ? '' : 'FAILED '}${kind} ${q.events}/${q.tc} ${reasons.join(',') || '-'}${specific && q.free && q.free !== '-' ? ` (freed as ${q.free.replace(/,$/, '')})` : ''}`);
    if (!ok) fail = true;
  }
  cells.push(qcells.join('; '));
  // the receiving socket (6.11+): every SOCKET_RCVBUFF drop names the reader's cgroup and address,
  // on every path the kernel offers, as many as Udp RcvbufErrors counted
  if (!r.check?.receivingSocket) cells.push('not offered (< 6.11)');
  else {
    const s = ATTACH.filter((a) => offered(r, a)).map((a) => [a, r.socket?.[a]]);
    const sok = s.length > 0 && s.every(([, x]) => x && x.refused === undefined && x.rc === '0' && Number(x.kernel) > 0 && x.events === x.kernel && x.named === x.kernel);
    cells.push(`${sok ? '' : 'FAILED '}${s.map(([a, x]) => (!x ? `${a} not run` : x.refused !== undefined ? `${a} ${x.refused.slice(0, 40)}` : `${x.named}/${x.kernel}`)).join(', ')}`);
    if (!sok) fail = true;
  }
  // hardware traps (devlink), where the kernel has devlink and netdevsim was built for it: every
  // drop or exception trap devlink counted, counted the same by droptrace (packets and bytes) on
  // both tracepoint flavours, and said in trace's summary
  if (!r.check?.hardwareTraps) cells.push('not offered (no devlink)');
  else if (r.traps?.all) {
    const absent = /no netdevsim module/.test(r.traps.all.refused ?? '') && r.netdevsim !== 'yes';
    cells.push(absent ? (r.netdevsim === 'no' ? 'FAILED: netdevsim not built' : 'no netdevsim') : `FAILED: ${(r.traps.all.refused ?? '').slice(0, 50)}`);
    if (!absent || r.netdevsim === 'no') fail = true;
  } else {
    const t = ['tp_btf', 'raw_tp'].map((a) => [a, r.traps?.[a]]);
    const rec = r.traps?.record;
    const tok =
      t.every(([, x]) => x && x.refused === undefined && x.rc === '0' && Number(x.traps) > 0 && x.matched === x.traps && x.events === x.kernel && x.summary === '1') &&
      rec && rec.refused === undefined && rec.rc === '0' && Number(rec.kernel) > 0 && rec.report === rec.kernel && rec.note === '1';
    const recCell = !rec ? 'record not run' : rec.refused !== undefined ? `record ${rec.refused.slice(0, 40)}` : `record ${rec.report}/${rec.kernel}`;
    cells.push(`${tok ? '' : 'FAILED '}${t.map(([a, x]) => (!x ? `${a} not run` : x.refused !== undefined ? `${a} ${x.refused.slice(0, 40)}` : `${x.events}/${x.kernel} in ${x.matched}/${x.traps} traps`)).join('; ')}; ${recCell}`);
    if (!tok) fail = true;
  }
  // every path must name the same drop site as the tracepoint, which has it as an argument
  const sites = ATTACH.map((a) => r.trace[a]).filter((t) => t && t.refused === undefined).map((t) => t.symbols?.replace(/,$/, ''));
  const same = sites.length > 0 && sites.every((x) => x === sites[0]);
  cells.push(same ? sites[0] : `FAILED: ${[...new Set(sites)].join(' / ')}`);
  if (!same) fail = true;
  out.push(cells);
}
const w = out[0].map((_, i) => Math.max(...out.map((r) => String(r[i]).length)));
for (const [i, r] of out.entries()) {
  console.log(`| ${r.map((c, j) => String(c).padEnd(w[j])).join(' | ')} |`);
  if (i === 0) console.log(`|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`);
}
console.log('cells: events delivered / drops the kernel counted (Udp NoPorts), and the reasons seen; --path: drops whose path left and reached lo, locally routed / counted; --path functions: drops whose path names ip_rcv and the dropping function / counted; qdisc drops: events / the qdisc\'s own drop counter (tc -s), and the reasons (the qdisc\'s own, where qdisc:qdisc_drop exists; \"freed as\": what the free itself said); receiving socket: SOCKET_RCVBUFF drops naming the reader\'s cgroup and address / Udp RcvbufErrors, per attach path offered; hardware traps: trapped packets droptrace counted / devlink -s trap show, in the traps whose packets and bytes match / the drop and exception traps devlink counted (netdevsim); record: the recording\'s trap packets / devlink\'s');
process.exit(fail ? 1 : 0);
