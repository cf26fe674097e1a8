/**
 * The consumer behind `droptrace serve`: exact kernel counts into
 * DropMetrics on a timer (never on a scrape), interface names learnt from
 * events, idle keys taken out of the kernel map, and the Prometheus
 * registry that exports it all.
 */
import client from 'prom-client';
import type { TracerStats } from '../capture/native.js';
import type { CaptureSummary, Consumer, EventBatch, RunControl } from '../capture/run.js';
import { askInterfaces, netnsNames, VethPeers } from '../host/netns.js';
import { InterfaceNames } from '../model/interfaces.js';
import { podOfDrop, type PodResolver } from '../host/pods.js';
import { decodeCounts, encodeCountKeys, EV, ifnameAt, type TrapCount, type TrapRecord } from '../model/decode.js';
import type { Naming } from '../model/naming.js';
import { DropMetrics, LABELS } from './metrics.js';

export interface ServingOptions {
  events: boolean;
  naming: Naming;
  pods: PodResolver;
  maxSeries: number;
  /** a label set idle this long expires, and its kernel keys are forgotten */
  graceMs: number;
}

export class MetricsConsumer implements Consumer {
  readonly events: boolean;
  readonly metrics: DropMetrics;
  /** the devlink trap counts as of the last tick (bounded by the kernel map: traps × ports) */
  traps: TrapCount[] = [];
  private run: RunControl | null = null;
  private readonly ifnames = new InterfaceNames(askInterfaces(netnsNames));
  private readonly peers = new VethPeers(netnsNames);

  constructor(private readonly o: ServingOptions) {
    this.events = o.events;
    // names come free with each event; a drop site seen only as a count asks its namespace once
    const iface = (ns: number, ifi: number) => (ifi ? (this.ifnames.known(ns, ifi) ?? this.ifnames.name(ns, ifi) ?? `if${ifi}`) : '-');
    this.metrics = new DropMetrics(o.naming, iface, (ns, ifi) => podOfDrop(o.pods, this.peers, ns, ifi), o.maxSeries);
  }

  attached(run: RunControl): void {
    this.run = run;
    this.tick(Date.now());
  }

  batch(b: EventBatch): void {
    for (let i = 0, o = 0; i < b.count; i++, o += b.stride) {
      const ns = b.buf.readUInt32LE(o + EV.netns);
      const ifi = b.buf.readUInt32LE(o + EV.ifindex);
      if (ifi && this.ifnames.known(ns, ifi) === null) this.ifnames.learn(ns, ifi, ifnameAt(b.buf, o));
    }
  }

  /** Counts, labels (which may ask a namespace), forgets and expires. */
  tick(now: number): void {
    const tracer = this.run!.tracer;
    const m = this.metrics;
    m.update(decodeCounts(tracer.counts()), now);
    const idle = m.idleKeys(now, this.o.graceMs);
    if (idle.length) {
      const removed = decodeCounts(tracer.forget(encodeCountKeys(idle)));
      m.forgotten(removed, decodeCounts(tracer.counts()), now);
      for (const ns of new Set(idle.map((k) => k.netns))) {
        this.ifnames.forget(ns);
        this.peers.forget(ns);
      }
    }
    m.expire(now, this.o.graceMs);
    if (this.run!.tracer.hardwareTraps) this.traps = this.run!.traps();
  }

  finish(s: CaptureSummary): void {
    this.metrics.update(s.counts, Date.now());
    this.traps = s.traps;
  }

  /** Every drop counted: live series plus expired ones. */
  get total(): number {
    return this.metrics.all().reduce((n, x) => n + x.packets, 0) + this.metrics.expiredTotals().reduce((n, x) => n + x.packets, 0);
  }
}

/** The registry /metrics serves: every series is computed from the state at scrape time, nothing is pushed. */
export function metricsRegistry(
  metrics: DropMetrics,
  stats: () => TracerStats,
  info: { version: string; kernel: string; attach: string },
  traps: () => readonly TrapRecord[] = () => [],
): client.Registry {
  const registry = new client.Registry();
  const counter = (name: string, help: string, labels: string[], series: () => Array<{ labels: Record<string, string>; value: number }>) =>
    new client.Counter({
      name,
      help,
      labelNames: labels,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of series()) this.inc(s.labels, s.value);
      },
    });
  counter('droptrace_drops_total', 'Packets the kernel dropped, counted exactly in the kernel', [...LABELS], () => metrics.all().map((s) => ({ labels: s.labels, value: s.packets })));
  counter('droptrace_drop_bytes_total', 'Bytes (skb->len) of the dropped packets', [...LABELS], () => metrics.all().map((s) => ({ labels: s.labels, value: s.bytes })));
  counter('droptrace_drops_expired_total', 'Drops of label sets that expired (--forget-after): with droptrace_drops_total, everything counted', ['reason', 'function'], () =>
    metrics.expiredTotals().map((s) => ({ labels: s.labels, value: s.packets })),
  );
  // a trap is known by device, trap and port, never by flow: the series are as many as the kernel map's entries at most
  counter('droptrace_hardware_trap_drops_total', "Packets a device's hardware or driver dropped or could not forward, reported through devlink traps (exact)", ['device', 'trap', 'group', 'type', 'interface'], () =>
    traps().map((t) => ({ labels: { device: t.device, trap: t.trap, group: t.group, type: t.type, interface: t.ifname || '-' }, value: t.packets })),
  );
  const one = (name: string, help: string, value: () => number) => counter(name, help, [], () => [{ labels: {}, value: value() }]);
  one('droptrace_events_lost_total', 'Events the ring buffer could not take (counts stay exact)', () => {
    const s = stats();
    return s.lost + s.droppedInProcess;
  });
  one('droptrace_map_full_total', 'Drops not counted because the count map was full (raise --count-entries)', () => stats().mapFull);
  one('droptrace_drops_unseen_total', 'Drops the kernel skipped the program for (it was already running on that CPU): not counted', () => stats().missed);
  one('droptrace_series_folded_total', 'Drops counted in the "other" series because of --max-series', () => metrics.folded);
  new client.Gauge({
    name: 'droptrace_count_keys',
    help: 'Drop sites (site, reason, interface, netns) tracked in the kernel count map',
    registers: [registry],
    collect() {
      this.set(metrics.keyCount);
    },
  });
  const build = new client.Gauge({ name: 'droptrace_build_info', help: 'droptrace version, kernel and attach path', labelNames: ['version', 'kernel', 'attach'], registers: [registry] });
  build.set(info, 1);
  return registry;
}
