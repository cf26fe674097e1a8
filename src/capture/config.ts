/**
 * What the tracer is opened with, as one typed object checked once, in checkConfig(), before
 * it crosses into C: how to open it (attach path, map sizes, verbosity) and what the program
 * does (filters, events, stacks, sampling), which settings.ts encodes as struct dt_settings.
 * Command-line text is parsed into it elsewhere (cli/common.ts, filters.ts), where a bad value
 * can be named by its flag.
 */

/** UDP ports decoded as tunnels when the config names none. */
export const DEFAULT_VXLAN_PORTS = [4789, 8472] as const;
export const DEFAULT_GENEVE_PORTS = [6081] as const;

/**
 * How many values the program's lists hold (DT_REASON_HI, DT_TUN_PORTS), for the command line
 * to refuse more with the flag's name; the per-CPU count slots in front of the hash
 * (DT_HOT_SLOTS: the most, and the default); the most packet bytes an event carries
 * (DT_MAX_SNAPLEN); the steps a packet path keeps (DT_STEPS). layout.test.ts holds them to the C
 * constants.
 */
export const SLOTS = { subsystemReasons: 8, tunnelPorts: 4, hot: 256, maxSnaplen: 1024, steps: 32 } as const;

/**
 * Attach paths: numbers match enum dt_attach in native/addon/loader.h (layout.test.ts holds them).
 * `tracepoint` is tp_btf with raw_tp as its fallback; tp_btf and raw_tp
 * name one program type exactly.
 */
export const ATTACH = { auto: 0, tracepoint: 1, fentry: 2, kprobe: 3, tp_btf: 4, raw_tp: 5 } as const;
export type AttachMode = keyof typeof ATTACH;

/** What --path follows: values of dt_settings.pkt_path (DT_PKT_PATH_* in droptrace.h; layout.test.ts holds them). */
export const PKT_PATH = { off: 0, tracepoints: 1, functions: 2 } as const;
export type PacketPath = Exclude<keyof typeof PKT_PATH, 'off'>;

export interface TracerConfig {
  /** a value of ATTACH */
  attach: number;
  /** ring-buffer bytes: a power of two, at least 4096 */
  ringBytes?: number;
  /** keys the exact-count map holds */
  countEntries?: number;
  /** wake the reader once this many bytes are queued */
  wakeupBytes?: number;
  /** keep libbpf's debug output, the verifier log included */
  verbose?: boolean;
  /** only drops in this network namespace (inode) */
  netns?: number;
  /** only drops whose skb->dev has this name */
  ifname?: string;
  ethertype?: number;
  l4proto?: number;
  hostVersion?: 0 | 4 | 6;
  /** 16 bytes, already masked */
  hostAddr?: Buffer;
  hostMask?: Buffer;
  port?: number;
  /** reason codes to keep, or to leave out: core reasons (0..255) in a bitmap, subsystem reasons (above 255) in a short list */
  include?: number[];
  exclude?: number[];
  /** packet bytes carried by each event: a multiple of 8, at most SLOTS.maxSnaplen */
  snaplen?: number;
  /** record a kernel stack id per event */
  stack?: boolean;
  /** follow each skb through the path tracepoints (and, with 'functions', every kernel function taking it); each event ends with its path (struct dt_pkt_path) */
  packetPath?: PacketPath;
  /** slots of the per-CPU array in front of the count hash: 0 none, else a power of two up to SLOTS.hot (its default) */
  hotSlots?: number;
  /** > 1: the kernel sends one drop in N (per CPU) as an event; counts stay exact */
  sample?: number;
  /** UDP destination ports whose payload is decoded as VXLAN / Geneve (at most SLOTS.tunnelPorts each; defaults in settings.ts) */
  vxlanPorts?: number[];
  genevePorts?: number[];
}

export type KeyKind = 'u32' | 'bool' | 'string' | 'bytes' | 'codes';

