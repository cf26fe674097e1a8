/**
 * Turns the command line's filter options into the BPF program's
 * configuration. Pure apart from resolving --netns paths and names, which
 * needs a stat(); that is passed in so tests can give their own.
 */
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import { addrBytes } from '../model/addr.js';
import type { ReasonTable } from '../model/reasons.js';
import { SLOTS } from './config.js';
import type { TracerConfig } from './config.js';

/** A bad command-line value: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface FilterOptions {
  netns?: string;
  iface?: string;
  proto?: string;
  host?: string;
  port?: string;
  reason?: string[];
  excludeReason?: string[];
}

/** L4 protocols by name, and the L3 ones we filter by ethertype. */
export const L4_PROTOCOLS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, icmp6: 58, icmpv6: 58, sctp: 132 };
export const L3_PROTOCOLS: Record<string, number> = { ipv4: 0x0800, ip: 0x0800, ipv6: 0x86dd, ip6: 0x86dd, arp: 0x0806 };

/** Resolves --netns: an inode number, a path such as /proc/PID/ns/net, or a name in /run/netns. */
export function resolveNetns(value: string, stat: (p: string) => { ino: number | bigint } = statSync): number {
  if (/^\d+$/.test(value)) return Number(value);
  const m = /^net:\[(\d+)\]$/.exec(value);
  if (m) return Number(m[1]);
  const path = value.includes('/') ? value : `/run/netns/${value}`;
  try {
    return Number(stat(path).ino);
  } catch {
    throw new UsageError(
      `--netns ${value}: not an inode number, and ${path} cannot be read (give an inode, /proc/PID/ns/net, or a name from \`ip netns list\`)`,
    );
  }
}

/** Parses ADDR or ADDR/LEN into the masked address and mask the program compares. */
export function parseHost(value: string): { version: 4 | 6; addr: Buffer; mask: Buffer } {
  const [ip, lenText, extra] = value.split('/');
  const version = isIP(ip);
  if ((version !== 4 && version !== 6) || extra !== undefined) {
    throw new UsageError(`--host ${value}: expected an IPv4 or IPv6 address, optionally /LEN`);
  }
  const bits = version === 4 ? 32 : 128;
  const len = lenText === undefined ? bits : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > bits || (lenText !== undefined && !/^\d+$/.test(lenText))) {
    throw new UsageError(`--host ${value}: prefix length must be 0..${bits}`);
  }
  const addr = Buffer.alloc(16);
  addrBytes(ip)!.copy(addr);
  const mask = Buffer.alloc(16);
  for (let i = 0; i < bits / 8; i++) {
    const b = Math.max(0, Math.min(8, len - i * 8));
    mask[i] = b === 0 ? 0 : (0xff << (8 - b)) & 0xff;
  }
  for (let i = 0; i < 16; i++) addr[i] &= mask[i];
  return { version, addr, mask };
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new UsageError(`--port ${value}: expected 1..65535`);
  return n;
}

function reasonCodes(names: string[] | undefined, reasons: ReasonTable, flag: string): number[] | undefined {
  if (!names || names.length === 0) return undefined;
  let high = 0;
  return names
    .flatMap((n) => n.split(','))
    .filter(Boolean)
    .map((n) => {
      const code = reasons.code(n);
      if (code === undefined) {
        const near = reasons.suggest(n);
        const hint = near.length ? ` (did you mean ${near.join(', ')}?)` : reasons.size ? '' : ' (this kernel names no drop reasons)';
        throw new UsageError(`${flag} ${n}: this kernel has no such drop reason${hint}; \`droptrace check --reasons\` lists them`);
      }
      // the program keeps a bitmap of the core codes (0..255) and a short list of subsystem ones
      if (code > 255 && ++high > SLOTS.subsystemReasons) throw new UsageError(`${flag}: at most ${SLOTS.subsystemReasons} subsystem reasons (codes above 255) in one list`);
      return code;
    });
}

/** What applying a filter needs beyond its value. */
interface FilterContext {
  reasons: ReasonTable;
  stat?: (p: string) => { ino: number | bigint };
}

/** One filter flag, declared once: the command line, runtime parsing, the description and the config derive from it. */
export interface FilterFlag {
  flag: string;
  key: keyof FilterOptions;
  /** the value's placeholder in --help */
  arg: string;
  help: string;
  /** a list: repeatable, or comma-separated */
  list?: boolean;
  /** how it shows in "filters: …" */
  describe(value: string): string;
  /** its part of the tracer config; throws a UsageError naming the flag */
  apply(cfg: Partial<TracerConfig>, value: string, ctx: FilterContext): void;
}

function applyProto(cfg: Partial<TracerConfig>, value: string): void {
  const p = value.toLowerCase();
  if (p in L4_PROTOCOLS) cfg.l4proto = L4_PROTOCOLS[p];
  else if (p in L3_PROTOCOLS) cfg.ethertype = L3_PROTOCOLS[p];
  else if (/^\d+$/.test(p) && Number(p) < 256) cfg.l4proto = Number(p);
  else throw new UsageError(`--proto ${value}: expected one of ${[...Object.keys(L4_PROTOCOLS), ...Object.keys(L3_PROTOCOLS)].join(', ')} or an IP protocol number`);
}

