/**
 * encodeEvent against decodeEvent: every record of real recordings (older formats' widened,
 * and the lab at rest), decoded, encoded and decoded again, reads the same; and constructed
 * shapes the recordings lack (a tunnel whose inner headers were not read, ICMP, a capture).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BLOCK } from '../formats/record.js';
import { scanRecording } from '../formats/scan.js';
import { eventSizeOf, widenRecords } from '../formats/recording.js';
import { decodeEvent, EVENT_SIZE, type RawDrop } from './decode.js';
import { encodeEvent } from './encode.js';

/** Every event record of a recording, widened to the current layout. */
function records(name: string): { buf: Buffer; stride: number; n: number } {
  const file = readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url));
  const scan = scanRecording(file);
  const blocks = scan.blocks.filter((b) => b.type === BLOCK.EVENTS).map((b) => b.payload);
  const st = blocks[0].readUInt32LE(4);
  const all = Buffer.concat(blocks.map((p) => p.subarray(8)));
  const n = all.length / st;
  const size = eventSizeOf(file.readUInt16LE(8));
  return size === EVENT_SIZE ? { buf: all, stride: st, n } : { ...widenRecords(all, n, st, size), n };
}

describe('encodeEvent', () => {
  it.each(['seed-6.18.dtr', 'lab-at-rest-6.18.dtr'])('round-trips every record of %s', (name) => {
    const { buf, stride, n } = records(name);
    expect(n).toBeGreaterThan(10);
    for (let i = 0; i < n; i++) {
      const d = decodeEvent(buf, i, stride);
      const again = encodeEvent(d);
      expect(decodeEvent(again, 0, again.length)).toEqual(d);
    }
  });

  const base = decodeEvent(records('seed-6.18.dtr').buf, 0, records('seed-6.18.dtr').stride);
  it.each<[string, Partial<RawDrop>]>([
    ['ICMPv6 with a type and code', { ipver: 6, l4proto: 58, saddr: 'fd00::1', daddr: 'ff02::16', sport: null, dport: null, tcpFlags: null, icmpType: 143, icmpCode: 0 }],
    ['no IP header read', { ipver: 0, l4proto: null, saddr: null, daddr: null, sport: null, dport: null, tcpFlags: null, icmpType: null, icmpCode: null, ethertype: 0x0806 }],
    ['a captured packet and a stack', { packet: Buffer.from('0123456789abcdef'), capFrom: 2, origLen: 60, stackId: 7 }],
    [
      'a VXLAN packet whose inner headers were not read',
      { inner: { tunnel: 'vxlan', vni: 1, read: false, ipver: 0, l4proto: null, saddr: null, daddr: null, sport: null, dport: null, tcpFlags: null, icmpType: null, icmpCode: null } },
    ],
    [
      'a Geneve packet with an inner TCP SYN over IPv6',
      { inner: { tunnel: 'geneve', vni: 77, read: true, ipver: 6, l4proto: 6, saddr: 'fd00:10:244:2::2', daddr: 'fd00:10:244:1::1', sport: 40000, dport: 2483, tcpFlags: 2, icmpType: null, icmpCode: null } },
    ],
    [
      'a path of a few steps, with a route',
      {
        path: {
          steps: [
            { tsNs: 100n, kind: 1, ifindex: 2, netns: 4026532173, ifname: 'a0', detail: 0, result: 0, cpu: 0, reverse: false, fn: 0n },
            { tsNs: 120n, kind: 5, ifindex: 2, netns: 4026532238, ifname: 'b0', detail: 0, result: 0, cpu: 1, reverse: false, fn: 0n },
            { tsNs: 130n, kind: 8, ifindex: 2, netns: 4026532238, ifname: 'b0', detail: 254, result: -113, cpu: 1, reverse: true, fn: 0xffffffff81000000n },
          ],
          cut: 0,
          dstInput: 0xffffffff82055fa0n,
          dstOutput: 0n,
        },
      },
    ],
    [
      'a path longer than the kernel keeps, with a capture before it',
      {
        packet: Buffer.from('0123456789abcdef'),
        capFrom: 2,
        origLen: 60,
        path: {
          steps: Array.from({ length: 32 }, (_, i) => ({ tsNs: BigInt(1000 + (i === 0 ? 0 : i + 20)), kind: 1 + (i % 9), ifindex: i, netns: 1, ifname: `d${i}`, detail: i, result: 0, cpu: 0, reverse: false, fn: BigInt(i) })),
          cut: 20,
          dstInput: 0n,
          dstOutput: 0n,
        },
      },
    ],
    ['no path found for the skb', { path: { steps: [], cut: 0, dstInput: 0n, dstOutput: 0n } }],
    ['a receiving IPv4 socket in a cgroup', { socket: { cgroup: 3445, inode: 4117081, uid: 1000, family: 2, protocol: 17, addr: '10.244.1.2', port: 7000 } }],
    ['a receiving IPv6 socket, unbound, with a capture', { packet: Buffer.from('01234567'), capFrom: 2, origLen: 60, socket: { cgroup: 1, inode: 2, uid: 0, family: 10, protocol: 6, addr: 'fd00::1', port: 0 } }],
    ['a receiving unix socket: no address', { socket: { cgroup: 0, inode: 9, uid: 0, family: 1, protocol: 0, addr: null, port: 0 } }],
  ])('round-trips %s', (_name, over) => {
    const d: RawDrop = { ...base, ...over };
    const b = encodeEvent(d);
    expect(decodeEvent(b, 0, b.length)).toEqual(d);
  });
});