/** Every key of TracerConfig with the type it must have. */
export const CONFIG_KEYS: { readonly [K in keyof Required<TracerConfig>]: KeyKind } = {
  attach: 'u32',
  ringBytes: 'u32',
  countEntries: 'u32',
  wakeupBytes: 'u32',
  verbose: 'bool',
  snaplen: 'u32',
  stack: 'bool',
  packetPath: 'string',
  sample: 'u32',
  hotSlots: 'u32',
  netns: 'u32',
  ifname: 'string',
  ethertype: 'u32',
  l4proto: 'u32',
  hostVersion: 'u32',
  hostAddr: 'bytes',
  hostMask: 'bytes',
  port: 'u32',
  include: 'codes',
  exclude: 'codes',
  vxlanPorts: 'codes',
  genevePorts: 'codes',
};

/** The keys that choose which drops are traced: a filter change replaces exactly these. */
export const FILTER_KEYS = ['netns', 'ifname', 'ethertype', 'l4proto', 'hostVersion', 'hostAddr', 'hostMask', 'port', 'include', 'exclude'] as const satisfies ReadonlyArray<keyof TracerConfig>;

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/**
 * Throws a RangeError naming the first key that is unknown, of the wrong
 * type, or out of the range the kernel side accepts. Values from the
 * command line are already checked with their flag's name; what reaches
 * here wrong is a bug, and says which key.
 */
export function checkConfig(c: TracerConfig): TracerConfig {
  const bad = (key: string, why: string): never => {
    throw new RangeError(`tracer config: ${key} ${why}`);
  };
  for (const [key, v] of Object.entries(c)) {
    const kind = (CONFIG_KEYS as Record<string, KeyKind>)[key];
    if (!kind) bad(key, 'is not a key the tracer reads');
    if (v === undefined) continue;
    const ok =
      kind === 'u32' ? isU32(v) : kind === 'bool' ? typeof v === 'boolean' : kind === 'string' ? typeof v === 'string' : kind === 'bytes' ? Buffer.isBuffer(v) && v.length === 16 : Array.isArray(v) && v.every(isU32);
    if (!ok) bad(key, `must be ${kind}, not ${JSON.stringify(v)}`);
  }
  if (!Object.values(ATTACH).includes(c.attach as never)) bad('attach', `${c.attach} is not a value of ATTACH`);
  if (c.ringBytes !== undefined && (!pow2(c.ringBytes) || c.ringBytes < 4096)) bad('ringBytes', 'must be a power of two, at least 4096');
  if (c.countEntries !== undefined && (c.countEntries < 64 || c.countEntries > 1 << 22)) bad('countEntries', 'must be 64..4194304');
  if (c.snaplen !== undefined && (c.snaplen % 8 || c.snaplen > SLOTS.maxSnaplen)) bad('snaplen', `must be a multiple of 8, at most ${SLOTS.maxSnaplen}`);
  if (c.hotSlots !== undefined && (c.hotSlots > SLOTS.hot || (c.hotSlots && !pow2(c.hotSlots)))) bad('hotSlots', `must be 0 or a power of two up to ${SLOTS.hot}`);
  if (c.sample !== undefined && c.sample < 1) bad('sample', 'must be 1 or more');
  if (c.port !== undefined && c.port > 65535) bad('port', 'must be 0..65535');
  if (c.ethertype !== undefined && c.ethertype > 0xffff) bad('ethertype', 'must be 0..0xffff');
  if (c.l4proto !== undefined && c.l4proto > 255) bad('l4proto', 'must be 0..255');
  if (c.hostVersion !== undefined && ![0, 4, 6].includes(c.hostVersion)) bad('hostVersion', 'must be 0, 4 or 6');
  if (c.hostVersion && (!c.hostAddr || !c.hostMask)) bad('hostAddr', 'and hostMask are needed with hostVersion');
  if (c.packetPath !== undefined && !(c.packetPath in PKT_PATH && c.packetPath !== ('off' as string))) bad('packetPath', "must be 'tracepoints' or 'functions'");
  if (c.ifname !== undefined && Buffer.byteLength(c.ifname) > 15) bad('ifname', 'is longer than an interface name (15 bytes)');
  return c;
}
