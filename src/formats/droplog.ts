/**
 * Recognises, line by line, the drop logs people paste into tickets:
 * dropwatch (summary and packet mode, every version), `perf script` and
 * ftrace/trace_pipe output of skb:kfree_skb, and bare addresses. Pure: a
 * line in, what it says out. Resolution against a symbol table is
 * src/analysis/symbolize.ts's job.
 */

export type LogKind = 'dropwatch' | 'dropwatch-packet' | 'perf' | 'ftrace' | 'address';

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
  /** module as printed (dropwatch packet mode truncates it) */
  module: string | null;
  reason: string | null;
  /** hardware drops (devlink traps) have a trap name, no kernel address */
  hardware: boolean;
  /** a hashed pointer (%p since 4.15): no table can resolve it */
  hashed: boolean;
  /** interface, where the line names one (droptrace live --plain) */
  iface?: string | null;
}

/** A `field: value` line inside a dropwatch packet-mode block. */
export interface LogField {
  kind: 'dropwatch-field';
  field: string;
  value: string;
}

export type LogLine = LogDrop | LogField;

const HEX = '[0-9a-fA-F]';

// "3 drops at location 0xffffffff81631acf", "2 drops at ip_rcv+cf (0xffffffff81631acf) [software]",
// "5 drops at ttl_value_is_too_small [hardware]". Unanchored: lines come indented, commented,
// or glued to "^CGot a stop message".
const DW_SUMMARY = new RegExp(
  `(\\d+) drops at (?:location (0x${HEX}+)|([^\\s+()]+)\\+(?:0x)?(${HEX}+) \\((0x${HEX}+)\\)|(\\S+?))(?:\\s+\\[(software|hardware|[A-Z][A-Z0-9_]*)\\](?:\\s+([\\w.@:-]+))?)?\\s*(?:\\^C.*)?$`,
);
// "drop at: nf_hook_slow+0x59/0x98 (0xffffffff814ec532)",
// "drop at: do_execute_actions+0x197/0xb20 [openvsw (0xffffffffc0db6f97)", "drop at: ttl_value_is_too_small (l3_drops)"
const DW_PACKET = new RegExp(
  `^\\s*drop at: (?:([^\\s+]+)\\+0x(${HEX}+)(?:/0x${HEX}+)?(?: \\[([^\\s\\]]+)\\]?)? \\((0x${HEX}+)\\)|(0x${HEX}+)|(\\S+) \\(([^)]*)\\))\\s*$`,
);
const DW_FIELD = /^\s*(origin|input port ifindex|input port name|timestamp|protocol|length|original length|drop reason|cookie|trap type|trap name|trap group|hw_trap_group_name|hw_trap_name):\s*(.*?)\s*$/;
// perf script: "... skb:kfree_skb: skbaddr=0x… rx_sk=(nil) protocol=2048 location=nft_do_chain+0x3e8 reason: NETFILTER_DROP"
// trace_pipe:  "... kfree_skb: skbaddr=0000… protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET"
const TRACE = /\b(skb:)?kfree_skb: .*?\blocation=(\S+)(?:.*?\breason: (\w+))?/;
const BARE = new RegExp(`^\\s*(?:0x)?(${HEX}{8}|${HEX}{16})\\s*$`);

function drop(kind: LogKind, fields: Partial<LogDrop>): LogDrop {
  return { kind, count: 1, address: null, name: null, offset: null, module: null, reason: null, hardware: false, hashed: false, ...fields };
}

/** Parses a trace location: `0x…`, a hashed `000000009b2c1f3a`, or `sym+0xoff[/0xsize]`. */
export function parseLocation(token: string): Pick<LogDrop, 'address' | 'name' | 'offset' | 'hashed'> {
  const none = { address: null, name: null, offset: null, hashed: false };
  if (/^0x[0-9a-fA-F]+$/.test(token)) return { ...none, address: BigInt(token) };
  if (/^[0-9a-fA-F]{16}$/.test(token)) {
    // %p prints a 32-bit hash zero-extended: it looks like an address and is not one
    if (token.startsWith('00000000')) return { ...none, hashed: true };
    return { ...none, address: BigInt('0x' + token) };
  }
  const m = /^([^\s+]+)\+0x([0-9a-fA-F]+)(?:\/0x[0-9a-fA-F]+)?$/.exec(token);
  if (m) return { ...none, name: m[1], offset: parseInt(m[2], 16) };
  if (/^[A-Za-z_.$][\w.$]*$/.test(token)) return { ...none, name: token, offset: 0 };
  return none;
}

/** What a line says, or null when it is not a drop line we know. */
export function parseLine(raw: string): LogLine | null {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  if (line.length > 4096) return null; // a binary blob, not a log line

  if (line.includes(' drops at ')) {
    const m = DW_SUMMARY.exec(line);
    if (m) {
      const count = Number(m[1]);
      // droptrace live --plain adds "[REASON] ifname"; dropwatch has [software]/[hardware]
      const reason = m[7] && m[7] !== 'software' && m[7] !== 'hardware' ? m[7] : null;
      const iface = m[8] ?? null;
      if (m[2]) return drop('dropwatch', { count, address: BigInt(m[2]), reason, iface });
      if (m[3]) return drop('dropwatch', { count, name: m[3], offset: parseInt(m[4], 16), address: BigInt(m[5]), reason, iface });
      return drop('dropwatch', { count, name: m[6], hardware: m[7] === 'hardware', reason, iface });
    }
  }
  if (line.includes('drop at: ')) {
    const m = DW_PACKET.exec(line);
    if (m) {
      if (m[4]) return drop('dropwatch-packet', { name: m[1], offset: parseInt(m[2], 16), module: m[3] ?? null, address: BigInt(m[4]) });
      if (m[5]) return drop('dropwatch-packet', { address: BigInt(m[5]) });
      return drop('dropwatch-packet', { name: m[6], module: m[7], hardware: true });
    }
  }
  if (line.includes('kfree_skb: ')) {
    const m = TRACE.exec(line);
    if (m) return drop(m[1] ? 'perf' : 'ftrace', { ...parseLocation(m[2]), reason: m[3] ?? null });
  }
  const f = DW_FIELD.exec(line);
  if (f) return { kind: 'dropwatch-field', field: f[1], value: f[2] };
  const b = BARE.exec(line);
  if (b) return drop('address', { address: BigInt('0x' + b[1]) });
  return null;
}
