/** `droptrace trace`: one line (or JSON object) per drop, then an exact summary. */
import { Command } from 'commander';
import { CaptureRun } from '../capture/run.js';
import { TraceWriter } from '../formats/trace-writer.js';
import { netnsNames, VethPeers } from '../host/netns.js';
import { cgroupOwners } from '../host/cgroups.js';
import { podOfDrop } from '../host/pods.js';
import { nodeNaming } from '../host/names.js';
import { netnsLabel, type Naming } from '../model/naming.js';
import { lossReporter } from '../views/losses.js';
import { addPathOption, addSampleOption, addTraceOptions, attachedLine, parsePositive, prepareTracing, type TraceOptions } from './common.js';

interface Options extends TraceOptions {
  duration?: string;
  count?: string;
  json?: boolean;
  pods: boolean;
}

export function traceCommand(): Command {
  const cmd = new Command('trace')
    .description('print every packet drop as it happens: where (function+offset), why (reason), interface, netns, flow')
    .option('-d, --duration <seconds>', 'stop after this many seconds')
    .option('-c, --count <n>', 'stop after printing this many drops')
    .option('--json', 'JSON Lines on stdout, one object per drop (schema in docs/FORMATS.md)')
    .option('--no-pods', 'do not look up the Kubernetes pod of each network namespace');
  addTraceOptions(cmd);
  addSampleOption(cmd);
  addPathOption(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  droptrace trace --port 2483                 # why are connections to 2483 dying?
  droptrace trace --netns pod1 --reason NETFILTER_DROP
  droptrace trace --host 10.244.0.0/16 --json | jq .symbol
  droptrace trace --port 2483 --path           # and the devices and routes each one passed

At the end (duration, count, Ctrl-C or SIGTERM) a summary on stderr gives the drops
delivered, the events lost, and the exact in-kernel count for the same filters. While it
runs, a second in which events were lost (the reader of stdout too slow for the flood) is
said on stderr with the --sample N that would have fitted.

Where the kernel has devlink, packets a device's hardware dropped (devlink traps) are counted
too: once a second a line per trap whose count grew ("source":"devlink" in JSON), and their
total in the summary. Packet and reason filters leave traps out; --iface and --netns apply to
the port that trapped them.`,
  );
  cmd.action(async (opts: Options) => run(opts));
  return cmd;
}

/** The names --path gives the namespaces its steps cross: pods too, unless --no-pods. */
const pathNames = (pods: boolean, naming: Naming) => netnsLabel(pods ? naming : { ...naming, pod: undefined });

async function run(opts: Options): Promise<void> {
  const duration = parsePositive(opts.duration, '--duration');
  const limit = parsePositive(opts.count, '--count');
  const { config, reasons, syms, pods, cgroups } = prepareTracing(opts);
  const peers = new VethPeers(netnsNames);
  const writer = new TraceWriter({
    json: !!opts.json,
    limit,
    syms,
    reasons,
    podOf: opts.pods ? (ns, ifi) => podOfDrop(pods, peers, ns, ifi) : null,
    cgroupOwner: cgroupOwners(cgroups, opts.pods ? pods : null),
    // --path names the namespaces its steps cross
    netnsName: opts.path ? pathNames(opts.pods, nodeNaming(syms, reasons, pods)) : undefined,
    out: process.stdout,
    err: (line) => process.stderr.write(line + '\n'),
  });
  const losses = lossReporter(() => capture, (line) => process.stderr.write(line + '\n'));
  const capture = CaptureRun.start(config, [writer, losses], { duration, readyFile: opts.readyFile });
  process.stderr.write(attachedLine('tracing drops', capture.tracer, opts, reasons));
  await capture.done;
  if (writer.failure) throw writer.failure;
}