/** Every filter flag, in the order they are shown. */
export const FILTER_FLAGS: readonly FilterFlag[] = [
  {
    flag: '--netns', key: 'netns', arg: '<ns>', help: 'only drops in this network namespace: inode, /proc/PID/ns/net, or a name from `ip netns list`',
    describe: (v) => `netns ${v}`,
    apply: (cfg, v, ctx) => void (cfg.netns = resolveNetns(v, ctx.stat)),
  },
  {
    flag: '--iface', key: 'iface', arg: '<name>', help: 'only drops whose skb->dev is this interface (any namespace)',
    describe: (v) => `iface ${v}`,
    apply: (cfg, v) => {
      if (v.length > 15) throw new UsageError(`--iface ${v}: interface names are at most 15 characters`);
      cfg.ifname = v;
    },
  },
  {
    flag: '--proto', key: 'proto', arg: '<proto>', help: 'only this protocol: tcp, udp, icmp, icmp6, sctp, a number, or ipv4/ipv6/arp (a tunnelled packet matches by its outer or inner flow)',
    describe: (v) => `proto ${v}`,
    apply: applyProto,
  },
  {
    flag: '--host', key: 'host', arg: '<addr[/len]>', help: 'only packets from or to this address or CIDR (outer or inner flow)',
    describe: (v) => `host ${v}`,
    apply: (cfg, v) => {
      const h = parseHost(v);
      cfg.hostVersion = h.version;
      cfg.hostAddr = h.addr;
      cfg.hostMask = h.mask;
    },
  },
  {
    flag: '--port', key: 'port', arg: '<n>', help: "only TCP/UDP packets from or to this port (outer or inner flow: --port 2483 finds a pod's connection inside VXLAN)",
    describe: (v) => `port ${v}`,
    apply: (cfg, v) => void (cfg.port = parsePort(v)),
  },
  {
    flag: '--reason', key: 'reason', arg: '<name>', list: true, help: 'only this drop reason, e.g. NETFILTER_DROP or a subsystem one as OPENVSWITCH:3 (repeatable, or comma-separated)',
    describe: (v) => `reason ${v}`,
    apply: (cfg, v, ctx) => void (cfg.include = reasonCodes([v], ctx.reasons, '--reason')),
  },
  {
    flag: '--exclude-reason', key: 'excludeReason', arg: '<name>', list: true, help: 'never this drop reason (repeatable, or comma-separated)',
    describe: (v) => `not ${v}`,
    apply: (cfg, v, ctx) => void (cfg.exclude = reasonCodes([v], ctx.reasons, '--exclude-reason')),
  },
];

/** A list flag's values as one comma-separated value; a single one as it is; unset as undefined. */
function valueOf(opts: FilterOptions, key: keyof FilterOptions): string | undefined {
  const v = opts[key];
  return Array.isArray(v) ? (v.length ? v.join(',') : undefined) : v;
}

/** Builds the filter part of the tracer configuration. */
export function buildFilters(opts: FilterOptions, reasons: ReasonTable, stat?: (p: string) => { ino: number | bigint }): Partial<TracerConfig> {
  const cfg: Partial<TracerConfig> = {};
  for (const f of FILTER_FLAGS) {
    const v = valueOf(opts, f.key);
    if (v !== undefined && v !== '') f.apply(cfg, v, { reasons, stat });
  }
  return cfg;
}

/** Human summary of active filters, for headers and summaries. */
export function describeFilters(opts: FilterOptions & { sample?: string }): string {
  const parts = FILTER_FLAGS.flatMap((f) => {
    const v = valueOf(opts, f.key);
    return v ? [f.describe(v)] : [];
  });
  const filters = parts.length ? parts.join(', ') : 'none';
  return opts.sample && Number(opts.sample) > 1 ? `${filters}; events 1 in ${opts.sample}` : filters;
}

/** Parses filter flags typed at runtime ("--port 2483 --iface cni0") into FilterOptions. */
export function parseFilterArgs(text: string): FilterOptions {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const opts: Record<string, string | string[]> = {};
  for (let i = 0; i < words.length; i++) {
    const [flag, inline] = words[i].includes('=') ? words[i].split(/=(.*)/s, 2) : [words[i], undefined];
    const value = inline ?? words[++i];
    const f = FILTER_FLAGS.find((x) => x.flag === flag);
    if (!f) throw new UsageError(`${flag}: not a filter (use ${FILTER_FLAGS.map((x) => x.flag).join(', ')})`);
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag}: needs a value`);
    if (f.list) ((opts[f.key] as string[] | undefined) ?? (opts[f.key] = [])).push(value);
    else opts[f.key] = value;
  }
  return opts as FilterOptions;
}
