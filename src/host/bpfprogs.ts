/**
 * BPF programs on a packet's path, as the tools report them: `bpftool -j net show` (XDP, tc
 * and tcx on every device of the namespace), `ip -j -d link show` and `tc -j filter show`
 * where bpftool is missing, `bpftool -j -f prog show` for a program's tag, pinned paths and
 * the processes holding it (a Cilium or Calico program is recognisable by them), and
 * `bpftool -j cgroup tree` for cgroup programs. Pure parsers.
 */

/** A program attached to a device's XDP or tc hook. */
export interface AttachedProg {
  id: number;
  /** the device and hook: "xdp" (mode in `mode`), "tc ingress", "tc egress", "tcx ingress" … */
  dev: string;
  hook: string;
  mode: string | null;
  /** the program's own name and tag when known; tc's "file.o:[section]" */
  name: string | null;
  tag: string | null;
  section: string | null;
}

/** What bpftool says of a program beyond its attachment. */
export interface ProgInfo {
  id: number;
  type: string | null;
  name: string | null;
  tag: string | null;
  pinned: string[];
  /** "cilium-agent(1234)" */
  owners: string[];
}

function json<T>(text: string | null): T | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

/** `bpftool -j net show`: XDP and tc/tcx attachments of every device. */
export function parseBpftoolNet(text: string | null): AttachedProg[] {
  const doc = json<Array<{ xdp?: Array<Record<string, unknown>>; tc?: Array<Record<string, unknown>> }>>(text);
  const out: AttachedProg[] = [];
  for (const part of doc ?? []) {
    for (const x of part.xdp ?? []) {
      out.push({ id: Number(x.id), dev: String(x.devname), hook: 'xdp', mode: typeof x.mode === 'string' ? x.mode : null, name: null, tag: null, section: null });
    }
    for (const t of part.tc ?? []) {
      // "clsact/ingress" (cls_bpf under clsact), "tcx/ingress" (6.6+ tcx links)
      const [kind, dir] = String(t.kind ?? '').split('/');
      out.push({ id: Number(t.id), dev: String(t.devname), hook: `${kind === 'tcx' ? 'tcx' : 'tc'} ${dir ?? kind}`, mode: null, name: null, tag: null, section: typeof t.name === 'string' ? t.name : null });
    }
  }
  return out.filter((p) => Number.isFinite(p.id));
}

/** `ip -j -d link show dev IFACE`: its XDP program, where bpftool is missing. */
export function parseLinkXdp(text: string | null): AttachedProg[] {
  const links = json<Array<{ ifname: string; xdp?: { mode?: number; prog?: { id: number; name?: string; tag?: string }; attached?: Array<{ mode?: number; prog?: { id: number; name?: string; tag?: string } }> } }>>(text);
  const modes: Record<number, string> = { 1: 'driver', 2: 'generic', 3: 'offload' };
  const out: AttachedProg[] = [];
  for (const l of links ?? []) {
    const att = l.xdp?.attached ?? (l.xdp?.prog ? [{ mode: l.xdp.mode, prog: l.xdp.prog }] : []);
    for (const a of att) {
      if (a.prog) out.push({ id: a.prog.id, dev: l.ifname, hook: 'xdp', mode: a.mode !== undefined ? (modes[a.mode] ?? String(a.mode)) : null, name: a.prog.name ?? null, tag: a.prog.tag ?? null, section: null });
    }
  }
  return out;
}

/** `tc -j filter show dev IFACE ingress|egress`: its BPF classifiers, where bpftool is missing. */
export function parseTcFilters(dev: string, dir: 'ingress' | 'egress', text: string | null): AttachedProg[] {
  const rows = json<Array<{ kind?: string; options?: { bpf_name?: string; prog?: { id: number; name?: string; tag?: string } } }>>(text);
  return (rows ?? [])
    .filter((r) => r.kind === 'bpf' && r.options?.prog)
    .map((r) => ({ id: r.options!.prog!.id, dev, hook: `tc ${dir}`, mode: null, name: r.options!.prog!.name ?? null, tag: r.options!.prog!.tag ?? null, section: r.options!.bpf_name ?? null }));
}

/** Every classifier on a device's tc hook (BPF or not), from `tc -j filter show`: a BPF program alone there decides. */
export function countTcFilters(text: string | null): number {
  const rows = json<Array<{ options?: unknown }>>(text);
  // tc prints a header row per priority without options, then one row per filter
  return (rows ?? []).filter((r) => r.options).length;
}

/** `bpftool -j -f prog show`: every program's name, tag, pinned paths and owners. */
export function parseProgInfo(text: string | null): Map<number, ProgInfo> {
  const rows = json<Array<{ id: number; type?: string; name?: string; tag?: string; pinned?: string[]; pids?: Array<{ pid: number; comm: string }> }>>(text);
  const out = new Map<number, ProgInfo>();
  for (const p of Array.isArray(rows) ? rows : rows ? [rows] : []) {
    out.set(p.id, { id: p.id, type: p.type ?? null, name: p.name ?? null, tag: p.tag ?? null, pinned: p.pinned ?? [], owners: (p.pids ?? []).map((x) => `${x.comm}(${x.pid})`) });
  }
  return out;
}

/** A cgroup program of `bpftool -j cgroup tree`. */
export interface CgroupProg {
  cgroup: string;
  id: number;
  attach: string;
  name: string | null;
}

export function parseCgroupTree(text: string | null): CgroupProg[] {
  const rows = json<Array<{ cgroup?: string; programs?: Array<{ id: number; attach_type?: string; name?: string }> }>>(text);
  return (rows ?? []).flatMap((r) => (r.programs ?? []).map((p) => ({ cgroup: r.cgroup ?? '?', id: p.id, attach: p.attach_type ?? '?', name: p.name ?? null })));
}

/** "lab_prefilter (id 200, tag 6fa8…, xdp driver on eth0, pinned /sys/fs/bpf/x, held by cilium-agent(12))". */
export function progLabel(p: AttachedProg, info?: ProgInfo): string {
  const name = info?.name ?? p.name ?? p.section ?? 'unnamed program';
  const parts = [`id ${p.id}`];
  const tag = info?.tag ?? p.tag;
  if (tag) parts.push(`tag ${tag}`);
  parts.push(`${p.hook}${p.mode ? ` (${p.mode})` : ''} on ${p.dev}`);
  if (p.section && p.section !== name) parts.push(`from ${p.section}`);
  if (info?.pinned.length) parts.push(`pinned ${info.pinned.join(', ')}`);
  if (info?.owners.length) parts.push(`held by ${info.owners.join(', ')}`);
  return `${name} (${parts.join(', ')})`;
}
