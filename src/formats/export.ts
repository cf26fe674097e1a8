/**
 * Recording → pcapng: every captured packet, commented with where and why it
 * died. Streams: one block of events at a time goes out through `write`.
 */
import { decodeEvent, type RawPath } from '../model/decode.js';
import { innerFlow, innerText, socketRecord, socketText } from '../model/drop.js';
import { formatSymbol } from '../model/kallsyms.js';
import { formatNs, pathHops, pathSpanNs, routeOf } from '../model/path.js';
import { PcapngBuilder } from './pcapng.js';
import { RecordedSymbols, recordedNetnsName, recordingReasons, type RecordingReader } from './recording.js';

export interface ExportResult {
  packets: number;
  /** drops recorded without packet bytes (no header could be captured) */
  withoutData: number;
}

/** " path: a0 (podA) out → b0 in → … (14 µs)": a recorded path in a packet's comment. */
function pathComment(p: RawPath, dropNs: bigint, nsName: (ns: number) => string | null, syms: RecordedSymbols): string {
  const hops = pathHops(p, routeOf(p, syms), nsName);
  return hops.length ? ` path: ${hops.join(' → ')} (${formatNs(pathSpanNs(p, dropNs))})` : ' path: no step before the drop';
}

export function exportPcapng(reader: RecordingReader, write: (chunk: Buffer) => void): ExportResult {
  const t = reader.tables;
  const syms = new RecordedSymbols(t.symbols);
  const reasons = recordingReasons(t.meta);
  const offset = BigInt(t.meta.wallOffsetNs);
  const b = new PcapngBuilder(t.meta.snaplen || 65535);
  const nsName = recordedNetnsName(t);
  let withoutData = 0;
  // a flood repeats a few sites: the comment up to the CPU is built once per site
  const heads = new Map<string, string>();
  const headOf = (location: bigint, hasReason: boolean, reason: number, ifname: string, netns: number, ns: string | undefined) => {
    const k = `${location}|${hasReason ? reason : -1}|${ifname}|${netns}`;
    let h = heads.get(k);
    if (h === undefined) {
      const sym = formatSymbol(syms.lookup(location), location);
      const why = hasReason ? reasons.name(reason) : 'no reason (kernel < 5.17)';
      h = `droptrace: dropped at ${sym} (0x${location.toString(16)}) reason ${why} on ${ifname || '?'} netns ${netns}${ns ? ` (${ns})` : ''}`;
      if (heads.size < 10_000) heads.set(k, h);
    }
    return h;
  };
  for (const it of reader.items()) {
    if (it.kind !== 'events') continue;
    for (let i = 0; i < it.count; i++) {
      // one record at a time: short-lived objects, however big the block
      const d = decodeEvent(it.buf, i, it.stride);
      if (!d.packet) {
        withoutData++;
        continue;
      }
      const ns = t.netns.get(d.netns);
      b.add({
        timeNs: d.tsNs + offset,
        data: d.packet,
        origLen: d.origLen,
        capFrom: d.capFrom,
        ifname: d.ifname,
        netns: d.netns,
        netnsName: ns ?? null,
        // a tunnelled packet says its inner flow too: Wireshark shows it without decoding the tunnel
        comment: `${headOf(d.location, d.hasReason, d.reason, d.ifname, d.netns, ns)} cpu ${d.cpu} comm ${d.comm}${d.inner ? ` inner ${innerText(innerFlow(d.inner)!)}` : ''}${d.socket ? ` ${socketText(socketRecord(d.socket, (id) => t.cgroups.get(id) ?? null)!)}` : ''}${d.path ? pathComment(d.path, d.tsNs, nsName, syms) : ''}`,
      });
      // written in pieces of a few thousand packets: memory stays flat whatever the block size
      if ((i & 4095) === 4095) write(b.take());
    }
    const chunk = b.take();
    if (chunk.length) write(chunk);
  }
  // the section header at least: a file with no packet reads as empty, not as broken
  const rest = b.take();
  if (rest.length) write(rest);
  return { packets: b.packets, withoutData };
}
