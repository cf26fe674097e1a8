/**
 * trace's lines for hardware and driver drops (devlink traps). A trap has no event of its own
 * (see dt_trap_key in native/include/droptrace.h): trace prints, once a second and at the end,
 * one line per trap whose exact count grew, with how many packets since the line before.
 */
import type { TrapChange } from '../model/traps.js';
import { trapLabel } from '../model/traps.js';

/** A JSON Lines object; "source":"devlink" tells it from a drop's line (schema in docs/FORMATS.md). */
export function trapJsonLine(c: TrapChange, ms: number): string {
  const t = c.trap;
  return `${JSON.stringify({
    time: new Date(ms).toISOString(),
    source: 'devlink',
    trap: t.trap,
    group: t.group,
    type: t.type,
    device: t.device,
    ifname: t.ifname || null,
    ifindex: t.ifindex || null,
    netns: t.netns || null,
    packets: c.packets,
    bytes: c.bytes,
    total: t.packets,
  })}\n`;
}

/** "HH:MM:SS.mmm devlink trap ttl_value_is_too_small (l3_exceptions, exception) on eth0 of pci/0000:03:00.0: 12 packets (total 40)" */
export function trapTextLine(c: TrapChange, ms: number): string {
  const n = c.packets;
  return `${new Date(ms).toISOString().slice(11, 23)} devlink trap ${trapLabel(c.trap)}: ${n} packet${n === 1 ? '' : 's'} (total ${c.trap.packets})\n`;
}
