/**
 * Recognises, line by line, the drop logs people paste into tickets:
 * dropwatch (summary and packet mode, every version, with or without the
 * netns tag), SystemTap's dropwatch.stp, `perf script` (with -g stacks) and
 * ftrace/trace_pipe output of skb:kfree_skb (with stacktrace), bpftrace
 * kstacks, and bare addresses. A drop line is found anywhere on its line:
 * quoted in prose or markdown, after a prompt or a timestamp, before a
 * `# comment`. Pure: a line in, what it says out. Resolution against a
 * symbol table is analysis/symbolize.ts's job.
 */

export type LogKind = 'dropwatch' | 'dropwatch-packet' | 'stap' | 'perf' | 'ftrace' | 'address';

/** What one recognised line says about a drop. */
export interface LogDrop {
  kind: LogKind;
  /** drops this line stands for (dropwatch summary lines count many) */
  count: number;
  /** the printed address, when the line has one */
  address: bigint | null;
  /** the printed symbol name and offset, when the line has them */
  name: string | null;
  offset: number | null;
  /** the location exactly as the log printed it ("ip_rcv+cf", "nft_do_chain+0x3e8/0x610") */
  text: string | null;
  /** module as printed (dropwatch packet mode truncates it) */
  module: string | null;
  reason: string | null;
  /** hardware drops (devlink traps) have a trap name, no kernel address */
  hardware: boolean;
  /** a hashed pointer (%p since 4.15): no table can resolve it */
  hashed: boolean;
  /** interface, where the line names one (droptrace live --plain) */
  iface?: string | null;
  /** network namespace, where the line names one (dropwatch's [ns: N]) */
  netns?: number | null;
}

/** A `field: value` line inside a dropwatch packet-mode block. */
export interface LogField {
  kind: 'dropwatch-field';
  field: string;
  value: string;
}

/** One frame of a stack printed after a drop line (ftrace stacktrace, perf -g, bpftrace kstack). */
export interface LogFrame {
  kind: 'frame';
  address: bigint | null;
  name: string | null;
  offset: number | null;
}

/** A line that is part of a log but says nothing about a drop: prompts, banners, comments. */
export interface LogChatter {
  kind: 'chatter';
  /** ftrace's "<stack trace>" header: the frames that follow still belong to the drop line before it */
  stack?: boolean;
}

export type LogLine = LogDrop | LogField | LogFrame | LogChatter;

const HEX = '[0-9a-fA-F]';
const SYM = '[A-Za-z_.$][\\w.$]*';

