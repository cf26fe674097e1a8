/** `droptrace serve`: exact drop counts as Prometheus metrics, with pod names where known, for weeks. */
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { Command, Option } from 'commander';
import { describeFilters, UsageError } from '../capture/filters.js';
import { CaptureRun } from '../capture/run.js';
import { netnsNames } from '../host/netns.js';
import { makeNaming } from '../model/naming.js';
import { addTraceOptions, parsePositive, prepareTracing, type TraceOptions } from './common.js';
import type { WebGuard } from '../views/web-guard.js';
import { droptraceVersion } from './version.js';

interface Options extends TraceOptions {
  listen: string;
  maxSeries: string;
  events: boolean;
  forgetAfter: string;
  updateEvery: string;
  webConfig?: string;
}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new UsageError(`--listen ${text}: expected HOST:PORT, e.g. 127.0.0.1:9568`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === '::1' || host === 'localhost';
}

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('serve exact drop counts as Prometheus metrics (/metrics), labelled by reason, function, interface, netns and pod')
    .option('--listen <host:port>', 'where to listen; anything but loopback is your explicit choice', '127.0.0.1:9568')
    .option('--max-series <n>', 'at most this many label sets; new ones beyond it fold into an "other" series', '2000')
    .option('--forget-after <seconds>', 'a label set (a pod, a namespace) that has not dropped for this long leaves /metrics and its drops move to droptrace_drops_expired_total; its keys leave the kernel map', '600')
    .option('--web-config <file>', "TLS, client certificates and basic auth from a Prometheus exporter web configuration file (exporter-toolkit's --web.config.file format: node_exporter's file works); read again when it changes")
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

--web-config: tls_server_config (cert_file/key_file or cert/key, client_auth_type,
client_ca_file, client_allowed_sans, min_version, max_version), basic_auth_users (user: bcrypt
hash, e.g. from htpasswd -nBC 10 USER), http_server_config.headers, rate_limit. With TLS, plain
HTTP on the port gets 400 and no metrics; with users, /metrics needs their credentials (401
otherwise); /healthz answers without credentials (a liveness probe has none) but never
without TLS. cipher_suites and curve_preferences are refused: Node's defaults are used.

Examples:
  droptrace serve --listen 127.0.0.1:9568 &
  curl -s 127.0.0.1:9568/metrics | grep droptrace_drops_total
  droptrace serve --listen 0.0.0.0:9568 --web-config /etc/droptrace/web-config.yml &
  curl -s --cacert ca.crt -u prometheus:PASSWORD https://NODE:9568/metrics`,
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
  // the file is read before anything attaches: a mistake in it is a usage error, not a half-started server
  let guard: WebGuard | null = null;
  if (opts.webConfig !== undefined) {
    const { WebGuard } = await import('../views/web-guard.js');
    try {
      guard = new WebGuard(opts.webConfig);
    } catch (err) {
      throw new UsageError(`--web-config ${opts.webConfig}: ${(err as Error).message}`);
    }
  }
  const { config, reasons, syms, pods } = prepareTracing(opts);
  // prom-client and the server load only for serve: every other command starts faster
  const { MetricsConsumer, metricsRegistry } = await import('../analysis/serving.js');
  const { serveMetrics } = await import('../views/http.js');
  const serving = new MetricsConsumer({ events: opts.events, naming: makeNaming(syms, reasons, netnsNames()), pods, maxSeries, graceMs });
  const capture = CaptureRun.start(config, [serving], { tickMs: everyMs });
  const tracer = () => capture.tracer;
  const registry = metricsRegistry(serving.metrics, () => capture.stats(), { version: droptraceVersion(), kernel: release(), attach: tracer().path }, () => serving.traps);

  let server;
  try {
    server = await serveMetrics(registry, () => !tracer().stats().closed, host, port, guard);
  } catch (err) {
    capture.stop();
    await capture.done;
    throw new UsageError(`--listen ${opts.listen}: ${(err as Error).message}`);
  }
  const guarded = guard ? [guard.tls ? 'TLS' : null, guard.tls?.requestCert ? 'client certificates' : null, guard.users ? `basic auth (${guard.users} user${guard.users === 1 ? '' : 's'})` : null].filter(Boolean).join(', ') : '';
  process.stderr.write(`droptrace: serving metrics on ${server.scheme}://${opts.listen}/metrics${guarded ? ` with ${guarded}` : ''} (probe ${tracer().path}; filters: ${describeFilters(opts)})\n`);
  if (guard?.users && !guard.tls) process.stderr.write('droptrace: warning: basic auth without TLS: passwords cross the network in clear (add tls_server_config)\n');
  if (!guard && !isLoopback(host)) process.stderr.write(`droptrace: warning: ${host} is not loopback and there is no --web-config: anyone who reaches the port reads the metrics (pods, namespaces, drop sites)\n`);
  if (opts.readyFile) writeFileSync(opts.readyFile, `${process.pid}\n`);
  await capture.done;
  server.close();
  process.stderr.write(`droptrace: stopped serving; ${serving.total} drops counted\n`);
}
