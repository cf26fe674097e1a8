/**
 * Hardware and driver drops (devlink traps): what a trap is called in one line, and what grew
 * between two reads of the exact counts. The counts come from the kernel (decode.ts's
 * TrapCount); nothing here estimates.
 */
import type { TrapCount, TrapRecord } from './decode.js';
import type { Hint } from './hints.js';

/** A trap's count that grew since the previous read. */
export interface TrapChange {
  trap: TrapCount;
  /** packets since the previous read */
  packets: number;
  bytes: number;
}

/**
 * Successive reads of the trap counts, each turned into what grew since the one before. Counts
 * only grow while a tracer is attached: a smaller count is a new tracer's (a restart with other
 * filters), counted from zero.
 */
export class TrapDeltas {
  private last = new Map<string, { packets: number; bytes: number }>();

  next(traps: readonly TrapCount[]): TrapChange[] {
    const out: TrapChange[] = [];
    for (const t of traps) {
      let was = this.last.get(t.key) ?? { packets: 0, bytes: 0 };
      if (t.packets < was.packets) was = { packets: 0, bytes: 0 };
      if (t.packets > was.packets) out.push({ trap: t, packets: t.packets - was.packets, bytes: t.bytes - was.bytes });
      this.last.set(t.key, { packets: t.packets, bytes: t.bytes });
    }
    return out.sort((a, b) => b.packets - a.packets || a.trap.trap.localeCompare(b.trap.trap));
  }

  reset(): void {
    this.last.clear();
  }
}

/** Sum of packets over trap counts. */
export const trapPackets = (traps: readonly TrapRecord[]): number => traps.reduce((n, t) => n + t.packets, 0);

/** "source_mac_is_multicast (l2_drops, drop) on eth0 of netdevsim/netdevsim10" */
export function trapLabel(t: TrapRecord): string {
  const port = t.ifname ? ` on ${t.ifname}` : '';
  return `${t.trap} (${t.group}, ${t.type})${port} of ${t.device}`;
}

/** A trap count as recordings and `live --json` write it: the kernel's key is of no use outside. */
export function trapRecord({ key: _key, ...t }: TrapCount): TrapRecord {
  return t;
}

/**
 * The same trap summed over ports (diagnose and live rank traps, not ports), largest first.
 * ifname is kept when every port is the same one, else "".
 */
export function trapsByName(traps: readonly TrapRecord[]): TrapRecord[] {
  const by = new Map<string, TrapRecord>();
  for (const t of traps) {
    const k = `${t.device}\0${t.trap}`;
    const s = by.get(k);
    if (!s) by.set(k, { ...t });
    else {
      s.packets += t.packets;
      s.bytes += t.bytes;
      if (s.ifname !== t.ifname) s.ifname = '';
    }
  }
  return [...by.values()].sort((a, b) => b.packets - a.packets || a.trap.localeCompare(b.trap));
}

/** What the kernel's generic trap groups (include/net/devlink.h) drop, for the likely causes. */
const GROUP_CAUSES: Record<string, string[]> = {
  l2_drops: ['a bridge or switch port filter: VLAN membership or tag mismatch, STP state, a multicast source MAC, a loopback filter, no port to flood to'],
  l3_drops: ['the device\'s routing: a blackhole or unreachable route offloaded to it, a non-routable or reserved address, a packet to a non-IP or link-local destination'],
  l3_exceptions: ['packets the device could not route and trapped to the CPU: TTL expired, an MTU too small, no neighbour (ARP/ND) entry, a route the hardware does not hold'],
  buffer_drops: ['the device\'s buffers were full: tail drop or early drop (WRED) on a congested port or priority'],
  acl_drops: ['an ACL on the device dropped it: a tc flower (or other) rule offloaded to the hardware'],
  tunnel_drops: ['a tunnel the device terminates refused the packet: an unknown or mismatched VNI, a decapsulation error'],
  parser_error_drops: ['the device could not parse the headers: malformed, truncated or unsupported encapsulation'],
};

/** The hint for a trap: what the device did, the causes its group has, the commands to look. */
export function trapHint(t: TrapRecord): Hint {
  const dropped = t.type === 'drop';
  return {
    id: `trap/${t.group}/${t.trap}`,
    title: dropped
      ? `${t.device}'s hardware dropped packets: devlink trap ${t.trap} (${t.group})`
      : `${t.device} could not forward packets in hardware and trapped them: ${t.trap} (${t.group})`,
    explain: dropped
      ? 'The device (switch ASIC, NIC) dropped these itself and reported them through devlink; they never reached the kernel\'s stack, so no kfree_skb drop exists for them.'
      : 'The device handed these to the CPU as exceptions it could not handle; the stack then forwarded or dropped them (a traced drop may follow).',
    causes: GROUP_CAUSES[t.group] ?? [`the device's trap group ${t.group}: see the driver's devlink documentation (Documentation/networking/devlink/)`],
    checks: [
      `devlink -s trap show ${t.device} trap ${t.trap}`,
      `devlink trap group show ${t.device} group ${t.group}`,
      `devlink -s trap policer show ${t.device}`,
      ...(t.ifname ? [`ip -s link show ${t.ifname}`] : []),
    ],
  };
}
