/**
 * pcapng (draft-ietf-opsawg-pcapng) for dropped packets: one interface
 * description block per real interface (and link type), one enhanced
 * packet block per captured drop, whose comment says where and why the
 * kernel dropped it, so `tshark -r` and Wireshark show it. Pure.
 */
import { CAP } from '../model/decode.js';

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

const END_OF_OPTIONS = Buffer.alloc(4);

function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  b.writeUInt32LE(len, len - 4);
  return b;
}

export function sectionHeader(app: string): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt32LE(0x1a2b3c4d, 0);
  fixed.writeUInt16LE(1, 4);
  fixed.writeUInt16LE(0, 6);
  fixed.writeBigInt64LE(-1n, 8);
  return block(0x0a0d0d0a, Buffer.concat([fixed, option(4, Buffer.from(app)), END_OF_OPTIONS]));
}

export function interfaceDescription(linktype: number, name: string, description: string, snaplen: number): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt16LE(linktype, 0);
  fixed.writeUInt32LE(snaplen, 4);
  const tsresol = Buffer.from([9]); // nanoseconds
  return block(1, Buffer.concat([fixed, option(2, Buffer.from(name)), option(3, Buffer.from(description)), option(9, tsresol), END_OF_OPTIONS]));
}

export function enhancedPacket(ifaceId: number, tsNs: bigint, data: Buffer, origLen: number, comment: string): Buffer {
  // one allocation per packet: header, fixed fields, data, the comment option, end of options, trailer
  const clen = Buffer.byteLength(comment);
  const body = 20 + pad4(data.length) + 4 + pad4(clen) + 4;
  const total = 12 + body;
  const b = Buffer.alloc(total);
  b.writeUInt32LE(6, 0);
  b.writeUInt32LE(total, 4);
  b.writeUInt32LE(ifaceId, 8);
  b.writeUInt32LE(Number(tsNs >> 32n), 12);
  b.writeUInt32LE(Number(tsNs & 0xffffffffn), 16);
  b.writeUInt32LE(data.length, 20);
  b.writeUInt32LE(Math.max(origLen, data.length), 24);
  data.copy(b, 28);
  let o = 28 + pad4(data.length);
  b.writeUInt16LE(1, o);
  b.writeUInt16LE(clen, o + 2);
  b.write(comment, o + 4);
  o += 4 + pad4(clen);
  // end of options (code 0, length 0) is already zero; the trailing total length:
  b.writeUInt32LE(total, o + 4);
  return b;
}

export interface PcapPacket {
  /** wall-clock ns */
  timeNs: bigint;
  data: Buffer;
  origLen: number;
  capFrom: number;
  ifname: string;
  netns: number;
  netnsName: string | null;
  comment: string;
}

/** Builds a pcapng file in memory (callers stream it in chunks for big captures). */
export class PcapngBuilder {
  private readonly ifaces = new Map<string, number>();
  private readonly chunks: Buffer[];
  packets = 0;

  constructor(private readonly snaplen: number) {
    this.chunks = [sectionHeader('droptrace')];
  }

  add(p: PcapPacket): void {
    const linktype = p.capFrom === CAP.MAC ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
    const name = p.ifname || 'unknown';
    const key = `${p.netns}|${name}|${linktype}`;
    let id = this.ifaces.get(key);
    if (id === undefined) {
      id = this.ifaces.size;
      this.ifaces.set(key, id);
      const where = p.netnsName ? `netns ${p.netns} (${p.netnsName})` : `netns ${p.netns}`;
      this.chunks.push(interfaceDescription(linktype, name, `${name} in ${where}: packets dropped by the kernel`, this.snaplen));
    }
    this.chunks.push(enhancedPacket(id, p.timeNs, p.data, p.origLen, p.comment));
    this.packets++;
  }

  /** Takes what has been built so far (the builder keeps its interface table). */
  take(): Buffer {
    const b = Buffer.concat(this.chunks);
    this.chunks.length = 0;
    return b;
  }
}
