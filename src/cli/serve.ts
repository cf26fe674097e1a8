/** `droptrace serve`: exact drop counts as Prometheus metrics, with pod names where known, for weeks. */
import { createServer } from 'node:http';
import { release } from 'node:os';
import { writeFileSync } from 'node:fs';
import { droptraceVersion } from './version.js';
import { Command, Option } from 'commander';
import client from 'prom-client';
import { startCapture } from '../capture/run.js';
import { decodeCounts, encodeCountKeys, EV, ifnameAt } from '../model/decode.js';
import { describeFilters, UsageError } from '../capture/filters.js';
import { InterfaceNames, VethPeers } from '../host/netns.js';
import { podOfDrop } from '../host/pods.js';
import { DropMetrics, LABELS } from '../analysis/metrics.js';
import { makeNaming } from '../model/naming.js';
import { netnsNames } from '../host/netns.js';
import { addTraceOptions, parsePositive, prepareTracing, type TraceOptions } from './common.js';

interface Options extends TraceOptions {
  listen: string;
  maxSeries: string;
  events: boolean;
  forgetAfter: string;
  updateEvery: string;
}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new UsageError(`--listen ${text}: expected HOST:PORT, e.g. 127.0.0.1:9568`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('serve exact drop counts as Prometheus metrics (/metrics), labelled by reason, function, interface, netns and pod')
    .option('--listen <host:port>', 'where to listen; anything but loopback is your explicit choice', '127.0.0.1:9568')
    .option('--max-series <n>', 'at most this many label sets; new ones beyond it fold into an "other" series', '2000')
    .option('--forget-after <seconds>', 'a label set (a pod, a namespace) that has not dropped for this long leaves /metrics and its drops move to droptrace_drops_expired_total; its keys leave the kernel map', '600')
    .option('--no-events', 'count only (no event stream): interface names are then asked from each namespace')
    .addOption(new Option('--update-every <seconds>', 'how often the counts are read and labelled (off the scrape path)').default('1').hideHelp());
  addTraceOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Metrics: droptrace_drops_total and droptrace_drop_bytes_total {reason, function, interface,
netns, namespace, pod, container}; droptrace_drops_expired_total {reason, function} (drops of
label sets that expired: drops_total + drops_expired_total is everything counted);
droptrace_events_lost_total, droptrace_map_full_total, droptrace_drops_unseen_total,
droptrace_series_folded_total, droptrace_count_keys, droptrace_build_info. Counters only
ever grow: a kernel counter that restarts is taken as a reset. A series that expires simply
stops being exported; Prometheus marks it stale at the next scrape and rate() over earlier
windows still sees it. /healthz answers 200 while the probe is attached.

Example:
  droptrace serve --listen 127.0.0.1:9568 &
  curl -s 127.0.0.1:9568/metrics | grep droptrace_drops_total`,
  );
  cmd.action(async (opts: Options) => run(opts));
  return cmd;
}

async function run(opts: Options): Promise<void> {
  const { host, port } = parseListen(opts.listen);
  const maxSeries = Number(opts.maxSeries);
  if (!Number.isInteger(maxSeries) || maxSeries < 2) throw new UsageError(`--max-series ${opts.maxSeries}: expected a whole number, at least 2`);
  const graceMs = parsePositive(opts.forgetAfter, '--forget-after')! * 1000;
  const everyMs = parsePositive(opts.updateEvery, '--update-every')! * 1000;
  const { config, reasons, syms, pods } = prepareTracing(opts);
  const naming = makeNaming(syms, reasons, netnsNames());
  const ifnames = new InterfaceNames(netnsNames);
  // names come free with each event; a drop site seen only as a count asks its namespace once
  const capture = startCapture(
    config,
    opts.events
      ? (b) => {
          for (let i = 0, o = 0; i < b.count; i++, o += b.stride) {
            const ns = b.buf.readUInt32LE(o + EV.netns);
            const ifi = b.buf.readUInt32LE(o + EV.ifindex);
            if (ifi && ifnames.known(ns, ifi) === null) ifnames.learn(ns, ifi, ifnameAt(b.buf, o));
          }
        }
      : undefined,
  );
  const tracer = capture.tracer;
  const peers = new VethPeers(netnsNames);
  const iface = (ns: number, ifi: number) => (ifi ? (ifnames.known(ns, ifi) ?? ifnames.name(ns, ifi) ?? `if${ifi}`) : '-');
  const metrics = new DropMetrics(naming, iface, (ns, ifi) => podOfDrop(pods, peers, ns, ifi), maxSeries);

  // counting, labelling (which may ask a namespace) and forgetting run on a timer, never on a scrape
  const update = () => {
    const now = Date.now();
    metrics.update(decodeCounts(tracer.counts()), now);
    const idle = metrics.idleKeys(now, graceMs);
    if (idle.length) {
      const removed = decodeCounts(tracer.forget(encodeCountKeys(idle)));
      metrics.forgotten(removed, decodeCounts(tracer.counts()), now);
      for (const ns of new Set(idle.map((k) => k.netns))) {
        ifnames.forget(ns);
        peers.forget(ns);
      }
    }
    metrics.expire(now, graceMs);
  };
  update();

  const registry = new client.Registry();
  const labelNames = [...LABELS];
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
  counter('droptrace_drops_total', 'Packets the kernel dropped, counted exactly in the kernel', labelNames, () => metrics.all().map((s) => ({ labels: s.labels, value: s.packets })));
  counter('droptrace_drop_bytes_total', 'Bytes (skb->len) of the dropped packets', labelNames, () => metrics.all().map((s) => ({ labels: s.labels, value: s.bytes })));
  counter('droptrace_drops_expired_total', 'Drops of label sets that expired (--forget-after): with droptrace_drops_total, everything counted', ['reason', 'function'], () =>
    metrics.expiredTotals().map((s) => ({ labels: s.labels, value: s.packets })),
  );
  const one = (name: string, help: string, value: () => number) => counter(name, help, [], () => [{ labels: {}, value: value() }]);
  one('droptrace_events_lost_total', 'Events the ring buffer could not take (counts stay exact)', () => {
    const s = tracer.stats();
    return s.lost + s.droppedInProcess;
  });
  one('droptrace_map_full_total', 'Drops not counted because the count map was full (raise --count-entries)', () => tracer.stats().mapFull);
  one('droptrace_drops_unseen_total', 'Drops the kernel skipped the program for (it was already running on that CPU): not counted', () => tracer.stats().missed);
  one('droptrace_series_folded_total', 'Drops counted in the "other" series because of --max-series', () => metrics.folded);
  new client.Gauge({
    name: 'droptrace_count_keys',
    help: 'Drop sites (site, reason, interface, netns) tracked in the kernel count map',
    registers: [registry],
    collect() {
      this.set(metrics.keyCount);
    },
  });
  const info = new client.Gauge({ name: 'droptrace_build_info', help: 'droptrace version, kernel and attach path', labelNames: ['version', 'kernel', 'attach'], registers: [registry] });
  info.set({ version: droptraceVersion(), kernel: release(), attach: tracer.path }, 1);

  const server = createServer(async (req, res) => {
    if (req.url === '/metrics') {
      try {
        const body = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      } catch (err) {
        res.writeHead(500).end(String(err));
      }
    } else if (req.url === '/healthz') {
      const ok = !tracer.stats().closed;
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'detached\n');
    } else {
      res.writeHead(404).end('droptrace: /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new UsageError(`--listen ${opts.listen}: ${(err as Error).message}`)));
    server.listen(port, host, () => resolve());
  });
  const timer = setInterval(update, everyMs);
  process.stderr.write(`droptrace: serving metrics on http://${opts.listen}/metrics (probe ${tracer.path}; filters: ${describeFilters(opts)})\n`);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearInterval(timer);
  server.close();
  await capture.stop();
  update();
  const total = metrics.all().reduce((n, x) => n + x.packets, 0) + metrics.expiredTotals().reduce((n, x) => n + x.packets, 0);
  process.stderr.write(`droptrace: stopped serving; ${total} drops counted\n`);
}
