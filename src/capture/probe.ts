/**
 * What this kernel offers for drop tracing: BTF, the tracepoint's type,
 * drop reasons, the function fentry/kprobe would hook, privileges, symbols,
 * and each attach path loaded and attached for real, then removed.
 */
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { ATTACH } from './config.js';
import { loadLocalSymbols, localReasons } from './local.js';
import { addonPath, canTrace, effectiveCaps, loadAddon, openTracer, type KernelProbe } from './native.js';

export interface PathResult {
  ok: boolean;
  /** the program type actually used (tp_btf or raw_tp for tracepoint) */
  path?: string;
  message?: string;
}

export interface CheckReport {
  kernel: string;
  btf: boolean;
  tpBtf: boolean;
  dropReasons: { available: boolean; count: number; source: string };
  dropFunction: string | null;
  /** the drop tracepoint (or sk_skb_reason_drop) names the receiving socket: 6.11+ */
  receivingSocket: boolean;
  /** qdisc:qdisc_drop names which limit of a qdisc refused a packet: 7.x+ */
  qdiscReasons: boolean;
  /** devlink:devlink_trap_report: hardware and driver drops devices report (CONFIG_NET_DEVLINK) */
  hardwareTraps: boolean;
  kprobesInKernel: boolean;
  tracefs: boolean;
  privileges: { ok: boolean; capEff: string };
  kallsyms: { readable: boolean; symbols: number; warning: string | null };
  /** the native addon's file, or why none loaded */
  addon: { path: string | null; error: string | null };
  attach: Record<'tracepoint' | 'fentry' | 'kprobe', PathResult>;
  /** --path: the tracepoints it follows here, and how `--path functions` would hook functions (null: it cannot) */
  packetPath: { tracepoints: string[]; functions: 'kprobe-multi' | 'kprobe' | null };
  /** what `--attach auto` picks, or null when nothing works */
  selected: string | null;
  ok: boolean;
}

/** Loads, attaches and detaches each path for real (count-only, a few ms each). */
function tryPath(mode: 'tracepoint' | 'fentry' | 'kprobe', verbose: boolean): Promise<PathResult> {
  let tracer;
  try {
    tracer = openTracer({ attach: ATTACH[mode], verbose });
  } catch (err) {
    return Promise.resolve({ ok: false, message: err instanceof Error ? err.message : String(err) });
  }
  const path = tracer.path;
  return tracer.close().then(() => ({ ok: true, path }));
}

/** Every path is tried only when privileged: without, the kernel would refuse each the same way. */
export async function gatherReport(verbose = false): Promise<CheckReport> {
  let probe: KernelProbe | null = null;
  let addonError: string | null = null;
  try {
    probe = loadAddon().probe();
  } catch (err) {
    addonError = (err as Error).message;
  }
  const caps = effectiveCaps();
  const privileged = canTrace(caps);
  const reasons = localReasons();
  const syms = loadLocalSymbols();
  const attach = {} as CheckReport['attach'];
  for (const mode of ['tracepoint', 'fentry', 'kprobe'] as const) {
    attach[mode] = addonError
      ? { ok: false, message: 'not tried: no native addon (see addon above)' }
      : privileged
        ? await tryPath(mode, verbose)
        : { ok: false, message: 'not tried: needs root or CAP_BPF+CAP_PERFMON' };
  }
  const selected =
    (attach.tracepoint.ok && attach.tracepoint.path) || (attach.fentry.ok && 'fentry') || (attach.kprobe.ok && 'kprobe') || null;
  return {
    kernel: release(),
    btf: probe?.btf ?? existsSync('/sys/kernel/btf/vmlinux'),
    tpBtf: probe?.tpBtf ?? false,
    dropReasons: { available: reasons.size > 0, count: reasons.size, source: reasons.source },
    dropFunction: probe?.dropFunction ?? null,
    receivingSocket: !!probe?.tpHasRxSk || probe?.dropFunction === 'sk_skb_reason_drop',
    qdiscReasons: !!probe?.qdiscDrop,
    hardwareTraps: !!probe?.devlinkTraps,
    kprobesInKernel: probe?.kprobes ?? false,
    tracefs: existsSync('/sys/kernel/tracing/events/skb/kfree_skb'),
    privileges: { ok: privileged, capEff: caps.toString(16) },
    addon: { path: addonPath(), error: addonError },
    kallsyms: { readable: !!syms.table, symbols: syms.table?.size ?? 0, warning: syms.warning },
    attach,
    packetPath: {
      tracepoints: probe?.pathTracepoints ?? [],
      functions: !probe?.kprobes ? null : probe.kprobeMulti ? 'kprobe-multi' : probe.kprobeFuncIp ? 'kprobe' : null,
    },
    selected,
    ok: privileged && selected !== null,
  };
}
