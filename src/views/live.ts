/**
 * Drives the live view of a Feed until it ends: the blessed screen, or
 * dropwatch-style lines (plain), or one JSON snapshot per interval; then
 * the closing count on stderr.
 */
import { hostname, release } from 'node:os';
import type { GroupBy, SortBy } from '../analysis/snapshot.js';
import { rowHint, rowVerdict } from '../analysis/context.js';
import type { Feed } from '../analysis/feed.js';
import { countedLine, CounterWatch } from '../analysis/gather.js';
import { netnsNames } from '../host/netns.js';
import type { CountRecord, TrapCount } from '../model/decode.js';
import { TrapDeltas, trapLabel, trapPackets, trapRecord, trapsByName } from '../model/traps.js';
import { formatPlain, intervalDrops } from './plain.js';
import type { LiveScreen } from './screen.js';

export interface LiveViewOptions {
  mode: 'screen' | 'plain' | 'json';
  /** seconds between samples */
  interval: number;
  group: GroupBy;
  sort: SortBy;
  /** show the expected noise as rows (--all) */
  all: boolean;
}

export async function runLiveView(feed: Feed, opts: LiveViewOptions): Promise<void> {
  const { mode, interval } = opts;
  const benign = opts.all ? 'show' : 'fold';

  let prev = new Map<string, number>();
  const emitPlain = (counts: CountRecord[]) => {
    const { lines, next } = intervalDrops(prev, counts);
    prev = next;
    if (lines.length) process.stdout.write(lines.map((l) => formatPlain(l, feed.naming, feed.agg.interfaceName(l.netns, l.ifindex), feed.hasReasons)).join('\n') + '\n');
  };

  // drops the tracepoint never sees, from the counters (the kernel only: a recording has none)
  const watch = feed.source === 'kernel' ? new CounterWatch(netnsNames, feed.netns, feed.agg.keyTotals(), Date.now()) : null;
  // and the drops devices report (devlink traps): exact, since the tracer attached
  const traps = () => feed.traps?.() ?? [];
  const counted = () => (watch ? watch.latest.map(countedLine) : []);
  const trapLines = () => trapsByName(traps()).map((t) => `devlink trap ${trapLabel(t)}: ${t.packets} so far`);
  const trapDeltas = new TrapDeltas();
  const emitTraps = (now: TrapCount[]) => {
    const grew = trapDeltas.next(now);
    if (grew.length) process.stdout.write(grew.map((c) => `${c.packets} packets trapped by devlink trap ${trapLabel(c.trap)}`).join('\n') + '\n');
  };

  let screen: LiveScreen | null = null;
  if (mode === 'screen') {
    // blessed is loaded only for the screen: --plain and --json stay lean
    const { LiveScreen } = await import('./screen.js');
    screen = new LiveScreen(
      {
        header: () => ({ host: hostname(), kernel: release(), attach: feed.attach, filters: feed.filters(), ...feed.stats(), source: feed.source }),
        snapshot: (g, s, b) => feed.agg.snapshot(feed.now(), g, s, b),
        clear: () => feed.agg.clear(feed.now()),
        quit: () => feed.stop(),
        setFilters: (text) => feed.setFilters(text),
        hint: rowHint,
        verdict: rowVerdict,
        counted: () => [...counted(), ...trapLines()],
        stacks: (row, g) => {
          const site = g === 'location' ? row.key : row.locations[0]?.key;
          return site && feed.stacks ? feed.stacks(site) : null;
        },
        paths: (row, g) => {
          const site = g === 'location' ? row.key : row.locations[0]?.key;
          return site && feed.paths ? feed.paths(site) : null;
        },
        netnsName: (label) => {
          const inode = Number(label.split(' ')[0]);
          return feed.naming.netns?.(inode) ?? feed.naming.pod?.(inode, 0) ?? label;
        },
      },
      { group: opts.group, sort: opts.sort, noColor: 'NO_COLOR' in process.env, benign },
    );
    // whatever happens, give the terminal back
    process.once('exit', () => screen?.destroy());
  } else {
    process.stderr.write(`droptrace: ${feed.describe}; filters: ${feed.filters()}; every ${interval}s\n`);
  }

  const tick = () => {
    const now = feed.now();
    const counts = feed.sample(now);
    const period = watch?.tick(Date.now(), feed.agg.keyTotals()) ?? false;
    if (mode === 'plain') {
      emitPlain(counts);
      if (period && watch!.latest.length) process.stdout.write(watch!.latest.map((f) => `counted, not traced: ${countedLine(f)}`).join('\n') + '\n');
      emitTraps(traps());
    } else if (mode === 'json') {
      const { recent: _recent, ...rest } = feed.agg.snapshot(now, opts.group, opts.sort, benign);
      const st = feed.stats();
      const hw = traps().map(trapRecord);
      process.stdout.write(JSON.stringify({ ...rest, counted: counted(), traps: hw, delivered: st.delivered, lost: st.lost, filters: feed.filters() }) + '\n');
    } else screen!.refresh();
    // a replay ends by itself where a script reads it; the screen waits for q
    if (feed.finished()) {
      if (mode === 'screen') screen!.say('end of recording: q quits');
      else feed.stop();
    }
  };
  const timer = setInterval(() => {
    try {
      tick();
    } catch (err) {
      screen?.destroy();
      throw err;
    }
  }, interval * 1000);

  try {
    const end = await feed.done;
    clearInterval(timer);
    // the drops of the last, partial interval
    if (mode === 'plain') {
      emitPlain(end.counts);
      emitTraps(end.traps ?? []);
    }
    screen?.destroy();
    if (end.note) process.stderr.write(`droptrace: warning: ${end.note}\n`);
    const st = feed.stats();
    const missed = st.missed ? `, ${st.missed} not seen at all (the kernel skipped the program while it was already running on that CPU)` : '';
    const trapped = trapPackets(end.traps ?? []);
    const hw = trapped ? `, ${trapped} packets trapped by devices (devlink)` : '';
    process.stderr.write(`droptrace: ${end.exact} drops counted in ${feed.source === 'replay' ? 'the recording' : 'the kernel'}${hw}, ${st.delivered} events delivered, ${st.lost} lost${missed}\n`);
  } finally {
    clearInterval(timer);
    screen?.destroy();
  }
}
