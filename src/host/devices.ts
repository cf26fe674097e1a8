/**
 * The drop counters of network devices, from the tools that print them: rtnetlink stats64
 * (`ip -s -s -j link`), qdisc drops (`tc -s -j qdisc`) and a driver's `ethtool -S`. Keys are
 * those model/counters.ts knows ("dev:IFACE:field", "qdisc:IFACE", "ethtool:IFACE:name"). Pure.
 */
/** Drop counters of every interface: rtnetlink stats64 from `ip -s -s -j link`, as "dev:IFACE:field". */
export function parseLinkStats(json: string): Map<string, number> {
  const out = new Map<string, number>();
  let links: Array<{ ifname: string; stats64?: { rx?: Record<string, number>; tx?: Record<string, number> } }>;
  try {
    links = JSON.parse(json);
  } catch {
    return out;
  }
  for (const l of links) {
    const rx = l.stats64?.rx ?? {};
    const tx = l.stats64?.tx ?? {};
    const put = (field: string, v: number | undefined) => v !== undefined && out.set(`dev:${l.ifname}:${field}`, v);
    put('rx_dropped', rx.dropped);
    put('rx_missed', rx.missed_errors);
    put('rx_over_errors', rx.over_errors);
    put('rx_fifo_errors', rx.fifo_errors);
    put('tx_dropped', tx.dropped);
    put('tx_errors', tx.errors);
    put('tx_carrier_errors', tx.carrier_errors);
  }
  return out;
}

/**
 * Qdisc drops per interface from `tc -s -j qdisc show`, as "qdisc:IFACE": the root's (a classful
 * qdisc counts its children's drops too, and mq sums its queues') plus the ingress or clsact
 * qdisc's (parent ffff:fff1), which sits beside the root.
 */
export function parseQdiscDrops(json: string): Map<string, number> {
  const out = new Map<string, number>();
  let qs: Array<{ dev?: string; drops?: number; root?: boolean; parent?: string }>;
  try {
    qs = JSON.parse(json);
  } catch {
    return out;
  }
  for (const q of qs) {
    if (!q.dev || typeof q.drops !== 'number' || !(q.root || q.parent === 'ffff:fff1')) continue;
    out.set(`qdisc:${q.dev}`, (out.get(`qdisc:${q.dev}`) ?? 0) + q.drops);
  }
  return out;
}

/** One qdisc as `tc -s qdisc show` prints it: its line (without refcnt) and the drops it counts. */
export interface Qdisc {
  kind: string;
  /** "8015:", "0:" */
  handle: string;
  /** "1:10"; null for the root */
  parent: string | null;
  /** "tbf 8015: root rate 8Kbit burst 1600b lat 1.4s" */
  text: string;
  drops: number;
}

/**
 * The qdiscs of `tc -s qdisc show dev IFACE` (its text: the JSON leaves out what a person reads,
 * such as tbf's rate, a fifo's limit). A classful qdisc counts its children's drops too.
 */
export function parseQdiscs(text: string): Qdisc[] {
  const out: Qdisc[] = [];
  for (const line of text.split('\n')) {
    const q = /^qdisc (\S+) (\S+)(?: dev \S+)? (root|parent (\S+))(.*)$/.exec(line);
    if (q) {
      const rest = q[5].replace(/\s*refcnt \d+/, '').trim();
      out.push({ kind: q[1], handle: q[2], parent: q[4] ?? null, text: `${q[1]} ${q[2]} ${q[3]}${rest ? ` ${rest}` : ''}`, drops: 0 });
      continue;
    }
    const d = /\(dropped (\d+),/.exec(line);
    if (d && out.length) out[out.length - 1].drops = Number(d[1]);
  }
  return out;
}

/** A VXLAN device of `ip -j -d link show type vxlan`. */
export interface VxlanDevice {
  ifname: string;
  /** null for an external (collect_metadata) device, which takes every VNI: Cilium's, Calico's */
  vni: number | null;
  port: number | null;
  local: string | null;
  link: string | null;
  up: boolean;
}

export function parseVxlanDevices(json: string): VxlanDevice[] {
  let links: Array<{ ifname?: string; flags?: string[]; linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; local?: string; link?: string; external?: boolean; collect_metadata?: boolean } } }>;
  try {
    links = JSON.parse(json);
  } catch {
    return [];
  }
  return links
    .filter((l) => l.ifname && l.linkinfo?.info_kind === 'vxlan')
    .map((l) => {
      const d = l.linkinfo!.info_data ?? {};
      return { ifname: l.ifname!, vni: d.external || d.collect_metadata ? null : (d.id ?? null), port: d.port ?? null, local: d.local ?? null, link: d.link ?? null, up: (l.flags ?? []).includes('UP') };
    });
}

/** The drop-like statistics of `ethtool -S IFACE` ("rx_missed: 12"), as "ethtool:IFACE:name". */
export function parseEthtoolStats(iface: string, text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*([\w.[\]-]+):\s*(\d+)\s*$/.exec(line);
    if (m && /drop|discard|miss|no_buf|nobuf|fifo|overrun/i.test(m[1])) out.set(`ethtool:${iface}:${m[1]}`, Number(m[2]));
  }
  return out;
}

