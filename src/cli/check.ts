/** `droptrace check`: what this kernel offers, and which attach path would be used. */
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { Command } from 'commander';
import { loadLocalSymbols, localReasons } from '../capture/local.js';
import { DroptraceError, canTrace, effectiveCaps, loadAddon, openTracer, type KernelProbe } from '../capture/native.js';
import { ATTACH } from '../capture/config.js';

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
  kprobesInKernel: boolean;
  tracefs: boolean;
  privileges: { ok: boolean; capEff: string };
  kallsyms: { readable: boolean; symbols: number; warning: string | null };
  attach: Record<'tracepoint' | 'fentry' | 'kprobe', PathResult>;
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
      ? { ok: false, message: addonError }
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
    kprobesInKernel: probe?.kprobes ?? false,
    tracefs: existsSync('/sys/kernel/tracing/events/skb/kfree_skb'),
    privileges: { ok: privileged, capEff: caps.toString(16) },
    kallsyms: { readable: !!syms.table, symbols: syms.table?.size ?? 0, warning: syms.warning },
    attach,
    selected,
    ok: privileged && selected !== null,
  };
}

const mark = (ok: boolean) => (ok ? 'yes' : 'no ');

export function formatReport(r: CheckReport): string {
  const lines = [
    `kernel            ${r.kernel}`,
    `BTF               ${mark(r.btf)} /sys/kernel/btf/vmlinux`,
    `tp_btf            ${mark(r.tpBtf)} skb:kfree_skb has a BTF type`,
    `drop reasons      ${mark(r.dropReasons.available)} ${r.dropReasons.count} names from ${r.dropReasons.source}${r.dropReasons.available ? '' : ' (kernel < 5.17: locations only)'}`,
    `drop function     ${r.dropFunction ?? 'none found'} (fentry/kprobe target)`,
    `kprobes           ${mark(r.kprobesInKernel)} ${r.kprobesInKernel ? '' : '(CONFIG_KPROBES off)'}`.trimEnd(),
    `tracefs           ${mark(r.tracefs)} /sys/kernel/tracing${r.tracefs ? '' : ' (not needed: reasons come from BTF)'}`,
    `privileges        ${mark(r.privileges.ok)} ${r.privileges.ok ? '' : 'run as root, or grant CAP_BPF and CAP_PERFMON'}`.trimEnd(),
    `kallsyms          ${mark(r.kallsyms.readable)} ${r.kallsyms.readable ? `${r.kallsyms.symbols} code symbols` : r.kallsyms.warning}`,
    '',
    'attach paths (loaded and attached for real, then removed):',
  ];
  for (const [mode, res] of Object.entries(r.attach)) {
    lines.push(`  ${mode.padEnd(11)} ${res.ok ? `works (${res.path})` : `fails: ${res.message}`}`);
  }
  lines.push('', r.selected ? `--attach auto would use: ${r.selected}` : 'no attach path works here: droptrace cannot trace on this machine');
  return lines.join('\n');
}

export function checkCommand(): Command {
  return new Command('check')
    .description('report what this kernel offers for drop tracing and which attach path would be used (exit 0 when tracing can work)')
    .option('--json', 'print the report as JSON')
    .option('--reasons', "list this kernel's drop reasons (code and name) instead")
    .option('-v, --verbose', "libbpf's log while each path is tried, and the verifier's log when one is refused")
    .action(async (opts: { json?: boolean; reasons?: boolean; verbose?: boolean }) => {
      if (opts.reasons) {
        const table = localReasons();
        if (opts.json) process.stdout.write(JSON.stringify({ source: table.source, reasons: table.entries() }) + '\n');
        else process.stdout.write(table.entries().map(([c, n]) => `${String(c).padStart(5)} ${n}`).join('\n') + '\n');
        return;
      }
      const report = await gatherReport(!!opts.verbose);
      process.stdout.write((opts.json ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n');
      if (!report.ok) throw new DroptraceError(report.privileges.ok ? 'no attach path works on this kernel' : 'not enough privileges to trace', { phase: 'open' });
    });
}