// "3 drops at location 0xffffffff81631acf", "2 drops at ip_rcv+cf (0xffffffff81631acf) [software]",
// "5 drops at ttl_value_is_too_small [hardware]", "33 drops at ip_rcv+cf (0x…) [software] [ns: 4026531840]";
// SystemTap's dropwatch.stp: "51 packets dropped at location 0xffffffff8024cd0f", "... dropped at unix_stream_recvmsg".
// Found anywhere: prose, markdown, prompts and timestamps before it, anything after it.
const SUMMARY = new RegExp(
  `(?:^|[^\\w.]|\\^C)(\\d+) (drops at|packets dropped at) (?:location (0x${HEX}+)|(${SYM})\\+(?:0x)?(${HEX}+)(?: \\((0x${HEX}+)\\))?|(${SYM}) \\((0x${HEX}+)\\)|(0x${HEX}+)|(${SYM}))` +
    `(?:\\s+\\[(software|hardware|[A-Z][A-Z0-9_]*)\\](?:\\s+(?!\\[)([\\w.@:-]+))?)?(?:\\s*\\[ns:\\s*(\\d+)\\])?`,
);
// "drop at: nf_hook_slow+0x59/0x98 (0xffffffff814ec532)",
// "drop at: do_execute_actions+0x197/0xb20 [openvsw (0xffffffffc0db6f97)", "drop at: ttl_value_is_too_small (l3_drops)"
const PACKET = new RegExp(
  `\\bdrop at: (?:(${SYM})\\+0x(${HEX}+)(?:/0x${HEX}+)?(?: \\[([^\\s\\]]+)\\]?)? \\((0x${HEX}+)\\)|(0x${HEX}+)|(${SYM}) \\(([^)]*)\\))`,
);
const FIELD = /^\s*(origin|input port ifindex|input port name|timestamp|protocol|length|original length|drop reason|cookie|trap type|trap name|trap group|hw_trap_group_name|hw_trap_name):\s*(.*?)\s*$/;
// perf script: "... skb:kfree_skb: skbaddr=0x… rx_sk=(nil) protocol=2048 location=nft_do_chain+0x3e8 reason: NETFILTER_DROP"
// trace_pipe:  "... kfree_skb: skbaddr=0000… protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET"
// old perf prints the location as a decimal number
const TRACE = /\b(skb:)?kfree_skb: .*?\blocation=(\S+)(?:.*?\breason: (\w+))?/;
// perf -g: "	ffffffff816ea931 skb_release_data+0xb1 ([kernel.kallsyms])"; ftrace: " => ip_rcv+0x1f/0x90";
// bpftrace kstack: "        kfree_skb_reason+1" (decimal offset)
const PERF_FRAME = new RegExp(`^\\s+(${HEX}{8,16}) (${SYM})(?:\\+0x(${HEX}+))? \\(`);
const FTRACE_FRAME = new RegExp(`^\\s*=> (${SYM})(?:\\+0x(${HEX}+)(?:/0x${HEX}+)?)?\\s*$`);
const KSTACK_FRAME = new RegExp(`^\\s+(${SYM})\\+(\\d+)\\s*$`);
const BARE = new RegExp(`^\\s*(?:0x)?(${HEX}{8}|${HEX}{16})\\s*$`);
// what dropwatch, perf and friends print around the drop lines
const CHATTER = [
  /^\s*#/, // a comment, a markdown heading, perf's header
  /^\s*dropwatch>/,
  // the command that made the log, after a shell prompt or alone
  /(^|[#$]\s)\s*(sudo\s+)?(dropwatch|perf (record|script|trace)|stap|bpftrace|trace-cmd|cat \/sys\/kernel\/(debug\/)?tracing\/trace_pipe)\b/,
  /^\s*(Initiali[sz]ing|Initalizing|Enabling monitoring|Setting alert|Alert mode|Getting statistics|(Software|Hardware) statistics|Tail dropped|Alert limit reached|Kernel monitoring activated|Issue Ctrl-C|Got a stop message|Deactivation requested|Waiting for (de)?activation|Shutting down|Monitoring for dropped packets|Stopping dropped packet monitor|Attaching \d+ probes?|Tracing kernel .*drops)/i,
  /^\s*\^C\s*(Got a stop message)?\s*$/,
  /^\s*(```|~~~)/,
  /^\s*$/,
];

function drop(kind: LogKind, fields: Partial<LogDrop>): LogDrop {
  return { kind, count: 1, address: null, name: null, offset: null, text: null, module: null, reason: null, hardware: false, hashed: false, ...fields };
}

/** Parses a trace location: `0x…`, a hashed `000000009b2c1f3a`, a decimal address, or `sym+0xoff[/0xsize]`. */
export function parseLocation(token: string): Pick<LogDrop, 'address' | 'name' | 'offset' | 'hashed'> {
  const none = { address: null, name: null, offset: null, hashed: false };
  if (/^0x[0-9a-fA-F]+$/.test(token)) return { ...none, address: BigInt(token) };
  if (/^[0-9a-fA-F]{16}$/.test(token)) {
    // %p prints a 32-bit hash zero-extended: it looks like an address and is not one
    if (token.startsWith('00000000')) return { ...none, hashed: true };
    return { ...none, address: BigInt('0x' + token) };
  }
  // old perf: the address in decimal (a 64-bit kernel address has 20 digits, a 32-bit one 10)
  if (/^\d{10}$|^\d{19,20}$/.test(token) && BigInt(token) < 1n << 64n) return { ...none, address: BigInt(token) };
  const m = /^([^\s+]+)\+0x([0-9a-fA-F]+)(?:\/0x[0-9a-fA-F]+)?$/.exec(token);
  if (m) return { ...none, name: m[1], offset: parseInt(m[2], 16) };
  if (/^[A-Za-z_.$][\w.$]*$/.test(token)) return { ...none, name: token, offset: 0 };
  return none;
}

function summary(line: string): LogDrop | null {
  const m = SUMMARY.exec(line);
  if (!m) return null;
  const count = Number(m[1]);
  const kind: LogKind = m[2] === 'drops at' ? 'dropwatch' : 'stap';
  // droptrace live --plain adds "[REASON] ifname"; dropwatch has [software]/[hardware]
  const tag = m[11];
  const reason = tag && tag !== 'software' && tag !== 'hardware' ? tag : null;
  const common = { count, reason, iface: m[12] ?? null, netns: m[13] ? Number(m[13]) : null };
  if (m[3]) return drop(kind, { ...common, address: BigInt(m[3]) });
  if (m[4]) return drop(kind, { ...common, name: m[4], offset: parseInt(m[5], 16), text: `${m[4]}+${m[5]}`, address: m[6] ? BigInt(m[6]) : null });
  if (m[7]) return drop(kind, { ...common, name: m[7], offset: 0, text: m[7], address: BigInt(m[8]) });
  if (m[9]) return drop(kind, { ...common, address: BigInt(m[9]) });
  // a bare name: a hardware trap, or a symbol stap printed without its offset; in prose
  // ("2 drops at the end of ...") a word is not a location
  const hardware = tag === 'hardware';
  const rest = line.slice(m.index + m[0].length);
  if (!hardware && kind !== 'stap' && !/^\s*(#.*|\^C.*)?$/.test(rest)) return null;
  return drop(kind, { ...common, name: m[10], offset: hardware ? null : 0, text: m[10], hardware });
}

/** What a line says, or null when it is not a line of a drop log we know. */
export function parseLine(raw: string): LogLine | null {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  if (line.length > 4096) return null; // a binary blob, not a log line
  if (CHATTER[0].test(line)) return { kind: 'chatter' };

  if (line.includes(' drops at ') || line.includes(' dropped at ')) {
    const d = summary(line);
    if (d) return d;
  }
  if (line.includes('drop at: ')) {
    const m = PACKET.exec(line);
    if (m) {
      if (m[4]) return drop('dropwatch-packet', { name: m[1], offset: parseInt(m[2], 16), text: /drop at: (\S+)/.exec(line)![1], module: m[3] ?? null, address: BigInt(m[4]) });
      if (m[5]) return drop('dropwatch-packet', { address: BigInt(m[5]) });
      return drop('dropwatch-packet', { name: m[6], text: m[6], module: m[7], hardware: true });
    }
  }
  if (line.includes('kfree_skb: ')) {
    const m = TRACE.exec(line);
    if (m) {
      const loc = parseLocation(m[2]);
      return drop(m[1] ? 'perf' : 'ftrace', { ...loc, text: loc.name ? m[2] : null, reason: m[3] ?? null });
    }
  }
  if (line.endsWith('<stack trace>')) return { kind: 'chatter', stack: true };
  const f = FIELD.exec(line);
  if (f) return { kind: 'dropwatch-field', field: f[1], value: f[2] };
  let fr = PERF_FRAME.exec(line);
  if (fr) return { kind: 'frame', address: BigInt('0x' + fr[1]), name: fr[2], offset: fr[3] ? parseInt(fr[3], 16) : 0 };
  fr = FTRACE_FRAME.exec(line);
  if (fr) return { kind: 'frame', address: null, name: fr[1], offset: fr[2] ? parseInt(fr[2], 16) : 0 };
  fr = KSTACK_FRAME.exec(line);
  if (fr) return { kind: 'frame', address: null, name: fr[1], offset: Number(fr[2]) };
  const b = BARE.exec(line);
  if (b) return drop('address', { address: BigInt('0x' + b[1]) });
  for (const c of CHATTER) if (c.test(line)) return { kind: 'chatter' };
  return null;
}

/** Characters of a symbol name: [A-Za-z0-9_.$]. */
const NAME_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) NAME_BYTE[c] = /[\w.$]/.test(String.fromCharCode(c)) ? 1 : 0;
/** Hex digit values, 255 for anything else. */
const HEX_VALUE = new Uint8Array(256).fill(255);
for (let c = 0; c < 16; c++) {
  HEX_VALUE['0123456789abcdef'.charCodeAt(c)] = c;
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(c)] = c;
}
const DROPS_AT = Buffer.from(' drops at ', 'latin1');
const LOCATION_0X = Buffer.from('location 0x', 'latin1');
const SOFTWARE = Buffer.from(' [software]', 'latin1');

/**
 * The common shape read straight from bytes, for logs of millions of lines:
 * `N drops at location 0xADDR` and `N drops at SYM+OFF (0xADDR)`, optionally
 * ` [software]`, nothing else on the line. Fills FAST and returns true, or
 * returns false for anything else (the caller then asks parseLine). No
 * string and no number object is made: the fields are int32 slots (an
 * address's halves as signed 32-bit), the name a byte range of buf.
 */
export const FAST = new Int32Array(8);
export const F = { count: 0, hi: 1, lo: 2, nameStart: 3, nameEnd: 4, offStart: 5, offEnd: 6, offset: 7 } as const;

/** Reads hex digits from p into FAST's hi/lo in one pass; the position after them, or -1. */
function hexAt(buf: Buffer, p: number, end: number): number {
  let hi = 0;
  let lo = 0;
  const start = p;
  for (; p < end; p++) {
    const v = HEX_VALUE[buf[p]];
    if (v === 255) break;
    hi = (hi << 4) | (lo >>> 28);
    lo = (lo << 4) | v;
  }
  const n = p - start;
  if (n === 0 || n > 16) return -1;
  FAST[F.hi] = hi;
  FAST[F.lo] = lo;
  return p;
}

function bytesAt(buf: Buffer, p: number, what: Buffer): boolean {
  for (let i = 0; i < what.length; i++) if (buf[p + i] !== what[i]) return false;
  return true;
}

export function fastDropwatch(buf: Buffer, ls: number, le: number): boolean {
  let p = ls;
  if (le > p && buf[le - 1] === 13) le--;
  while (p < le && (buf[p] === 32 || buf[p] === 9)) p++;
  let count = 0;
  const ds = p;
  while (p < le && buf[p] >= 48 && buf[p] <= 57 && p - ds < 9) count = count * 10 + buf[p++] - 48;
  if (p === ds || le - p < 21 || buf[p] !== 32 || buf[p + 1] !== 100 /* d */ || !bytesAt(buf, p, DROPS_AT)) return false;
  p += 10;
  FAST[F.count] = count;
  FAST[F.nameStart] = FAST[F.nameEnd] = FAST[F.offStart] = FAST[F.offEnd] = p;
  FAST[F.offset] = 0;
  if (buf[p] === 108 /* l */ && bytesAt(buf, p, LOCATION_0X)) {
    p = hexAt(buf, p + 11, le);
    if (p < 0) return false;
  } else {
    const ns = p;
    while (p < le && NAME_BYTE[buf[p]]) p++;
    if (p === ns || p >= le || buf[p] !== 43 /* + */ || (buf[ns] >= 48 && buf[ns] <= 57)) return false;
    FAST[F.nameStart] = ns;
    FAST[F.nameEnd] = p;
    p++;
    if (buf[p] === 48 && buf[p + 1] === 120) p += 2; // 0x
    const os = p;
    let off = 0;
    while (p < le && HEX_VALUE[buf[p]] !== 255 && p - os < 7) off = off * 16 + HEX_VALUE[buf[p++]];
    if (p === os) return false;
    FAST[F.offStart] = os;
    FAST[F.offEnd] = p;
    FAST[F.offset] = off;
    // " (0x" address ")"
    if (p + 4 > le || buf[p] !== 32 || buf[p + 1] !== 40 || buf[p + 2] !== 48 || buf[p + 3] !== 120) return false;
    p = hexAt(buf, p + 4, le);
    if (p < 0 || p >= le || buf[p] !== 41 /* ) */) return false;
    p++;
  }
  if (p === le) return true;
  return le - p === SOFTWARE.length && bytesAt(buf, p, SOFTWARE);
}
