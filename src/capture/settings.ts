/**
 * The program's settings, struct dt_settings (native/include/droptrace.h), encoded from a
 * TracerConfig by one table: a row per member of the C struct saying how the config fills it.
 * The bytes are laid out by the struct's own layout, which the addon reads from the program's
 * BTF (settingsLayout()), so no offset is written here; settings.test.ts holds the table's
 * members to the struct's, both ways. Adding a setting: one member in struct dt_settings, one
 * row here (and its key in config.ts's TracerConfig when the command line sets it).
 */
import { DEFAULT_GENEVE_PORTS, DEFAULT_VXLAN_PORTS, PKT_PATH, SLOTS, type TracerConfig } from './config.js';

/** struct dt_settings as the program's BTF describes it: member → [offset, element size, elements]. */
export interface SettingsLayout {
  size: number;
  fields: Record<string, [offset: number, size: number, count: number]>;
}

/** What a member holds: a number, numbers for an array, the bytes of a byte or char array. */
type Value = number | bigint | readonly number[] | readonly bigint[] | Buffer;


/** Reason codes 0..255 as the program's bitmap: four u64 words. */
function bitmap(codes: readonly number[] | undefined): bigint[] {
  const words = [0n, 0n, 0n, 0n];
  for (const c of codes ?? []) if (c < 256) words[c >> 6] |= 1n << BigInt(c & 63);
  return words;
}

/** Reason codes above 255 (subsystem reasons): the program's short list. */
const highCodes = (codes: readonly number[] | undefined) => (codes ?? []).filter((c) => c >= 256);

/** The config plus what only the opener knows: whether events are wanted at all. */
export type SettingsInput = TracerConfig & { emitEvents: boolean };

/** One row per member of struct dt_settings. */
export const SETTINGS: { readonly [member: string]: (c: SettingsInput) => Value } = {
  wakeup_bytes: (c) => BigInt(c.wakeupBytes ?? 0),
  include: (c) => bitmap(c.include),
  exclude: (c) => bitmap(c.exclude),
  include_hi: (c) => highCodes(c.include),
  exclude_hi: (c) => highCodes(c.exclude),
  netns: (c) => c.netns ?? 0,
  snaplen: (c) => c.snaplen ?? 0,
  sample: (c) => c.sample ?? 0,
  hot_mask: (c) => Math.max((c.hotSlots ?? SLOTS.hot) - 1, 0),
  ethertype: (c) => c.ethertype ?? 0,
  port: (c) => c.port ?? 0,
  vxlan_ports: (c) => c.vxlanPorts ?? DEFAULT_VXLAN_PORTS,
  geneve_ports: (c) => c.genevePorts ?? DEFAULT_GENEVE_PORTS,
  host_addr: (c) => c.hostAddr ?? Buffer.alloc(16),
  host_mask: (c) => c.hostMask ?? Buffer.alloc(16),
  ifname: (c) => Buffer.from(c.ifname ?? ''),
  l4proto: (c) => c.l4proto ?? 0,
  host_ver: (c) => c.hostVersion ?? 0,
  has_ifname: (c) => (c.ifname ? 1 : 0),
  has_include: (c) => (c.include ? 1 : 0),
  has_exclude: (c) => (c.exclude ? 1 : 0),
  emit_events: (c) => (c.emitEvents ? 1 : 0),
  stack: (c) => (c.stack ? 1 : 0),
  hot: (c) => ((c.hotSlots ?? SLOTS.hot) > 0 ? 1 : 0),
  pkt_path: (c) => PKT_PATH[c.packetPath ?? 'off'],
  pad: () => 0,
};

/** The config's key a member comes from, to name it when a value does not fit. */
const KEY_OF: Record<string, string> = { include_hi: 'include', exclude_hi: 'exclude', vxlan_ports: 'vxlanPorts', geneve_ports: 'genevePorts' };

/**
 * The bytes of struct dt_settings for a config (already checked by checkConfig). Throws a
 * RangeError naming the config key whose list is longer than its member holds.
 */
export function encodeSettings(c: SettingsInput, layout: SettingsLayout): Buffer {
  const buf = Buffer.alloc(layout.size);
  for (const [member, [offset, size, count]] of Object.entries(layout.fields)) {
    const fill = SETTINGS[member];
    if (!fill) throw new Error(`struct dt_settings has a member "${member}" that settings.ts does not fill`);
    const v = fill(c);
    if (Buffer.isBuffer(v)) {
      if (v.length > size * count) throw new RangeError(`tracer config: ${KEY_OF[member] ?? member} is longer than the ${size * count} bytes the program holds`);
      v.copy(buf, offset);
      continue;
    }
    const values = Array.isArray(v) ? v : [v as number | bigint];
    if (values.length > count) throw new RangeError(`tracer config: ${KEY_OF[member] ?? member} holds ${values.length} values; the program holds at most ${count}`);
    values.forEach((x, i) => {
      const at = offset + i * size;
      if (size === 8) buf.writeBigUInt64LE(BigInt(x), at);
      else if (size === 4) buf.writeUInt32LE(Number(x), at);
      else if (size === 2) buf.writeUInt16LE(Number(x), at);
      else buf.writeUInt8(Number(x), at);
    });
  }
  return buf;
}
