/**
 * Routing decisions as iproute2 reports them: `ip route get DST from SRC iif IFACE` asks the
 * kernel's input routing the question the dropped packet asked (its error answers say which
 * route type refused it), `ip -j rule` lists the policy rules, `ip -j route show table all
 * match DST` the routes that cover the destination, `ip -j addr` the namespace's own
 * addresses, `ip -j neigh` what ARP/NDP learned of the next hops. Pure parsers; the commands
 * run in the drop's namespace through NetnsShell.
 */

/** What the kernel answered for the packet's route. */
export interface RouteAnswer {
  /** the route found: its type ("unicast", "local", "broadcast" …), device, gateway and table */
  route: { type: string; dev: string | null; gateway: string | null; table: string | null } | null;
  /**
   * why there is none, from the kernel's error: a blackhole route (EINVAL), an unreachable
   * route or forwarding off on the input interface (EHOSTUNREACH), a prohibit route or rule
   * (EACCES), no route at all (ENETUNREACH, also what a throw route ends in)
   */
  refusal: 'blackhole' | 'unreachable' | 'prohibit' | 'no-route' | null;
  /** the error as iproute2 printed it */
  error: string | null;
}

const REFUSALS: Array<[RegExp, RouteAnswer['refusal']]> = [
  [/Invalid argument/, 'blackhole'],
  [/No route to host/, 'unreachable'],
  [/Permission denied/, 'prohibit'],
  [/Network is unreachable/, 'no-route'],
];

/** `ip -j route get …`: its JSON on success, its error line on failure. */
export function parseRouteGet(status: number | null, stdout: string, stderr: string): RouteAnswer {
  if (status === 0) {
    try {
      const r = (JSON.parse(stdout) as Array<Record<string, unknown>>)[0] ?? {};
      const str = (k: string) => (typeof r[k] === 'string' ? (r[k] as string) : null);
      return { route: { type: str('type') ?? 'unicast', dev: str('dev'), gateway: str('gateway'), table: str('table') }, refusal: null, error: null };
    } catch {
      return { route: null, refusal: null, error: stdout.trim() || null };
    }
  }
  const error = stderr.trim().split('\n')[0] || null;
  const refusal = error ? (REFUSALS.find(([re]) => re.test(error))?.[1] ?? null) : null;
  return { route: null, refusal, error };
}

/** One policy routing rule of `ip -j rule show`. */
export interface PolicyRule {
  priority: number;
  /** "all" or an address, with its prefix length */
  src: string;
  srcLen: number;
  dst: string;
  dstLen: number;
  iif: string | null;
  /** the table it looks up, or the action it takes instead (prohibit, unreachable, blackhole) */
  table: string | null;
  action: string | null;
  /** the rule as `ip rule` prints it */
  text: string;
}

export function parsePolicyRules(json: string): PolicyRule[] {
  let rows: Array<Record<string, unknown>>;
  try {
    rows = JSON.parse(json);
  } catch {
    return [];
  }
  return rows.map((r) => {
    const src = String(r.src ?? 'all');
    const dst = String(r.dst ?? 'all');
    const srcLen = Number(r.srclen ?? (src === 'all' ? 0 : src.includes(':') ? 128 : 32));
    const dstLen = Number(r.dstlen ?? (dst === 'all' ? 0 : dst.includes(':') ? 128 : 32));
    const iif = typeof r.iif === 'string' ? r.iif : null;
    const table = typeof r.table === 'string' ? r.table : null;
    const action = typeof r.action === 'string' ? r.action : null;
    const text = [
      `${r.priority}:`,
      `from ${src === 'all' ? 'all' : `${src}${r.srclen !== undefined ? `/${srcLen}` : ''}`}`,
      dst !== 'all' ? `to ${dst}${r.dstlen !== undefined ? `/${dstLen}` : ''}` : '',
      iif ? `iif ${iif}` : '',
      table ? `lookup ${table}` : (action ?? ''),
    ]
      .filter(Boolean)
      .join(' ');
    return { priority: Number(r.priority ?? 0), src, srcLen, dst, dstLen, iif, table, action, text };
  });
}

/** One route of `ip -j route show table all match DST`. */
export interface RouteEntry {
  type: string;
  dst: string;
  table: string;
  dev: string | null;
}

export function parseRouteList(json: string): RouteEntry[] {
  let rows: Array<Record<string, unknown>>;
  try {
    rows = JSON.parse(json);
  } catch {
    return [];
  }
  return rows.map((r) => ({ type: String(r.type ?? 'unicast'), dst: String(r.dst ?? 'default'), table: String(r.table ?? 'main'), dev: typeof r.dev === 'string' ? r.dev : null }));
}

/** The namespace's own addresses, from `ip -j addr show`. */
export function parseLocalAddrs(json: string): string[] {
  let links: Array<{ addr_info?: Array<{ local?: string }> }>;
  try {
    links = JSON.parse(json);
  } catch {
    return [];
  }
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local ?? '')).filter(Boolean);
}

/** A route's prefix length ("10.0.0.0/24" → 24, "default" → 0, a host route → its width). */
export function prefixLen(dst: string): number {
  if (dst === 'default') return 0;
  const m = /\/(\d+)$/.exec(dst);
  return m ? Number(m[1]) : dst.includes(':') ? 128 : 32;
}

/** A neighbour entry of `ip -j neigh show dev IFACE`: "FAILED" and "INCOMPLETE" never got an answer. */
export interface Neighbour {
  dst: string;
  lladdr: string | null;
  state: string[];
}

export function parseNeighbours(json: string): Neighbour[] {
  let list: Array<{ dst?: string; lladdr?: string; state?: string[] }>;
  try {
    list = JSON.parse(json);
  } catch {
    return [];
  }
  return list.filter((n) => n.dst).map((n) => ({ dst: n.dst!, lladdr: n.lladdr ?? null, state: n.state ?? [] }));
}
