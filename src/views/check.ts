/** `droptrace check` as text: one line per capability, then each attach path. */
import type { CheckReport } from '../capture/probe.js';

const mark = (ok: boolean) => (ok ? 'yes' : 'no ');

export function formatReport(r: CheckReport): string {
  const lines = [
    `kernel            ${r.kernel}`,
    `addon             ${mark(!!r.addon.path)} ${r.addon.path ?? r.addon.error}`,
    `BTF               ${mark(r.btf)} /sys/kernel/btf/vmlinux`,
    `tp_btf            ${mark(r.tpBtf)} skb:kfree_skb has a BTF type`,
    `drop reasons      ${mark(r.dropReasons.available)} ${r.dropReasons.count} names from ${r.dropReasons.source}${r.dropReasons.available ? '' : ' (kernel < 5.17: locations only)'}`,
    `drop function     ${r.dropFunction ?? 'none found'} (fentry/kprobe target)`,
    `receiving socket  ${mark(r.receivingSocket)} ${r.receivingSocket ? 'drops name the socket that refused them (rx_sk)' : '(kernel < 6.11: drops name no socket)'}`,
    `qdisc reasons     ${mark(r.qdiscReasons)} ${r.qdiscReasons ? 'qdisc:qdisc_drop names the limit a qdisc hit' : '(no qdisc:qdisc_drop: the free\'s own reason, QDISC_DROP or a specific one)'}`,
    `hardware traps    ${mark(r.hardwareTraps)} ${r.hardwareTraps ? 'devlink:devlink_trap_report: drops a device\'s hardware or driver reports' : '(no devlink in this kernel: CONFIG_NET_DEVLINK off)'}`,
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
  const pp = r.packetPath;
  lines.push('', `--path            ${pp.tracepoints.length ? `${pp.tracepoints.length} tracepoints: ${pp.tracepoints.join(', ')}` : 'no (none of its tracepoints)'}`);
  lines.push(`--path functions  ${pp.functions ? `yes, with ${pp.functions === 'kprobe' ? 'a kprobe per function (no kprobe-multi)' : 'kprobe-multi'}` : `no (${r.kprobesInKernel ? 'needs kprobe-multi (5.18+) or bpf_get_func_ip in kprobes (5.15+)' : 'no kprobes'})`}`);
  lines.push('', r.selected ? `--attach auto would use: ${r.selected}` : 'no attach path works here: droptrace cannot trace on this machine');
  return lines.join('\n');
}
