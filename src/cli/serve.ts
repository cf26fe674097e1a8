/** `droptrace serve`: exact drop counts as Prometheus metrics, with pod names where known. */
import { createServer } from 'node:http';
import { release } from 'node:os';
import { writeFileSync } from 'node:fs';
import { droptraceVersion } from './version.js';
import { Command } from 'commander';
import client from 'prom-client';
import { describeFilters, UsageError } from '../filters.js';
import { InterfaceNames, VethPeers } from '../evidence.js';
import { podOfDrop } from '../pods.js';
import { DropMetrics, LABELS } from '../metrics.js';
import { makeNaming, netnsNames } from '../naming.js';
import { LiveSession } from '../session.js';
import { addTraceOptions, prepareTracing, type TraceOptions } from './common.js';

interface Options extends TraceOptions {
  listen: string;
  maxSeries: string;
  events: boolean;
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
    .option('--no-events', 'count only (no event stream): interface names are then asked from each namespace');
  addTraceOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Metrics: droptrace_drops_total and droptrace_drop_bytes_total {reason, function, interface,
netns, namespace, pod, container}, droptrace_events_lost_total, droptrace_map_full_total,
droptrace_drops_unseen_total,
droptrace_series_folded_total, droptrace_build_info. Counters only ever grow: a kernel
counter that restarts is taken as a reset. /healthz answers 200 while the probe is attached.

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
  const { config, reasons, syms, pods } = prepareTracing(opts);
  const names = netnsNames();
  const naming = makeNaming(syms, reasons, names);
  const session = new LiveSession(config, naming, syms, reasons, opts.events);
  // a label must not change name once its series exists: ask the namespace itself when the
  // event stream has not named the interface yet (events arrive a moment after the counts)
  const ifnames = new InterfaceNames(netnsNames);
  const iface = (ns: number, ifi: number) => {
    const known = session.agg.interfaceName(ns, ifi);
    return known === '-' || /^if\d+$/.test(known) ? (ifnames.name(ns, ifi) ?? known) : known;
  };
  const peers = new VethPeers(netnsNames);
  const metrics = new DropMetrics(naming, iface, (ns, ifi) => podOfDrop(pods, peers, ns, ifi), maxSeries);

  const registry = new client.Registry();
  const labelNames = [...LABELS];
  new client.Counter({
    name: 'droptrace_drops_total',
    help: 'Packets the kernel dropped, counted exactly in the kernel',
    labelNames,
    registers: [registry],
    collect() {
      metrics.update(session.sample());
      this.reset();
      for (const s of metrics.all()) this.inc(s.labels, s.packets);
    },
  });
  new client.Counter({
    name: 'droptrace_drop_bytes_total',
    help: 'Bytes (skb->len) of the dropped packets',
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of metrics.all()) this.inc(s.labels, s.bytes);
    },
  });
  const gaugeLike = (name: string, help: string, value: () => number) =>
    new client.Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  gaugeLike('droptrace_events_lost_total', 'Events the ring buffer could not take (counts stay exact)', () => session.stats().lost);
  gaugeLike('droptrace_map_full_total', 'Drops not counted because the count map was full', () => session.tracer.stats().mapFull);
  gaugeLike('droptrace_drops_unseen_total', 'Drops the kernel skipped the program for (it was already running on that CPU): not counted', () => session.tracer.stats().missed);
  gaugeLike('droptrace_series_folded_total', 'Drops counted in the "other" series because of --max-series', () => metrics.folded);
  const info = new client.Gauge({ name: 'droptrace_build_info', help: 'droptrace version, kernel and attach path', labelNames: ['version', 'kernel', 'attach'], registers: [registry] });
  info.set({ version: droptraceVersion(), kernel: release(), attach: session.tracer.path }, 1);

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
      const ok = !session.tracer.stats().closed;
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'detached\n');
    } else {
      res.writeHead(404).end('droptrace: /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new UsageError(`--listen ${opts.listen}: ${(err as Error).message}`)));
    server.listen(port, host, () => resolve());
  });
  // keep the names of interfaces fresh in the background (events also feed the aggregator)
  const timer = setInterval(() => session.sample(), 5000);
  process.stderr.write(`droptrace: serving metrics on http://${opts.listen}/metrics (probe ${session.tracer.path}; filters: ${describeFilters(opts)})\n`);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearInterval(timer);
  server.close();
  const final = await session.stop();
  process.stderr.write(`droptrace: stopped serving; ${final.exact} drops counted in the kernel\n`);
}
